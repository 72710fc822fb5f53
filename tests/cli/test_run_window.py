"""run-window: the guard, the lease (one run per occurrence), freezes, overrides."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
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


def test_trigger_outside_window_records_skip(cwd, capsys) -> None:
    assert main(["run-window", "nightly", "--at", "2026-12-25T12:00:00+01:00"]) == 3
    out = capsys.readouterr()[0]
    assert "closed" in out and "next occurrence starts 2026-12-25T22:00:00+01:00" in out
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("skip", "closed")]
    assert recs[0]["actor"] == "cron@scheduler"


def test_trigger_after_misfire_grace(cwd, capsys) -> None:
    assert main(["run-window", "nightly", "--at", "2026-12-25T23:05:00+01:00"]) == 3
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("skip", "misfire")]
    assert "misfireGrace" in recs[0]["details"]["reason"]


def test_trigger_after_cutoff(cwd, capsys) -> None:
    assert main(["run-window", "nightly", "--at", "2026-12-25T23:40:00+01:00"]) == 3
    recs = records(capsys)
    assert recs[0]["status"] == "closed" and "cutoff" in recs[0]["details"]["reason"]


def test_run_then_second_trigger_does_nothing(cwd, capsys) -> None:
    assert main(["--format", "json", "run-window", "nightly", "--at", INSIDE]) == 0
    first = json.loads(capsys.readouterr()[0])
    assert first["occurrence"] == "nightly@2026-12-25T22:00:00+01:00"
    groups = {g["group"]: g["status"] for g in first["groups"]}
    assert groups == {"empty-group": "no-hosts", "frozen-group": "frozen"}
    assert main(["--format", "json", "run-window", "nightly", "--at", INSIDE]) == 0
    second = json.loads(capsys.readouterr()[0])
    assert second["status"] == "already-done" and first["run"] in second["reason"]
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [
        ("run.start", "started"), ("skip", "no-hosts"), ("skip", "frozen"),
        ("run.end", "done"), ("skip", "already-done")]
    assert {r["occurrence"] for r in recs[:4]} == {"nightly@2026-12-25T22:00:00+01:00"}
    assert "Christmas" in recs[2]["details"]["reason"]


def test_two_concurrent_triggers_make_one_run(cwd, capsys) -> None:
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "--format", "json", "run-window",
           "nightly", "--at", INSIDE]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=cwd) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [r[1] for r in results]
    statuses = sorted(json.loads(out)["status"] for out, _ in results)
    assert statuses == ["already-done", "already-done", "already-done", "done"]
    recs = records(capsys)
    assert sum(r["action"] == "run.start" for r in recs) == 1
    assert sum(r["status"] == "already-done" for r in recs) == 3
    assert main(["log", "verify"]) == 0


def test_dry_run_records_nothing(cwd, capsys) -> None:
    assert main(["run-window", "nightly", "--at", INSIDE, "--dry-run"]) == 0
    out = capsys.readouterr()[0]
    assert "dry-run" in out and "frozen-group: frozen" in out
    assert records(capsys) == []


def test_override_needs_a_reason_and_is_logged(cwd, capsys) -> None:
    at = "2026-12-25T12:00:00+01:00"
    assert main(["run-window", "nightly", "--at", at, "--ignore-window"]) == 1
    assert "--reason" in capsys.readouterr()[1]
    assert main(["run-window", "nightly", "--at", at, "--ignore-window", "--reason",
                 "emergency fix INC-42"]) == 0
    recs = records(capsys)
    override = [r for r in recs if r["action"] == "override"]
    assert len(override) == 1 and override[0]["details"]["reason"] == "emergency fix INC-42"


def test_unknown_window(cwd, capsys) -> None:
    assert main(["run-window", "weekly", "--at", INSIDE]) == 1
    assert "no Window named 'weekly'" in capsys.readouterr()[1]


def test_replayed_trigger_in_the_past_runs_once(cwd, capsys) -> None:
    """--at acts at another instant than the clock: the lease must hold at that instant."""
    past = "2026-11-14T22:05:00+01:00"
    assert main(["--format", "json", "run-window", "nightly", "--at", past]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"
    assert main(["--format", "json", "run-window", "nightly", "--at",
                 "2026-11-14T22:06:00+01:00"]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "already-done"


def test_failure_before_work_does_not_use_up_the_occurrence(cwd, capsys) -> None:
    (cwd / "orchestrator.yml").write_text("policies: policies/\ninventory: missing.ini\n"
                                          "state: sqlite:///state.db\n")
    assert main(["run-window", "nightly", "--at", INSIDE]) == 1
    assert "missing.ini: inventory not found" in capsys.readouterr()[1]
    assert records(capsys) == []  # nothing started, nothing to record
    (cwd / "orchestrator.yml").write_text("policies: policies/\ninventory: inventory.ini\n"
                                          "state: sqlite:///state.db\n")
    assert main(["--format", "json", "run-window", "nightly", "--at", INSIDE]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"


def test_error_during_the_run_is_recorded_and_releases_the_lease(cwd, capsys,
                                                                 monkeypatch) -> None:
    from orchestrator.errors import OrchestratorError
    from orchestrator.execution import window_run

    def broken(*args, **kwargs):
        raise OrchestratorError("web-01: simulated failure in the middle of the run")

    with monkeypatch.context() as patched:
        patched.setattr(window_run, "_run_group", broken)
        assert main(["run-window", "nightly", "--at", INSIDE]) == 1
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs] == [("run.start", "started"),
                                                          ("run.end", "error")]
    assert "simulated failure" in recs[1]["details"]["error"]
    assert main(["--format", "json", "run-window", "nightly", "--at", INSIDE]) == 0
    assert json.loads(capsys.readouterr()[0])["status"] == "done"


def test_skip_records_carry_the_occurrence(cwd, capsys) -> None:
    assert main(["run-window", "nightly", "--at", "2026-12-25T23:05:00+01:00"]) == 3
    recs = records(capsys)
    assert recs[0]["occurrence"] == "nightly@2026-12-25T22:00:00+01:00"


def test_audit_of_no_host_is_incomplete(cwd, capsys) -> None:
    assert main(["audit", "--group", "empty-group"]) == 4
    assert "nothing audited" in capsys.readouterr()[1]
