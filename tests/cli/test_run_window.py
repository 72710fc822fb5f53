"""run-window: the guard, the lease (one run per occurrence), freezes, overrides.

Host work is judged by the real clock only; these tests move it with `clock` (in this
process, by monkeypatching the one function run-window reads), never through a flag."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.cli.main import main

POLICIES = """
apiVersion: orchestrator/v1
kind: Window
metadata: {name: nightly}
spec:
  schedule: {cron: "0 22 * * *"}
  timezone: Europe/Berlin
  duration: 2h
  cutoff: 30m
  misfireGrace: 1h
---
apiVersion: orchestrator/v1
kind: Freeze
metadata: {name: xmas}
spec:
  from: 2026-12-24T00:00
  until: 2026-12-27T00:00
  timezone: Europe/Berlin
  groups: [frozen-group]
  reason: Christmas
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: empty-group}
spec:
  hosts: {patterns: ["nothing-*"]}
  windows: [nightly]
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: frozen-group}
spec:
  hosts: {patterns: ["nothing-either-*"]}
  windows: [nightly]
"""
INSIDE = "2026-12-25T22:10:00+01:00"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(POLICIES)
    (tmp_path / "inventory.ini").write_text("[all]\nweb-01 ansible_host=127.0.0.1\n")
    (tmp_path / "orchestrator.yml").write_text(textwrap.dedent("""\
        policies: policies/
        inventory: inventory.ini
        state: sqlite:///state.db
        """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "cron@scheduler")
    return tmp_path


def records(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["log", "--format", "json"]) == 0
    return [json.loads(x) for x in capsys.readouterr()[0].splitlines()]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """clock("ISO"): from now on run-window's real clock reads that instant."""
    from orchestrator.maintenance import window_run

    def set_to(iso: str) -> None:
        monkeypatch.setattr(window_run, "utc_now", lambda: datetime.fromisoformat(iso))

    return set_to


def test_trigger_outside_window_records_skip(cwd, capsys, clock) -> None:
    clock("2026-12-25T12:00:00+01:00")
    assert main(["run-window", "nightly"]) == 3
    out = capsys.readouterr()[0]
    assert "closed" in out and "next occurrence starts 2026-12-25T22:00:00+01:00" in out
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("skip", "closed")]
    assert recs[0]["actor"] == "cron@scheduler"


def test_trigger_after_misfire_grace(cwd, capsys, clock) -> None:
    clock("2026-12-25T23:05:00+01:00")
    assert main(["run-window", "nightly"]) == 3
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("skip", "misfire")]
    assert "misfireGrace" in recs[0]["details"]["reason"]


def test_trigger_after_cutoff(cwd, capsys, clock) -> None:
    clock("2026-12-25T23:40:00+01:00")
    assert main(["run-window", "nightly"]) == 3
    recs = records(capsys)
    assert recs[0]["status"] == "closed" and "cutoff" in recs[0]["details"]["reason"]


def test_at_without_dry_run_is_refused_and_does_nothing(cwd, capsys, clock) -> None:
    """--at must not act: a trigger 'at' an open instant while the real clock is outside
    the window (here: inside a freeze, and a month before the occurrence) does nothing."""
    clock("2026-11-25T12:00:00+01:00")
    assert main(["run-window", "nightly", "--at", INSIDE]) == 1
    err = capsys.readouterr()[1]
    assert "--at judges another instant only with --dry-run" in err
    assert records(capsys) == []
    # the occurrence the --at named is untouched: its real trigger later runs
    clock(INSIDE)
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"


def test_run_then_second_trigger_does_nothing(cwd, capsys, clock) -> None:
    clock(INSIDE)
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    first = json.loads(capsys.readouterr()[0])
    assert first["occurrence"] == "nightly@2026-12-25T22:00:00+01:00"
    groups = {g["group"]: g["status"] for g in first["groups"]}
    assert groups == {"empty-group": "no-hosts", "frozen-group": "frozen"}
    clock("2026-12-25T22:20:00+01:00")
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    second = json.loads(capsys.readouterr()[0])
    assert second["status"] == "already-done" and first["run"] in second["reason"]
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [
        ("run.start", "started"), ("skip", "no-hosts"), ("skip", "frozen"),
        ("run.end", "done"), ("skip", "already-done")]
    assert {r["occurrence"] for r in recs[:4]} == {"nightly@2026-12-25T22:00:00+01:00"}
    assert "Christmas" in recs[2]["details"]["reason"]


