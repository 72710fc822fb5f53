"""`patch apply` holds a lease on its group while it works: a second apply of the same group
(a person at the prompt while the scheduler's run-window patches) is refused with a one-line
reason, and a lease left by a run that died is taken over and recorded. No host contacted
before the lease is decided."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as records

from orchestrator.changelog.lease import _start_tick, this_owner
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import LeaseOwner
from orchestrator.cli.main import main

POLICIES = ALWAYS_WINDOW.format() + """---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {name: p}
spec:
  approval: {rules: [{classification: any, approveAfterDays: 0, deadlineDays: 30}]}
  reboot: never
  rollout: {serial: [1], maxFailures: 0}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: ring}
spec:
  hosts: {patterns: ["web-*"]}
  patchPolicy: p
  windows: [always]
"""
UNTIL = datetime.now(UTC) + timedelta(hours=9)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(POLICIES)
    # port 9 on loopback: nothing listens, the scan fails at once
    (tmp_path / "inventory.ini").write_text(
        "[all]\nweb-01 ansible_host=127.0.0.1 ansible_port=9\n")
    write_config(tmp_path, 'inventory.ini', playbooks=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_second_apply_of_a_group_being_patched_is_refused(cwd: Path, capsys) -> None:
    store = SqliteStore(cwd / "state.db")
    assert store.acquire_lease("rollout:ring", "run-busy", UNTIL, owner=this_owner())
    code = main(["patch", "apply", "--group", "ring"])
    err = capsys.readouterr()[1]
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: group ring is being worked on by run run-busy (process {this_owner().pid} on "
        f"{this_owner().node}); wait for it to finish (no host is patched while another run "
        "works on it)"]
    assert not [r for r in records(capsys) if r["action"].startswith("patch.")]
    assert store.lease_holder("rollout:ring") == "run-busy"  # not ours to release
    store.close()


def test_a_dead_runs_group_lease_is_taken_over_recorded_and_released(cwd: Path,
                                                                     capsys) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    tick = _start_tick(proc.pid)
    proc.wait()
    me = this_owner()
    boot, pidns, _ = me.started.split(":")
    dead = LeaseOwner(me.node, proc.pid, f"{boot}:{pidns}:{tick}")
    store = SqliteStore(cwd / "state.db")
    assert store.acquire_lease("rollout:ring", "run-dead", UNTIL, owner=dead)
    code = main(["--format", "json", "patch", "apply", "--group", "ring"])
    out = json.loads(capsys.readouterr()[0])
    assert code == 2 and out["hosts"][0]["status"] == "failed"  # the scan could not connect
    [takeover] = [r for r in records(capsys) if r["action"] == "lease.takeover"]
    assert takeover["details"]["previous"] == "run-dead"
    assert takeover["details"]["reason"] == f"its process {proc.pid} on {me.node} is gone"
    assert store.lease("rollout:ring") is None  # given back at the end
    assert main(["log", "verify"]) == 0
    store.close()


FIRMWARE_AND_OVERLAP = """---
apiVersion: orchestrator/v1
kind: FirmwarePolicy
metadata: {name: fw}
spec:
  method: redfish
  components: [{match: BIOS, version: "2.0", image: "https://repo/bios-2.0.bin"}]
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: ring-fw}
spec:
  hosts: {patterns: ["web-01"]}
  firmwarePolicy: fw
  windows: [always]
