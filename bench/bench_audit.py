"""Benchmark of the drift audit against Ansible check mode, pyinfra --dry and the SSH floor.

Not a pytest test: it prints figures. Needs root (the lab) and runs, side by side in one
process tree and against the same lab hosts and inventory, with the same forks (20):

  ours (process)     `orchestrator --config T/orchestrator.yml --format json audit` as a
                     subprocess of the venv's `orchestrator` (cold start, policy load, Ansible
                     inventory parse, audit, change-log writes, JSON out)
  ours (in-process)  host_jobs() + run_audit() in this process (imports done, policies and
                     inventory loaded beforehand)
  ansible --check    `ansible-playbook --check -f FORKS` of an equivalent playbook
                     (gather_facts: false; package_facts, file, lineinfile, slurp, command)
  pyinfra --dry      `pyinfra --dry --parallel FORKS inventory.py deploy.py` with equivalent
                     operations (apt.packages, sysvinit.service, files.file, files.line,
                     server.sysctl, a df fact)
  floor              one paramiko connection + `true` per host, FORKS threads, in-process
  floor (process)    the same in a fresh Python subprocess (import paramiko included)

The baseline ("about 20 checks"): 5 packages installed, 2 absent, 1 service running (ssh),
6 files owner + mode (+ exists), 2 file contents, 2 sysctl reads, disk used on / -- 31 check
results per host in our audit's counting. Every tool's result is validated (all hosts
compliant / ok / no changes); a figure whose run did not validate is marked `!`.

Each figure is the median wall time of --repeat runs (tools interleaved per repeat). CPU is
controller CPU (user+sys) per host: getrusage(RUSAGE_CHILDREN) deltas for subprocess tools,
RUSAGE_SELF deltas for in-process ones; "machine CPU" is the /proc/stat delta of the whole
machine, which includes the lab hosts' sshd, shells and Python, since they share its CPUs.

Run:   .venv/bin/python bench/bench_audit.py [--hosts 5,20,50] [--quick] [--repeat 3]
       [--lab-dir DIR] [--down] [--tools ours,inproc,ansible,pyinfra,floor,floorproc]
       [--profile N]   (cProfile of one in-process audit of N hosts, top functions)
       [--tree NAME=DIR ...]   (one more tool per tree: `orchestrator audit` as a process run
                                from the source tree DIR, e.g. a `git archive` of another
                                commit, with its own state folder: before/after in one run)
       [--known-hosts-lines N] [--known-hosts-hashed]   (ours and pyinfra read a known_hosts
                                of N other hosts' lines before the lab's, hashed if asked; the
                                floors keep the lab's own: paramiko's HostKeys.load is
                                quadratic, 10,000 lines took over 15 minutes per process)

The summary after the tables compares every `ours` variant with the floor as a process,
repeat by repeat (the ratio of each repeat's pair, then the median): wall time and controller
CPU per host.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
FORKS = 20

# -- the baseline, once, and its three translations -------------------------------------
PKGS_INSTALLED = ["openssh-server", "python3", "procps", "coreutils", "bash"]
PKGS_ABSENT = ["telnetd", "rsh-server"]
SERVICE = "ssh"
FILES = [  # path, owner, mode
    ("/etc/passwd", "root", "0644"),
    ("/etc/shadow", "root", "0640"),
    ("/etc/group", "root", "0644"),
    ("/etc/gshadow", "root", "0640"),
    ("/etc/ssh/sshd_config", "root", "0644"),
    ("/etc/hostname", "root", "0644"),
]
CONTENTS = [  # path, a whole line present in it (so lineinfile / files.line agree)
    ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash"),
    ("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf"),
]
SYSCTL = [("net.ipv4.ip_forward", "0"), ("kernel.randomize_va_space", "2")]
DISK_MOUNT, DISK_MAX = "/", 95
# 5 + 2 + 1 + 6 * 3 (exists, owner, mode) + 2 + 2 + 1
CHECKS_PER_HOST = (len(PKGS_INSTALLED) + len(PKGS_ABSENT) + 1 + 3 * len(FILES) + len(CONTENTS)
                   + len(SYSCTL) + 1)


def baseline_yaml() -> str:
    contents = dict(CONTENTS)
    lines = ["apiVersion: orchestrator/v1", "kind: Baseline", "metadata:", "  name: bench",
             "spec:", "  platform: linux", "  packages:",
             f"    installed: {json.dumps(PKGS_INSTALLED)}",
             f"    absent: {json.dumps(PKGS_ABSENT)}",
             f"  services:\n    running: [{SERVICE}]", "  files:"]
    for path, owner, mode in FILES:
        extra = f", contains: [{json.dumps(contents[path])}]" if path in contents else ""
        lines.append(f'    - {{path: {path}, owner: {owner}, mode: "{mode}"{extra}}}')
    lines.append("  sysctl:")
    lines += [f'    {k}: "{v}"' for k, v in SYSCTL]
    lines += ["  thresholds:",
              f'    diskUsedPercent: {{max: {DISK_MAX}, mounts: ["{DISK_MOUNT}"]}}']
    return "\n".join(lines) + "\n"


GROUP_YAML = """apiVersion: orchestrator/v1
kind: AssetGroup
metadata:
  name: bench
