"""Shared by the patching benchmarks (bench_patch_scan.py, bench_patch_apply.py): the work
folder (orchestrator.yml, policies, inventory of the first N lab hosts in group `bench`),
measuring with an optional inner time, cold Ansible environments, paired ratios and tables.

The generic pieces (lab bring-up, rusage, the paramiko floor, tables) are bench_audit.py's,
imported from it unchanged.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_audit import (  # noqa: F401 - re-exported for the patch benchmarks
    CONN_VARS,
    ROOT,
    VENV_BIN,
    bench_inventory,
    ensure_lab,
    floor_run,
    machine_cpu,
    run_proc,
    rusage,
    table,
    tail,
)

FORKS = 20
SELF = resource.RUSAGE_SELF
CHILDREN = resource.RUSAGE_CHILDREN
# The packages the lab offers updates for (orchestrator/lab/repo.py): name -> available
LAB_UPDATES = {"acme-agent": "1.1", "acme-broken": "1.1", "acme-kernel": "1.1",
               "acme-tls": "1.0+sec1"}
REJECTED = "acme-brok*"  # its postinst fails: never approved here
APPROVED = {k: v for k, v in LAB_UPDATES.items() if not k.startswith("acme-brok")}


def policies_yaml(reboot: str = "never", serial: str = '"100%"') -> str:
    """An always-open window, a patch policy approving every lab update at once except the
    broken one, and the asset group `bench` (inventory group `bench`)."""
    return f"""apiVersion: orchestrator/v1
kind: Window
metadata: {{name: always}}
spec:
  schedule: {{cron: "0 * * * *"}}
  timezone: UTC
  duration: 1h
  cutoff: 0m
---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: bench}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: ["{REJECTED}"]
  reboot: {reboot}
  rollout: {{serial: [{serial}], maxFailures: 0}}
  healthChecks: {{services: [sshd], command: "test -d /etc", timeout: 1m}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: bench}}
spec:
  hosts: {{inventoryGroups: [bench]}}
  patchPolicy: bench
  windows: [always]
