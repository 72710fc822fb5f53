"""The CLI skeleton: validate, log, log verify, configuration and error handling."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
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


def _last(path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    conn.close()
    return row[0], row[1]


def test_log_verify_prints_anchor_and_checks_it(workdir: Path, capsys) -> None:
    path = _seed(workdir, 3)
    seq, digest = _last(path)
    code, out, err = run(capsys, "log", "verify")
    assert code == 0, err
    assert f"anchor 3:{digest}" in out and seq == 3
    code, out, err = run(capsys, "-q", "log", "verify")
    assert code == 0 and out == f"3:{digest}\n"
    code, out, err = run(capsys, "--format", "json", "log", "verify")
    data = json.loads(out)
    assert code == 0 and data["intact"] is True and data["records"] == 3
    assert (data["lastSeq"], data["lastHash"], data["anchor"]) == (3, digest, f"3:{digest}")
    # the anchor is accepted back, now and after more records were appended
    code, out, err = run(capsys, "log", "verify", "--expect", f"3:{digest}")
    assert code == 0, err
    _seed(workdir, 2)
    code, out, err = run(capsys, "log", "verify", "--expect", f"3:{digest.upper()}")
    assert code == 0 and "intact: 5 records" in out, err
    code, out, err = run(capsys, "--format", "json", "log", "verify", "--expect", f"3:{digest}")
    assert code == 0 and json.loads(out)["expected"] == f"3:{digest}"


def test_log_verify_expect_shows_removed_last_records(workdir: Path, capsys) -> None:
    path = _seed(workdir, 4)
    seq, digest = _last(path)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM records WHERE seq >= 3")
    conn.commit()
    conn.close()
    assert run(capsys, "log", "verify")[0] == 0  # the chain alone cannot see it
    code, out, err = run(capsys, "log", "verify", "--expect", f"{seq}:{digest}")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "the log ends at record 2 but the expected anchor is record 4" in err
    code, out, err = run(capsys, "--format", "json", "log", "verify", "--expect",
                         f"{seq}:{digest}")
    data = json.loads(out)
    assert code == 1 and data["intact"] is False and data["anchor"] is None


def test_log_verify_expect_shows_rebuilt_chain(workdir: Path, capsys) -> None:
    path = _seed(workdir, 3)
    seq, digest = _last(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = SqliteStore(path)  # a new, self-consistent chain of the same length
    for i in range(3):
        store.append(Entry(run="r-forged", action="audit", status="ok", actor="tester@ci",
                           policy_revision="rev", host=f"lab-0{i + 1}", details={"i": i}))
    store.close()
    assert run(capsys, "log", "verify")[0] == 0
    code, out, err = run(capsys, "log", "verify", "--expect", f"3:{digest}")
    assert code == 1
    assert "change log broken at record 3" in err and "rebuilt" in err


@pytest.mark.parametrize("anchor", ["3", "3:abc", "three:" + "0" * 64, "0:" + "0" * 64])
def test_log_verify_expect_bad_anchor(workdir: Path, capsys, anchor: str) -> None:
    _seed(workdir, 1)
    code, out, err = run(capsys, "log", "verify", "--expect", anchor)
    assert code == 1 and "expected SEQ:HASH" in err and "Traceback" not in err


def test_log_verify_missing_or_empty_log_is_not_intact(workdir: Path, capsys) -> None:
    db = workdir / ".orchestrator" / "state.db"
    code, out, err = run(capsys, "log", "verify")
    assert code == 1
    assert err.count("\n") == 1 and "no change log: the state database does not exist" in err
    assert not db.exists()  # verifying does not create it
    code, out, err = run(capsys, "--format", "json", "log", "verify")
    assert code == 1 and json.loads(out)["intact"] is False
    SqliteStore(db).close()
    code, out, err = run(capsys, "log", "verify")
    assert code == 1 and "change log not intact: the change log is empty" in err
    code, out, err = run(capsys, "--format", "json", "log", "verify")
    data = json.loads(out)
    assert code == 1 and data["intact"] is False and data["records"] == 0


def test_version(capsys) -> None:
    from importlib.metadata import version

    code, out, err = run(capsys, "--version")
    assert code == 0 and out == f"orchestrator {version('orchestrator')}\n"


FORGED_ACTOR = "ci\n     9 2026-01-01T00:00:00Z r-x audit ok by admin\x1b[2K\x1b]0;t\x07\u202e"


def test_log_text_escapes_control_characters(workdir: Path, capsys, monkeypatch) -> None:
    store = SqliteStore(workdir / ".orchestrator" / "state.db")
    store.append(Entry(run="r-1", action="audit", status="ok", actor=FORGED_ACTOR,
                       policy_revision="rev", host="h\x9b31m", details={"v": "1.0\x1b[31m"}))
    store.close()
    code, out, err = run(capsys, "log")
    assert code == 0
    assert len(out.splitlines()) == 1  # the newline in the actor forged no second line
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    assert "by ci\\n     9 2026" in out and "\\x1b[2K" in out and "\\u202e" in out
    assert "h\\x9b31m" in out
    code, out, err = run(capsys, "log", "--format", "json")
    assert "\u202e" not in out and "\x9b" not in out and "\x1b" not in out
    assert json.loads(out)["actor"] == FORGED_ACTOR  # same value, escaped


def test_log_csv_escapes_and_neutralises_formulas(workdir: Path, capsys) -> None:
    import csv
    import io

    store = SqliteStore(workdir / ".orchestrator" / "state.db")
    store.append(Entry(run="r-1", action="audit", status="ok", actor="=HYPERLINK(\"x\")",
                       policy_revision="rev", host="@SUM(1)", group="-2+3",
                       details={"v": "a\x1bb"}))
    store.close()
    code, out, err = run(capsys, "log", "--format", "csv")
    assert code == 0 and "\x1b" not in out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["actor"] == "'=HYPERLINK(\"x\")"
    assert rows[0]["host"] == "'@SUM(1)" and rows[0]["group"] == "'-2+3"
    assert rows[0]["details"] == '{"v": "a\\u001bb"}' and rows[0]["seq"] == "1"


def test_error_lines_escape_control_characters(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--config", "x\x1b]0;owned\x07\n\u202eforged.yml", "validate")
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert len(err.splitlines()) == 1 and "x\\x1b]0;owned\\x07\\n\\u202eforged.yml" in err


@pytest.mark.parametrize("url", [
    "postgresql://orch:s3cret@db.example/orchestrator",
    "postgres://orch:s3cret/with@slash@db/x",
    "mysql://orch:s3cret@db/x",
    "postgresql://db/x?sslmode=require&password=s3cret",
])
def test_state_url_password_never_printed(tmp_path: Path, monkeypatch, capsys,
                                          url: str) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["--state", url, "log"], ["--state", url, "-v", "log", "verify"]):
        code, out, err = run(capsys, *argv)
        assert code == 1
        assert "s3cret" not in err + out and "***" in err
        assert "Traceback" not in err or "-v" in argv
    monkeypatch.setenv("ORCHESTRATOR_STATE", url)
    code, out, err = run(capsys, "--format", "json", "log", "verify")
    assert code == 1 and "s3cret" not in err + out


def test_every_error_line_hides_url_passwords(tmp_path: Path, monkeypatch, capsys) -> None:
    """main() redacts whatever message reaches it, not only the store's own."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "log", "--since", "postgresql://u:s3cret@h/db")
    assert code == 1 and "s3cret" not in err and "postgresql://u:***@h/db" in err
    # a URL that went through a path join keeps one slash; still hidden
    code, out, err = run(capsys, "--config", "postgresql://u:s3cret@h/orchestrator.yml", "log")
    assert code == 1 and "s3cret" not in err and "postgresql:/u:***@h/orchestrator.yml" in err