spec:
  hosts: {inventoryGroups: [bench]}
  baselines: [bench]
"""


def playbook_yaml() -> str:
    files = [{"path": p, "owner": o, "mode": m} for p, o, m in FILES]
    contents = [{"path": p, "line": ln} for p, ln in CONTENTS]
    sysctl = [{"key": k, "value": v} for k, v in SYSCTL]
    return f"""- name: bench baseline in check mode
  hosts: bench
  gather_facts: false
  vars:
    pkgs_installed: {json.dumps(PKGS_INSTALLED)}
    pkgs_absent: {json.dumps(PKGS_ABSENT)}
    files: {json.dumps(files)}
    contents: {json.dumps(contents)}
    sysctls: {json.dumps(sysctl)}
  tasks:
    - name: package facts
      ansible.builtin.package_facts: {{manager: apt}}
    - name: packages installed and absent
      ansible.builtin.assert:
        quiet: true
        that:
          - (pkgs_installed | difference(ansible_facts.packages.keys() | list)) | length == 0
          - (pkgs_absent | intersect(ansible_facts.packages.keys() | list)) | length == 0
    - name: sshd running
      ansible.builtin.command: pgrep -x sshd
      check_mode: false
      changed_when: false
    - name: file owner and mode
      ansible.builtin.file:
        path: "{{{{ item.path }}}}"
        owner: "{{{{ item.owner }}}}"
        mode: "{{{{ item.mode }}}}"
        state: file
      loop: "{{{{ files }}}}"
    - name: file contents
      ansible.builtin.lineinfile:
        path: "{{{{ item.path }}}}"
        line: "{{{{ item.line }}}}"
      loop: "{{{{ contents }}}}"
    - name: sysctl read
      ansible.builtin.slurp:
        src: "/proc/sys/{{{{ item.key | replace('.', '/') }}}}"
      loop: "{{{{ sysctls }}}}"
      register: sysctl_raw
    - name: sysctl values
      ansible.builtin.assert:
        quiet: true
        that: >-
          sysctl_raw.results | map(attribute='content') | map('b64decode') | map('trim')
          | list == sysctls | map(attribute='value') | list
    - name: disk used
      ansible.builtin.command: df -P -k {DISK_MOUNT}
      check_mode: false
      changed_when: false
      register: df
    - name: disk threshold
      ansible.builtin.assert:
        quiet: true
        that: (df.stdout_lines[-1].split()[4] | replace('%', '') | int) <= {DISK_MAX}