"""


@dataclass
class Workdir:
    """A temporary work folder: orchestrator.yml (forks, state, strict host keys, the shipped
    playbooks), policies/, and an inventory per host count."""

    tmp: Path
    lab: object
    forks: int = FORKS
    reboot: str = "never"
    policies: str | None = None  # policies/bench.yml's text; None: policies_yaml(reboot)

    def __post_init__(self) -> None:
        (self.tmp / "policies").mkdir(parents=True, exist_ok=True)
        (self.tmp / "policies" / "bench.yml").write_text(self.policies
                                                         or policies_yaml(self.reboot))
        self.config = self.tmp / "orchestrator.yml"
        self.config.write_text(
            f"policies: policies/\nplaybooks: {ROOT / 'playbooks'}\nstate: sqlite:///state.db\n"
            f"forks: {self.forks}\n"
            f"ssh: {{knownHosts: {self.lab.known_hosts_path}, hostKeys: strict}}\n")

    @property
    def hosts(self) -> list:
        return self.lab.hosts

    def names(self, n: int) -> list[str]:
        return [h.name for h in self.hosts[:n]]

    def inventory(self, n: int) -> Path:
        """Ansible YAML inventory of the first n lab hosts in group `bench`, connection
        variables only: the same file for ours and for ansible."""
        return bench_inventory(self.lab, self.names(n), self.tmp / f"inventory-{n}.yml")

    def ansible_env(self) -> tuple[dict[str, str], Path]:
        """The lab's Ansible environment (pipelining, strict host keys) with a fresh, empty
        ControlPersist folder: every run starts cold, like ours."""
        cp = Path(tempfile.mkdtemp(prefix="cp-", dir=self.tmp))
        env = {**self.lab.ansible_env(), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp),
               "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_LOCALHOST_WARNING": "False"}
        return env, cp

    @staticmethod
    def close_masters(cp: Path) -> None:
        """End the ControlPersist masters a run left (not timed) and remove the folder."""
        import subprocess

        for sock in cp.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                           capture_output=True, timeout=10)
        shutil.rmtree(cp, ignore_errors=True)


# -- measuring ----------------------------------------------------------------------------
@dataclass
class Sample:
    wall: float  # seconds: the tool's whole run, or the inner phase it reported
    cpu: float  # controller user+sys seconds
    machine_cpu: float  # whole machine, /proc/stat (includes the lab hosts)
    ok: bool
    note: str = ""
    phases: dict[str, float] | None = None


Result = tuple[bool, str] | tuple[bool, str, float | None] | tuple[bool, str, float | None, dict]


def measure(fn: Callable[[], Result], who: int) -> Sample:
    """Run fn once; its wall time, or the inner time it returns as a third element."""
    c0, m0, t0 = rusage(who), machine_cpu(), time.perf_counter()
    inner, phases = None, None
    try:
        got = fn()
        ok, note = got[0], got[1]
        if len(got) > 2:
            inner = got[2]
        if len(got) > 3:
            phases = got[3]
    except Exception as exc:  # noqa: BLE001 - a failed tool is a row marked `!`, not a crash
        ok, note = False, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    return Sample(inner if inner is not None else wall, rusage(who) - c0, machine_cpu() - m0,
                  ok, note, phases)


def med(samples: list[Sample], attr: str = "wall") -> float | None:
    return statistics.median(getattr(s, attr) for s in samples) if samples else None


def fmt(samples: list[Sample]) -> str:
    if not samples:
        return "-"
    return f"{med(samples):.2f}{'' if all(s.ok for s in samples) else '!'}"


def paired(a: list[Sample], b: list[Sample], f: Callable[[float, float], float]) -> str:
    """median [min-max] of f(a_i, b_i) over the repeats where both validated."""
    vals = [f(x.wall, y.wall) for x, y in zip(a, b, strict=False) if x.ok and y.ok and y.wall]
    if not vals:
        return "-"
    return f"{statistics.median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]"


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# -- hosts over paramiko (floors, package-manager time, checks) ---------------------------
def _client(h, key: str, known_hosts: str):
    import paramiko

    c = paramiko.SSHClient()
    c.load_host_keys(known_hosts)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(h.address, port=h.port, username="root", key_filename=key, allow_agent=False,
              look_for_keys=False, timeout=30)
    return c


def _exec(c, command: str, timeout: float = 600) -> tuple[int, str]:
    _, out, _ = c.exec_command(command, timeout=timeout)
    text = out.read().decode(errors="replace")
    return out.channel.recv_exit_status(), text


def run_on_hosts(hosts: list, key: str, known_hosts: str, forks: int, command: str,
                 connect_first: bool) -> tuple[list[tuple[int, str]], float]:
    """`command` on every host, FORKS threads, one paramiko connection each. connect_first:
    all connections are made before the clock starts (the returned seconds are the commands'
    alone, run at once on all hosts); else the seconds include the connections."""
    workers = max(1, min(forks, len(hosts)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if connect_first:
            clients = list(pool.map(lambda h: _client(h, key, known_hosts), hosts))
            t0 = time.perf_counter()
            try:
                out = list(pool.map(lambda c: _exec(c, command), clients))
                return out, time.perf_counter() - t0
            finally:
                for c in clients:
                    c.close()

        def one(h) -> tuple[int, str]:
            c = _client(h, key, known_hosts)
            try:
                return _exec(c, command)
            finally:
                c.close()

        t0 = time.perf_counter()
        out = list(pool.map(one, hosts))
        return out, time.perf_counter() - t0


def clean_up(tmp: Path, lab: Any, *, keep: bool, down: bool) -> None:
    """End of a benchmark: keep or remove its temporary folder, stop the lab if asked."""
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if down:
        lab.down()
        print("lab: down")