@pytest.mark.parametrize("state", ["postgresql:/u:s3cret@h/db", "postgres:u:s3cret@h/db"])
def test_state_that_is_no_url_nor_path(tmp_path: Path, monkeypatch, capsys, state) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--state", state, "log")
    assert code == 1 and "s3cret" not in err and "not a store URL" in err
    assert list(tmp_path.iterdir()) == []  # no folder named after the password


@pytest.mark.parametrize(("text", "message"), [
    ("ssh:\n  knownHosts: null\n", "orchestrator.yml: ssh.knownHosts must be the path of a "
                                   "known_hosts file, not null; remove the key to use "
                                   "~/.ssh/known_hosts"),
    ("ssh:\n  knownHosts: [a]\n", "orchestrator.yml: ssh.knownHosts must be the path"),
    ("policies:\n", "orchestrator.yml: policies must be a path or URL (a string), not null"),
    ("state: 5\n", "orchestrator.yml: state must be a path or URL (a string), not 5"),
    ("forks: " + "9" * 5000 + "\n", "orchestrator.yml:1:8: number too large"),
    ("ssh: {hostKeys: [1]}\n", "orchestrator.yml: ssh.hostKeys must be strict or acceptNew"),
    ("forks: " + "9" * 400 + "\n", "orchestrator.yml:1:8: number too large"),
    ("forks: " + "9" * 19 + "\n", "forks must be a whole number from 1 to 1000, not 999"),
    # the configuration is read as policy files are: no aliases, no duplicate keys, one document
    ("policies: &p policies/\nplaybooks: *p\n", "orchestrator.yml:1:11: YAML anchors and "
     "aliases (&name, *name) are not allowed in the configuration file"),
    ("forks: 5\nforks: 6\n", "orchestrator.yml:2:1: duplicate key 'forks'"),
    ("forks: 5\n---\nforks: 6\n", "orchestrator.yml:3:1: more than one YAML document"),
    ("forks: true\n", "forks must be a whole number from 1 to 1000, not true"),
    ("forks: 2.5\n", "forks must be a whole number from 1 to 1000, not 2.5"),
    ("1: x\nfoo: y\n", "unknown setting '1'"),
])
def test_config_errors_are_one_line(tmp_path: Path, monkeypatch, capsys, text: str,
                                    message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orchestrator.yml").write_text(text)
    code, out, err = run(capsys, "log")
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err and "internal error" not in err
    assert len(err) < 300
    assert not (tmp_path / "None").exists()


def test_config_alias_bomb_is_refused_at_once(tmp_path: Path, monkeypatch, capsys) -> None:
    """A few hundred bytes of anchors expand to millions of values: refused where the first
    anchor is written, before anything is expanded (or shown in a message)."""
    monkeypatch.chdir(tmp_path)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    (tmp_path / "orchestrator.yml").write_text("forks:\n  " + "\n  ".join(lines) + "\n")
    start = time.monotonic()
    code, out, err = run(capsys, "log")
    assert time.monotonic() - start < 5
    assert code == 1 and len(err.splitlines()) == 1
    assert "orchestrator.yml:2:7: YAML anchors and aliases" in err


def test_wrong_config_value_is_shown_without_expanding_it() -> None:
    """A wrong value is shown cut, and only what is shown is turned into text."""
    from orchestrator.config import _shown

    calls = []

    class Item:
        def __repr__(self) -> str:
            calls.append(1)
            return "item"

    shown = _shown([Item() for _ in range(1000)])
    assert len(shown) <= 60 and shown.startswith("[item, item")
    assert len(calls) < 20
    long = _shown("x" * 1000)
    assert len(long) <= 60 and long.startswith("'xxx") and "..." in long
    assert (_shown(None), _shown(True), _shown(5)) == ("null", "true", "5")


def test_forks_from_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_FORKS", "٣")  # a digit, but not 0-9
    code, out, err = run(capsys, "log")
    assert code == 1 and "ORCHESTRATOR_FORKS: forks must be a whole number" in err
    from orchestrator.config import load_config

    monkeypatch.setenv("ORCHESTRATOR_FORKS", " 7 ")
    assert load_config(cwd=tmp_path).forks == 7


def test_schema_command_prints_the_schema_validate_uses(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    """`orchestrator schema` is the shipped schema, and it refuses what validate refuses."""
    import jsonschema

    monkeypatch.chdir(tmp_path)  # no configuration needed
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr()[0])
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = {"apiVersion": "orchestrator/v1", "kind": "Baseline", "metadata": {"name": "b"},
           "spec": {"platform": "linux", "packages": {"installed": ["x$(reboot)"]}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    doc["spec"]["packages"]["installed"] = ["openssh-server"]
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