"""


def deploy_py() -> str:
    return f'''"""pyinfra v3 deploy: the bench baseline (run with --dry: facts only, no changes)."""
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, sysvinit

apt.packages(name="packages installed", packages={PKGS_INSTALLED!r}, present=True)
apt.packages(name="packages absent", packages={PKGS_ABSENT!r}, present=False)
sysvinit.service(name="ssh running", service={SERVICE!r}, running=True)
for path, owner, mode in {FILES!r}:
    files.file(name=f"file {{path}}", path=path, user=owner, mode=mode)
for path, line in {CONTENTS!r}:
    files.line(name=f"line in {{path}}", path=path, line=line, escape_regex_characters=True)
for key, value in {SYSCTL!r}:
    server.sysctl(name=f"sysctl {{key}}", key=key, value=value)
_df = host.get_fact(Command, "df -P -k {DISK_MOUNT}")
_used = int(_df.splitlines()[-1].split()[4].rstrip("%"))
assert _used <= {DISK_MAX}, f"{{host.name}}: disk used {{_used}}% > {DISK_MAX}%"
'''


# -- fixtures on disk -------------------------------------------------------------------
CONN_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
             "ansible_ssh_common_args", "ansible_python_interpreter")


def padded_known_hosts(lab_file: Path, out: Path, lines: int, hashed: bool) -> Path:
    """`lines` other hosts' keys, then the lab's (hashed like `ssh-keygen -H` if asked): a
    known_hosts of a real estate's size, where the lab hosts are found last."""
    def name(host: str) -> str:
        if not hashed:
            return host
        salt = os.urandom(20)
        digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
        return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"

    rows = []
    for i in range(lines):
        key = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"
                               + os.urandom(32)).decode()
        rows.append(f"{name(f'srv-{i:05d}.example.net')} ssh-ed25519 {key}")
    for line in lab_file.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and not parts[0].startswith(("#", "@")):
            rows += [f"{name(h)} {parts[1]} {parts[2]}" for h in parts[0].split(",")]
    out.write_text("\n".join(rows) + "\n")
    out.chmod(0o600)
    return out


def bench_inventory(lab, names: list[str], path: Path,
                    keys: tuple[str, ...] = CONN_VARS) -> Path:
    """An Ansible YAML inventory (0600) of the lab hosts `names` in group `bench`, the
    variables `keys` only (by default the connection variables: no BMC passwords); written
    once per path."""
    if path.exists():
        return path
    import yaml

    full = yaml.safe_load(lab.inventory_path.read_text())
    lab_hosts = full["all"]["children"]["lab_linux"]["hosts"]
    hosts = {name: {k: lab_hosts[name][k] for k in keys if k in lab_hosts[name]}
             for name in names}
    path.write_text(yaml.safe_dump({"all": {"children": {"bench": {"hosts": hosts}}}}))
    path.chmod(0o600)
    return path


@dataclass
class Fixture:
    tmp: Path
    lab: object
    hosts: list  # LabHost, all of the lab's
    known_hosts_lines: int = 0
    known_hosts_hashed: bool = False
    config: Path = field(init=False)
    known_hosts: Path = field(init=False)

    def __post_init__(self) -> None:
        t = self.tmp
        self.known_hosts = self.lab.known_hosts_path
        if self.known_hosts_lines or self.known_hosts_hashed:
            self.known_hosts = padded_known_hosts(self.lab.known_hosts_path, t / "known_hosts",
                                                  self.known_hosts_lines,
                                                  self.known_hosts_hashed)
        (t / "policies" / "baselines").mkdir(parents=True)
        (t / "policies" / "groups").mkdir(parents=True)
        (t / "policies" / "baselines" / "bench.yml").write_text(baseline_yaml())
        (t / "policies" / "groups" / "bench.yml").write_text(GROUP_YAML)
        (t / "playbooks").mkdir()
        (t / "audit.yml").write_text(playbook_yaml())
        (t / "deploy.py").write_text(deploy_py())
        self.config = t / "orchestrator.yml"
        self.config.write_text(
            "policies: policies/\nplaybooks: playbooks/\nstate: sqlite:///state.db\n"
            f"forks: {FORKS}\n"
            f"ssh: {{knownHosts: {self.known_hosts}, hostKeys: strict}}\n")

    def names(self, n: int) -> list[str]:
        return [h.name for h in self.hosts[:n]]

    def inventory(self, n: int) -> Path:
        """An Ansible YAML inventory of the first n lab hosts, connection vars only (no BMC
        passwords): the same file for ours, ansible-playbook and (translated) pyinfra."""
        return bench_inventory(self.lab, self.names(n), self.tmp / f"inventory-{n}.yml")

    def pyinfra_inventory(self, n: int) -> Path:
        path = self.tmp / f"pyinfra_inventory_{n}.py"
        if path.exists():
            return path
        key, kh = str(self.lab.ssh_key_path), str(self.known_hosts)
        rows = [(h.name, {"ssh_hostname": h.address, "ssh_port": h.port, "ssh_user": "root",
                          "ssh_key": key, "ssh_known_hosts_file": kh,
                          "ssh_strict_host_key_checking": "yes"}) for h in self.hosts[:n]]
        path.write_text(f"bench = {rows!r}\n")
        return path


