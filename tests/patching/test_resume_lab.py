"""A run-window killed with SIGKILL in the middle of its rollout, triggered again for the
same occurrence: the second run takes over the dead run's lease (recorded), skips the hosts
the dead run finished and patches the rest. No host is patched twice; the log verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from patchwork import ALWAYS_WINDOW, write_config

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import LogFilter

ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"

POLICIES = ALWAYS_WINDOW + """---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: ["acme-brok*"]
  reboot: never
  rollout: {{serial: [1], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: ring}}
spec:
  hosts: {{patterns: [{hosts}]}}
  patchPolicy: lab
  windows: [always]
"""


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start tick) of every process below `root`."""
    found, todo = [], [root]
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    while todo:
        parent = todo.pop()
        for pid in pids:
            if _ppid(pid) == parent:
                todo.append(pid)
                found.append((pid, _start(pid)))
    return found


def _start(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2:].split()[19]


def alive(proc: tuple[int, str]) -> bool:
    """Still running (a zombie has exited: nothing of it works on a host any more)."""
    pid, start = proc
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = state[state.rfind(")") + 2:].split()[0]
    return _start(pid) == start and state != "Z"


def cmdline(proc: tuple[int, str]) -> str:
    try:
        return Path(f"/proc/{proc[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def orchestrator(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(ORCHESTRATOR), "--format", "json", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_sigkill_mid_rollout_then_rerun_takes_over_and_patches_nobody_twice(
        lab_fleet, lab_fresh_host, lab_fresh_rpm_host, lab_fresh_zypper_host,
        tmp_path: Path) -> None:
    hosts = sorted([lab_fresh_host, lab_fresh_rpm_host, lab_fresh_zypper_host])
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "lab.yml").write_text(
        POLICIES.format(hosts=", ".join(f'"{h}"' for h in hosts)))
    write_config(tmp_path, lab_fleet.inventory_path, lab=lab_fleet)
    log = (tmp_path / "first.err").open("w")
    first = subprocess.Popen([str(ORCHESTRATOR), "--format", "json", "run-window", "always"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log)
    store = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            if store is None and (tmp_path / "state.db").exists():
                store = SqliteStore(tmp_path / "state.db")
            if store is not None and list(store.records(LogFilter(action="patch.apply"))):
                break
            time.sleep(0.1)
        # then into the middle of the next batch: its ansible-playbook is at work on hosts[1]
        def next_batch() -> list:
            return [c for c in descendants(first.pid) if "ansible-playbook" in cmdline(c)
                    and f"--limit {hosts[1]} " in cmdline(c)]

        while time.monotonic() < deadline and first.poll() is None and not next_batch():
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before it could be killed"
        assert next_batch()
        children = descendants(first.pid)
        os.kill(first.pid, signal.SIGKILL)  # in the middle: one host done, others not
        first.wait(30)
        # nothing the dead run started (ansible-playbook, ssh) keeps working on hosts
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [p for p in children if alive(p)]:
            time.sleep(0.2)
        assert not [p for p in children if alive(p)], [cmdline(p) for p in children]
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    assert store is not None
    killed = [r for r in store.records() if r.action == "run.start"][0].run
    done_first = [(r.host, r.status) for r in store.records(LogFilter(action="patch.apply"))]
    assert done_first[0] == (hosts[0], "done")
    assert len(done_first) < len(hosts)
    assert not [r for r in store.records() if r.action == "run.end"]

    second = orchestrator(tmp_path, "run-window", "always")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["status"] == "done"
    assert out["reason"].startswith(f"took over from {killed}: its process {first.pid}")
    [group] = out["groups"]
    statuses = {h["host"]: h["status"] for h in group["patch"]["hosts"]}
    assert statuses[hosts[0]] == "already-done"
    assert {statuses[h] for h in hosts[1:]} <= {"done", "up-to-date"}

    recs = list(store.records())
    takeovers = [r for r in recs if r.action == "lease.takeover"]
    # the occurrence's lease, then the group's patching lease: both the dead run's
    assert [r.details.get("lease") for r in takeovers] == [None, "rollout:ring"]
    assert {(r.details["previous"], r.run) for r in takeovers} == {(killed, takeovers[0].run)}
    # the host in flight at the kill is finished first by the new run
    [start] = [r for r in recs if r.action == "patch.apply.start" and r.run != killed]
    assert start.details["resumed"] == [hosts[1]]
    # every host has one outcome in the occurrence, and each package went in once
    outcomes = [r.host for r in recs if r.action == "patch.apply"]
    assert sorted(outcomes) == sorted(set(outcomes))
    installs = [(r.host, r.details["package"]) for r in recs if r.action == "patch.install"]
    assert len(installs) == len(set(installs)) and installs
    assert {h for h, _ in installs} == set(hosts)  # nobody was left out
    assert [r.status for r in recs if r.action == "skip" and r.host == hosts[0]] == [
        "already-done"]

    # a third trigger: the occurrence ran (the lease is finished, not taken over again)
    third = orchestrator(tmp_path, "run-window", "always")
    assert third.returncode == 0 and json.loads(third.stdout)["status"] == "already-done"
    verify = orchestrator(tmp_path, "log", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    store.close()
