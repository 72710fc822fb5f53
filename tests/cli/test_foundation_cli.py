"""The CLI skeleton: validate, log, log verify, configuration and error handling."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.changelog.record import Entry
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    shutil.copytree(REPO / "inventories", tmp_path / "inventories")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "orchestrator.yml").write_text(
        "policies: policies/\ninventory: inventories/example.yml\n"
        "state: sqlite:///.orchestrator/state.db\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "tester@ci")
    return tmp_path


def test_validate_examples(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate")
    assert code == 0, err
    assert "policy objects valid" in out


def test_validate_examples_with_inventory(workdir: Path, capsys) -> None:
    code, out, err = run(capsys, "--format", "json", "validate", "--inventory")
    assert code == 0, err
    data = json.loads(out)
    assert data["valid"] is True and data["errors"] == []
    assert data["objects"]["AssetGroup"] == 4 and data["objects"]["Window"] == 3


def test_validate_broken_policy_names_position(workdir: Path, capsys) -> None:
    path = workdir / "policies" / "groups" / "groups.yml"
    path.write_text(path.read_text().replace("windows: [patch-saturday]",
                                             "windows: [patch-sunday]", 1))
    code, out, err = run(capsys, "validate")
    assert code == 1
    assert f"{path}:21:13: AssetGroup/web: unknown Window 'patch-sunday'" in err
    assert "Traceback" not in err


def test_validate_inventory_conflicts(workdir: Path, capsys) -> None:
    (workdir / "policies" / "groups" / "extra.yml").write_text(
        "apiVersion: orchestrator/v1\nkind: AssetGroup\nmetadata: {name: also-lab-01}\n"
        "spec:\n  hosts: {patterns: ['lab-01']}\n  patchPolicy: standard-linux\n"
        "  windows: [patch-saturday]\n---\n"
        "apiVersion: orchestrator/v1\nkind: AssetGroup\nmetadata: {name: orphan}\n"
        "spec: {hosts: {patterns: ['nothing-*'], inventoryGroups: [nope]}}\n")
    code, out, err = run(capsys, "validate", "--inventory")
    assert code == 1
    assert "AssetGroup/canary: host lab-01 is also in also-lab-01 with different patch " \
        "policies (canary-linux; standard-linux)" in err
    assert "host lab-01 is also in also-lab-01 with different windows" in err
    assert "AssetGroup/orphan: matches no host" in err
    assert "AssetGroup/orphan: inventory group 'nope' is not in" in err


def test_missing_policy_dir(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--policies", "nowhere", "validate")
    assert code == 1
    assert err.strip().endswith("policy directory not found; set 'policies' in "
                                "orchestrator.yml or pass --policies")


def test_bad_config_file(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orchestrator.yml").write_text("policies: [unclosed\n")
    code, out, err = run(capsys, "validate")
    assert code == 1
    assert "orchestrator.yml:2:1: not valid YAML" in err
    (tmp_path / "orchestrator.yml").write_text("polices: policies/\n")
    code, out, err = run(capsys, "validate")
    assert code == 1 and "unknown setting 'polices'" in err


def _seed(workdir: Path, n: int = 3) -> Path:
    path = workdir / ".orchestrator" / "state.db"
    store = SqliteStore(path)
    for i in range(n):
        store.append(Entry(run="r-demo", action="audit", status="ok", actor="tester@ci",
                           policy_revision="rev", host=f"lab-0{i + 1}", details={"i": i}))
    store.close()
    return path


def test_log_formats(workdir: Path, capsys) -> None:
    _seed(workdir)
    code, out, err = run(capsys, "log", "--format", "json", "--host", "lab-02")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 1 and lines[0]["host"] == "lab-02" and lines[0]["seq"] == 2
    assert set(lines[0]) == {"seq", "time", "run", "occurrence", "policyRevision", "actor",
                             "host", "group", "action", "status", "details", "prevHash", "hash"}
    code, out, err = run(capsys, "log", "--format", "csv")
    rows = out.splitlines()
    assert rows[0].startswith("seq,time,run") and len(rows) == 4


def test_log_verify_detects_edit(workdir: Path, capsys) -> None:
    path = _seed(workdir, 5)
    code, out, err = run(capsys, "log", "verify")
    assert code == 0 and "intact: 5 records" in out
    conn = sqlite3.connect(path)
    conn.execute("UPDATE records SET status = 'failed' WHERE seq = 4")
    conn.commit()
    conn.close()
    code, out, err = run(capsys, "log", "verify")
    assert code == 1
    assert "change log broken at record 4" in err
    code, out, err = run(capsys, "--format", "json", "log", "verify")
    assert code == 1 and json.loads(out)["brokenAt"] == 4


def test_no_traceback_for_user_errors(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"garbage" * 200)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "--state",
                           f"sqlite:///{tmp_path / 'state.db'}", "log", "verify"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "state.db: not a usable SQLite state database" in proc.stderr