# -- measuring --------------------------------------------------------------------------
@dataclass
class Sample:
    wall: float
    cpu: float  # controller user+sys seconds
    machine_cpu: float  # whole machine, /proc/stat
    ok: bool
    note: str = ""


def machine_cpu() -> float:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    busy = sum(int(x) for i, x in enumerate(parts[:8]) if i not in (3, 4))  # minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def rusage(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def measure(fn: Callable[[], tuple[bool, str]], who: int) -> Sample:
    c0, m0, t0 = rusage(who), machine_cpu(), time.perf_counter()
    try:
        ok, note = fn()
    except Exception as exc:  # noqa: BLE001 - a failed tool is a row marked `!`, not a crash
        ok, note = False, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    return Sample(wall, rusage(who) - c0, machine_cpu() - m0, ok, note)


def run_proc(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def tail(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-n:])[:400]


class Tools:
    def __init__(self, fx: Fixture, forks: int) -> None:
        self.fx, self.forks = fx, forks
        self._jobs_cache: dict[int, tuple] = {}
        self.lab_env = fx.lab.ansible_env()

    # ours, as a whole process
    def ours_process(self, n: int) -> tuple[bool, str]:
        cmd = [str(VENV_BIN / "orchestrator"), "--config", str(self.fx.config), "--inventory",
               str(self.fx.inventory(n)), "--format", "json", "--no-progress", "audit"]
        p = run_proc(cmd, self.fx.tmp)
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}"
        return self._validate(data["summary"], [len(h["checks"]) for h in data["hosts"]], n,
                              p.returncode)

    # ours, as a whole process, from another source tree
    def ours_tree(self, n: int, name: str, tree: Path) -> tuple[bool, str]:
        state = self.fx.tmp / f"tree-{name}"  # its own state database and inventory cache
        state.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "orchestrator.cli.main", "--config", str(self.fx.config),
               "--inventory", str(self.fx.inventory(n)), "--state",
               f"sqlite:///{state / 'state.db'}", "--format", "json", "--no-progress", "audit"]
        p = run_proc(cmd, self.fx.tmp, {**os.environ, "PYTHONPATH": str(tree)})
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}"
        return self._validate(data["summary"], [len(h["checks"]) for h in data["hosts"]], n,
                              p.returncode)

    def _validate(self, summary: dict, counts: list[int], n: int, rc: int) -> tuple[bool, str]:
        good = (rc == 0 and summary.get("compliant") == n
                and all(c == CHECKS_PER_HOST for c in counts))
        return good, "" if good else f"rc={rc} summary={summary} checks={sorted(set(counts))}"

    # ours, in this process
    def prepare_inproc(self, n: int) -> None:
        from orchestrator.config import load_config
        from orchestrator.context import AppContext
        from orchestrator.inventory.loader import load_inventory

        app = AppContext(load_config(self.fx.config, inventory=str(self.fx.inventory(n)),
                                     cwd=self.fx.tmp), progress=False)
        self._jobs_cache[n] = (app, app.policies, load_inventory(self.fx.inventory(n)))

    def ours_inproc(self, n: int) -> tuple[bool, str]:
        from orchestrator.audit.plan import host_jobs
        from orchestrator.audit.run import run_audit

        app, policies, inventory = self._jobs_cache[n]
        jobs = host_jobs(policies, inventory, "bench")
        result = run_audit(app.run_context(), jobs)
        return self._validate(result.summary(), [len(h.checks) for h in result.hosts], n,
                              result.exit_code())

    # ansible-playbook --check
    def ansible(self, n: int) -> tuple[bool, str]:
        cp = Path(tempfile.mkdtemp(prefix="cp-", dir=self.fx.tmp))  # cold ControlPersist
        env = {**self.lab_env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp),
               "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_DEPRECATION_WARNINGS": "False"}
        cmd = [str(VENV_BIN / "ansible-playbook"), "--check", "-f", str(self.forks), "-i",
               str(self.fx.inventory(n)), str(self.fx.tmp / "audit.yml")]
        try:
            p = run_proc(cmd, self.fx.tmp, env)
        finally:
            self._close_masters(cp)
        recap = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                           r"failed=(\d+)", p.stdout, re.M)
        good = (p.returncode == 0 and len(recap) == n
                and all(c == u == f == "0" for _, _, c, u, f in recap))
        return good, "" if good else f"rc={p.returncode} recap={len(recap)}: {tail(p.stdout)}"

    @staticmethod
    def _close_masters(cp: Path) -> None:
        """End the ControlPersist masters this run left (not timed; keeps runs cold)."""
        for sock in cp.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                           capture_output=True, timeout=10)

    # pyinfra --dry
    def pyinfra(self, n: int) -> tuple[bool, str]:
        cmd = [str(VENV_BIN / "pyinfra"), "--dry", "--parallel", str(self.forks),
               str(self.fx.pyinfra_inventory(n)), str(self.fx.tmp / "deploy.py")]
        p = run_proc(cmd, self.fx.tmp, {**os.environ, "PYINFRA_PROGRESS": "off"})
        out = p.stdout + p.stderr
        ready = len(re.findall(r"^\s+\[[^\]]+\] Ready: ", out, re.M))
        table = out.split("Detected changes:", 1)[-1].split("Detected changes may", 1)[0]
        rows = [r for r in re.findall(r"^ {4}(\S.*?)\s{2,}(\S+)\s{2,}(\S+)\s*$", table, re.M)
                if r[0] != "Operation"]
        changed = [r[0] for r in rows if r[1] != "-" or r[2] != "-"]
        good = (p.returncode == 0 and ready == n and len(rows) == 13 and not changed
                and "Traceback" not in out)
        return good, "" if good else (f"rc={p.returncode} ready={ready} ops={len(rows)} "
                                      f"changed={changed}: {tail(out)}")

    # the floor
    def floor(self, n: int) -> tuple[bool, str]:
        done = floor_run(self.fx.hosts[:n], str(self.fx.lab.ssh_key_path),
                         str(self.fx.lab.known_hosts_path), self.forks)
        return done == n, "" if done == n else f"{done}/{n} hosts"

    def floor_process(self, n: int) -> tuple[bool, str]:
        hosts = [[h.address, h.port] for h in self.fx.hosts[:n]]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-worker",
               json.dumps({"hosts": hosts, "key": str(self.fx.lab.ssh_key_path),
                           "known_hosts": str(self.fx.lab.known_hosts_path),
                           "forks": self.forks})]
        p = run_proc(cmd, self.fx.tmp)
        good = p.returncode == 0 and p.stdout.strip() == str(n)
        return good, "" if good else f"rc={p.returncode} {p.stdout.strip()} {tail(p.stderr)}"