def open_now_policies(cwd: Path) -> str:
    """Rewrite the estate with a window whose occurrence the real clock is inside of now;
    returns that occurrence's id."""
    start = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    (cwd / "policies" / "p.yml").write_text(POLICIES.replace(
        'schedule: {cron: "0 22 * * *"}\n  timezone: Europe/Berlin',
        f'schedule: {{cron: "{start.minute} {start.hour} * * *"}}\n  timezone: UTC'))
    return f"nightly@{start.isoformat()}"


def test_two_concurrent_triggers_make_one_run(cwd, capsys) -> None:
    """Real processes on the real clock: four triggers of one open occurrence, one run."""
    occurrence = open_now_policies(cwd)
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "--format", "json", "run-window",
           "nightly"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=cwd) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [r[1] for r in results]
    outs = [json.loads(out) for out, _ in results]
    assert sorted(o["status"] for o in outs) == ["already-done"] * 3 + ["done"]
    assert {o["occurrence"] for o in outs} == {occurrence}
    recs = records(capsys)
    assert sum(r["action"] == "run.start" for r in recs) == 1
    assert sum(r["status"] == "already-done" for r in recs) == 3
    assert main(["log", "verify"]) == 0


def test_dry_run_records_nothing(cwd, capsys, clock) -> None:
    clock("2026-11-01T10:00:00+01:00")  # --at with --dry-run judges another instant
    assert main(["run-window", "nightly", "--at", INSIDE, "--dry-run"]) == 0
    out = capsys.readouterr()[0]
    assert "dry-run" in out and "frozen-group: frozen" in out
    assert records(capsys) == []


def test_override_needs_a_reason_and_is_logged(cwd, capsys, clock) -> None:
    clock("2026-12-25T12:00:00+01:00")
    assert main(["run-window", "nightly", "--ignore-window"]) == 1
    assert "--reason" in capsys.readouterr()[1]
    assert main(["run-window", "nightly", "--ignore-window", "--reason",
                 "emergency fix INC-42"]) == 0
    recs = records(capsys)
    override = [r for r in recs if r["action"] == "override"]
    assert len(override) == 1 and override[0]["details"]["reason"] == "emergency fix INC-42"
    assert recs[0]["action"] == "override"  # before anything else


def test_override_inside_an_open_window_takes_no_lease(cwd, capsys, clock) -> None:
    """Overrides never use up the occurrence, and each one runs and is recorded."""
    clock(INSIDE)
    for reason in ("INC-1 hotfix", "INC-2 hotfix"):
        assert main(["--format", "json", "run-window", "nightly", "--ignore-window",
                     "--reason", reason]) == 0
        assert json.loads(capsys.readouterr()[0])["status"] == "done"
    assert main(["--format", "json", "run-window", "nightly"]) == 0  # the scheduled run
    assert json.loads(capsys.readouterr()[0])["status"] == "done"
    recs = records(capsys)
    assert [r["details"]["reason"] for r in recs if r["action"] == "override"] == [
        "INC-1 hotfix", "INC-2 hotfix"]
    assert sum(r["action"] == "run.start" for r in recs) == 3
    assert not [r for r in recs if r["status"] == "already-done"]


def test_concurrent_overrides_are_each_recorded(cwd, capsys) -> None:
    open_now_policies(cwd)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "--format", "json", "run-window",
         "nightly", "--ignore-window", "--reason", f"operator {i}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd) for i in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1] for r in results]
    recs = records(capsys)
    reasons = sorted(r["details"]["reason"] for r in recs if r["action"] == "override")
    assert reasons == ["operator 0", "operator 1", "operator 2"]
    assert main(["log", "verify"]) == 0


