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