def floor_run(hosts: list, key: str, known_hosts: str, forks: int) -> int:
    """One paramiko connection (strict known_hosts, the lab key) and `true` per host."""
    from concurrent.futures import ThreadPoolExecutor

    import paramiko

    def one(h) -> bool:
        address, port = (h.address, h.port) if hasattr(h, "address") else h
        c = paramiko.SSHClient()
        c.load_host_keys(known_hosts)
        c.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            c.connect(address, port=port, username="root", key_filename=key,
                      allow_agent=False, look_for_keys=False, timeout=30)
            _, out, _ = c.exec_command("true", timeout=30)
            return out.channel.recv_exit_status() == 0
        finally:
            c.close()

    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts)))) as pool:
        return sum(pool.map(one, hosts))


TREES: dict[str, Path] = {}  # --tree NAME=DIR: tools that run ours from another source tree
TOOLS = {  # key: (column title, Tools method, rusage who)
    "ours": ("ours (process)", "ours_process", resource.RUSAGE_CHILDREN),
    "inproc": ("ours (in-proc)", "ours_inproc", resource.RUSAGE_SELF),
    "ansible": ("ansible --check", "ansible", resource.RUSAGE_CHILDREN),
    "pyinfra": ("pyinfra --dry", "pyinfra", resource.RUSAGE_CHILDREN),
    "floor": ("floor", "floor", resource.RUSAGE_SELF),
    "floorproc": ("floor (process)", "floor_process", resource.RUSAGE_CHILDREN),
}