"""


@pytest.mark.parametrize("command", [["patch", "apply", "--group", "ring"],
                                     ["firmware", "apply", "--group", "ring-fw"]])
def test_rollouts_sharing_a_host_exclude_each_other(cwd: Path, capsys, command) -> None:
    """Patching `ring` and updating the firmware of `ring-fw` (which shares web-01) must not
    run at once, whichever comes second: each takes the rollout lease of both groups."""
    (cwd / "policies" / "fw.yml").write_text(FIRMWARE_AND_OVERLAP)
    other = "ring-fw" if command[0] == "patch" else "ring"
    store = SqliteStore(cwd / "state.db")
    assert store.acquire_lease(f"rollout:{other}", "run-busy", UNTIL, owner=this_owner())
    code = main(command)
    err = capsys.readouterr()[1]
    assert code == 1
    mine = command[-1]
    assert err.startswith(f"error: group {other} (it shares hosts with {mine}) is being "
                          "worked on by run run-busy"), err
    # nothing started, and the lease this run took first was given back
    assert not [r for r in records(capsys) if r["action"].endswith(".start")]
    assert store.lease(f"rollout:{mine}") is None
    assert store.lease_holder(f"rollout:{other}") == "run-busy"
    store.close()


def _dead_owner() -> LeaseOwner:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    tick = _start_tick(proc.pid)
    proc.wait()
    me = this_owner()
    boot, pidns, _ = me.started.split(":")
    return LeaseOwner(me.node, proc.pid, f"{boot}:{pidns}:{tick}")


def test_a_dead_runs_lease_is_not_taken_over_when_another_group_is_busy(cwd: Path) -> None:
    """This group's lease (a dead run's) is claimed last: a live run holding a group that
    shares a host refuses first, so the dead run's in-flight hosts keep their claim for the
    run that can finish them."""
    from orchestrator.patching.guard import LeaseBusy, group_lease

    store = SqliteStore(cwd / "state.db")
    # "aaa" sorts before "ring": claimed in sorted order it would be taken over first
    assert store.acquire_lease("rollout:aaa", "run-dead", UNTIL, owner=_dead_owner())
    assert store.acquire_lease("rollout:ring", "run-live", UNTIL, owner=this_owner())
    ctx = _ctx(store, "run-new")
    with pytest.raises(LeaseBusy), group_lease(ctx, ["aaa", "ring"], "aaa", "patched", 60):
        pass
    assert store.lease_holder("rollout:aaa") == "run-dead"
    assert store.lease_holder("rollout:ring") == "run-live"
    store.close()


def test_a_lease_this_run_still_holds_is_its_own(cwd: Path) -> None:
    """A release that failed earlier in the same run (run-window: the patch step, then the
    firmware step) does not make the run refuse itself."""
    from orchestrator.patching.guard import group_lease

    store = SqliteStore(cwd / "state.db")
    assert store.acquire_lease("rollout:ring", "run-me", UNTIL, owner=this_owner())
    with group_lease(_ctx(store, "run-me"), ["ring"], "ring", "patched", 60) as (beats, dead):
        assert dead is None and beats.healthy
    assert store.lease("rollout:ring") is None
    store.close()


def test_run_window_goes_on_when_a_group_is_busy(cwd: Path, capsys) -> None:
    """A person's `patch apply` holds `ring`: run-window records it busy (exit 2) and does
    the window's other groups."""
    (cwd / "policies" / "other.yml").write_text("""apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: other}
spec:
  hosts: {patterns: ["db-*"]}
  patchPolicy: p
  windows: [always]
""")
    (cwd / "inventory.ini").write_text("[all]\nweb-01 ansible_host=127.0.0.1 ansible_port=9\n"
                                       "db-01 ansible_host=127.0.0.1 ansible_port=9\n")
    store = SqliteStore(cwd / "state.db")
    assert store.acquire_lease("rollout:ring", "run-busy", UNTIL, owner=this_owner())
    code = main(["--format", "json", "run-window", "always"])
    out = json.loads(capsys.readouterr()[0])
    assert code == 2 and out["status"] == "failed"
    by = {g["group"]: g for g in out["groups"]}
    assert by["ring"]["status"] == "busy" and "run-busy" in by["ring"]["reason"]
    assert by["other"]["patch"] is not None  # the other group was worked on
    busy = [r for r in records(capsys) if r["action"] == "skip" and r["status"] == "busy"]
    assert [(r["group"], r["details"]["step"]) for r in busy] == [("ring", "patch")]
    store.close()


def _ctx(store: SqliteStore, run: str):
    from orchestrator.context import RunContext

    return RunContext(run_id=run, actor="t", policy_revision="rev", store=store,
                      settings=None, forks=1, inventory_path=None, playbooks=Path("."))