def test_override_is_recorded_even_when_the_run_then_fails(cwd, capsys, clock) -> None:
    (cwd / "orchestrator.yml").write_text("policies: policies/\ninventory: missing.ini\n"
                                          "state: sqlite:///state.db\n")
    clock("2026-12-25T12:00:00+01:00")
    assert main(["run-window", "nightly", "--ignore-window", "--reason", "INC-9"]) == 1
    recs = records(capsys)
    assert [(r["action"], r["details"].get("reason")) for r in recs] == [("override", "INC-9")]


def test_unknown_window(cwd, capsys) -> None:
    assert main(["run-window", "weekly"]) == 1
    assert "no Window named 'weekly'" in capsys.readouterr()[1]


def test_missed_trigger_is_judged_at_the_real_time(cwd, capsys, clock) -> None:
    """A replay runs now: inside misfireGrace it runs (once), past it it is a misfire."""
    clock("2026-11-14T22:50:00+01:00")
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"
    clock("2026-11-14T22:55:00+01:00")
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "already-done"
    clock("2026-11-15T23:01:00+01:00")
    assert main(["--format", "json", "run-window", "nightly"]) == 3


def test_failure_before_work_does_not_use_up_the_occurrence(cwd, capsys, clock) -> None:
    clock(INSIDE)
    (cwd / "orchestrator.yml").write_text("policies: policies/\ninventory: missing.ini\n"
                                          "state: sqlite:///state.db\n")
    assert main(["run-window", "nightly"]) == 1
    assert "missing.ini: inventory not found" in capsys.readouterr()[1]
    assert records(capsys) == []  # nothing started, nothing to record
    (cwd / "orchestrator.yml").write_text("policies: policies/\ninventory: inventory.ini\n"
                                          "state: sqlite:///state.db\n")
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"


def test_error_during_the_run_is_recorded_and_releases_the_lease(cwd, capsys, clock,
                                                                 monkeypatch) -> None:
    from orchestrator.errors import OrchestratorError
    from orchestrator.maintenance import window_run

    def broken(*args, **kwargs):
        raise OrchestratorError("web-01: simulated failure in the middle of the run")

    clock(INSIDE)
    with monkeypatch.context() as patched:
        patched.setattr(window_run, "_run_group", broken)
        assert main(["run-window", "nightly"]) == 1
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("run.start", "started"),
                                                          ("run.end", "error")]
    assert "simulated failure" in recs[1]["details"]["error"]
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"


def test_cutoff_passing_between_groups_stops_new_work(cwd, capsys, monkeypatch) -> None:
    """The clock is read again before each group: past the cutoff no group starts."""
    from orchestrator.maintenance import window_run

    ticks = iter(["2026-11-20T22:10:00+01:00", "2026-11-20T22:11:00+01:00",
                  "2026-11-20T23:31:00+01:00"])
    last = ["2026-11-20T23:32:00+01:00"]

    def tick() -> datetime:
        last[0] = next(ticks, last[0])
        return datetime.fromisoformat(last[0])

    monkeypatch.setattr(window_run, "utc_now", tick)
    assert main(["--format", "json", "run-window", "nightly"]) == 0
    out = json.loads(capsys.readouterr()[0])
    assert [g["status"] for g in out["groups"]] == ["no-hosts", "cutoff"]
    assert "cutoff of nightly@2026-11-20T22:00:00+01:00 passed" in out["groups"][1]["reason"]


def test_skip_records_carry_the_occurrence(cwd, capsys, clock) -> None:
    clock("2026-12-25T23:05:00+01:00")
    assert main(["run-window", "nightly"]) == 3
    recs = records(capsys)
    assert recs[0]["occurrence"] == "nightly@2026-12-25T22:00:00+01:00"


def test_audit_of_no_host_is_incomplete(cwd, capsys) -> None:
    assert main(["audit", "--group", "empty-group"]) == 4
    assert "nothing audited" in capsys.readouterr()[1]


def test_patch_scan_of_no_host_is_incomplete(cwd, capsys) -> None:
    assert main(["patch", "scan", "--limit", "web-*"]) == 4
    err = capsys.readouterr()[1]
    assert ("no host of" in err and "is in an asset group with a patch policy and matches "
            "--limit web-*; nothing scanned" in err)