# -- lab --------------------------------------------------------------------------------
def ensure_lab(lab_dir: Path, need: int):
    from orchestrator.lab import Lab

    lab = Lab(lab_dir)
    status = lab.status() if lab.hosts else {"running": False}
    if not (status["running"] and len(lab.hosts) >= need):
        t0 = time.monotonic()
        print(f"lab: bringing up {need} hosts in {lab_dir} ...", flush=True)
        lab.up(hosts=need)
        print(f"lab: up in {time.monotonic() - t0:.1f} s", flush=True)
    else:
        print(f"lab: reusing {len(lab.hosts)} running hosts in {lab_dir}", flush=True)
    return lab


# -- report -----------------------------------------------------------------------------
def fmt(samples: list[Sample]) -> str:
    if not samples:
        return "-"
    wall = statistics.median(s.wall for s in samples)
    return f"{wall:.2f}{'' if all(s.ok for s in samples) else '!'}"


def med(samples: list[Sample], attr: str = "wall") -> float | None:
    return statistics.median(getattr(s, attr) for s in samples) if samples else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def report(results: dict, counts: list[int], tools: list[str]) -> None:
    cols = [TOOLS[t][0] for t in tools]
    print("\nWall time, seconds (median of repeats; `!` = a run did not validate)")
    head = ["hosts", *cols, "ansible/ours", "pyinfra/ours", "ours/floor", "ours/floor(proc)",
            "inproc/floor"]
    rows = []
    for n in counts:
        r = results[n]
        ours, inproc = med(r.get("ours", [])), med(r.get("inproc", []))
        fl, flp = med(r.get("floor", [])), med(r.get("floorproc", []))
        rows.append([str(n), *[fmt(r.get(t, [])) for t in tools],
                     ratio(med(r.get("ansible", [])), ours), ratio(med(r.get("pyinfra", [])), ours),
                     ratio(ours, fl), ratio(ours, flp), ratio(inproc, fl)])
    table(head, rows)
    print("\nController CPU per host, ms (user+sys; RUSAGE_CHILDREN for subprocesses, "
          "RUSAGE_SELF in-process) / machine CPU per host, ms (/proc/stat, includes lab hosts)")
    rows = []
    for n in counts:
        r = results[n]
        rows.append([str(n)] + [
            "-" if not r.get(t) else
            f"{med(r[t], 'cpu') * 1000 / n:.0f} / {med(r[t], 'machine_cpu') * 1000 / n:.0f}"
            for t in tools])
    table(["hosts", *cols], rows)
    versus_floor(results, counts, [t for t in tools if t == "ours" or t in TREES])
    notes = [(n, t, s.note) for n in counts for t in tools for s in results[n].get(t, [])
             if not s.ok]
    for n, t, note in notes[:12]:
        print(f"! {n} hosts, {TOOLS[t][0]}: {note}")


def versus_floor(results: dict, counts: list[int], ours: list[str]) -> None:
    """Each `ours` variant against the floor as a process, paired repeat by repeat."""
    if not ours:
        return
    print("\nAgainst the floor (process), paired by repeat: median of the per-repeat ratios "
          "[min-max]; goal <= 1.5x for both")
    rows = []
    for n in counts:
        floor = results[n].get("floorproc", [])
        for t in ours:
            mine = results[n].get(t, [])
            pairs = [(a, b) for a, b in zip(mine, floor, strict=False) if a.ok and b.ok]
            if not pairs:
                continue
            wall = [a.wall / b.wall for a, b in pairs]
            cpu = [a.cpu / b.cpu for a, b in pairs if b.cpu > 0]
            rows.append([str(n), TOOLS[t][0],
                         f"{statistics.median(wall):.2f}x [{min(wall):.2f}-{max(wall):.2f}]",
                         f"{statistics.median(cpu):.2f}x [{min(cpu):.2f}-{max(cpu):.2f}]"
                         if cpu else "-", str(len(pairs))])
    if rows:
        table(["hosts", "tool", "wall / floor", "CPU per host / floor", "pairs"], rows)


def table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def profile(tools: Tools, n: int) -> None:
    import cProfile
    import pstats

    tools.prepare_inproc(n)
    tools.ours_inproc(n)  # warm
    prof = cProfile.Profile()
    prof.enable()
    t0 = time.perf_counter()
    ok, note = tools.ours_inproc(n)
    wall = time.perf_counter() - t0
    prof.disable()
    print(f"\ncProfile of one in-process audit of {n} hosts: {wall:.2f} s ok={ok} {note}")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", default="5,20,50", help="host counts, comma-separated")
    ap.add_argument("--quick", action="store_true", help="5 hosts, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--forks", type=int, default=FORKS)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--lab-dir", type=Path, default=Path(".orchestrator/bench-lab"))
    ap.add_argument("--down", action="store_true", help="stop the lab afterwards")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile an in-process audit")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                    help="also run `orchestrator audit` from source tree DIR, as tool NAME")
    ap.add_argument("--known-hosts-lines", type=int, default=0, metavar="N",
                    help="put N other hosts' keys before the lab's in known_hosts")
    ap.add_argument("--known-hosts-hashed", action="store_true",
                    help="hash the known_hosts names (ssh-keygen -H)")
    ap.add_argument("--floor-worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.floor_worker:
        spec = json.loads(a.floor_worker)
        print(floor_run(spec["hosts"], spec["key"], spec["known_hosts"], spec["forks"]))
        return 0
    counts = [5] if a.quick else [int(x) for x in a.hosts.split(",") if x.strip()]
    repeat = 1 if a.quick else max(1, a.repeat)
    for spec in a.tree:
        name, sep, folder = spec.partition("=")
        tree = Path(folder).resolve()
        if not sep or not name or name in TOOLS or not (tree / "orchestrator").is_dir():
            ap.error(f"--tree {spec!r}: expected NAME=DIR, DIR holding an orchestrator/ "
                     "package, NAME not a tool's")
        TREES[name] = tree
        TOOLS[name] = (f"ours@{name}", "ours_tree", resource.RUSAGE_CHILDREN)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    tools += [name for name in TREES if name not in tools]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        ap.error(f"unknown tool {unknown[0]!r}; choose from {', '.join(TOOLS)}")
    load = os.getloadavg()
    print(f"command: {' '.join(shlex.quote(x) for x in [sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; forks {a.forks} for every tool; {repeat} repeat(s); baseline "
          f"{CHECKS_PER_HOST} check results per host; known_hosts: "
          + (f"{a.known_hosts_lines} other lines{', hashed' if a.known_hosts_hashed else ''}"
             if a.known_hosts_lines or a.known_hosts_hashed else "the lab's"))
    lab = ensure_lab(a.lab_dir.resolve(), max(counts + [a.profile or 0]))
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        fx = Fixture(tmp, lab, lab.hosts, a.known_hosts_lines, a.known_hosts_hashed)
        t = Tools(fx, a.forks)
        if a.profile:
            profile(t, a.profile)
            return 0
        results: dict[int, dict[str, list[Sample]]] = {n: {} for n in counts}
        for n in counts:
            if "inproc" in tools:
                t.prepare_inproc(n)
                t.ours_inproc(n)  # warm-up: imports, first-connection costs (not counted)
            for name, tree in TREES.items():  # warm-up: each tree's own inventory cache
                t.ours_tree(n, name, tree)
            for rep in range(repeat):
                for key in tools:
                    _, method, who = TOOLS[key]
                    extra = (key, TREES[key]) if key in TREES else ()
                    s = measure(lambda m=method, k=n, x=extra: getattr(t, m)(k, *x), who)
                    results[n].setdefault(key, []).append(s)
                    print(f"  {n:>3} hosts  run {rep + 1}/{repeat}  {TOOLS[key][0]:<16} "
                          f"{s.wall:7.2f} s  cpu {s.cpu:6.2f} s{'' if s.ok else '  ! ' + s.note}",
                          flush=True)
        report(results, counts, tools)
        end = os.getloadavg()
        print(f"\nload average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
        print("\nTargets at 20 hosts: ansible/ours >= 25x, pyinfra/ours >= 2x, ours/floor <= 1.5x")
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if a.down:
            lab.down()
            print("lab: down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
