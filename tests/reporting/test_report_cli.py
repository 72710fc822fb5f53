"""`orchestrator report`: formats, files, waivers from the policies, bad input, and values
from the log that must not become markup."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from reportdata import write_estate

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=alert(1)>[x](http://evil.example)@admin"
PERIOD = ("--from", "2026-09-01", "--until", "2026-10-31")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "policies" / "waivers" / "soon.yml").write_text(
        "apiVersion: orchestrator/v1\nkind: Waiver\nmetadata: {name: chrony-later}\n"
        "spec:\n  groups: [web]\n  checks: ['package.installed:chrony']\n"
        "  justification: NTP appliance replaced in November\n  expires: 2026-11-15\n")
    (tmp_path / "orchestrator.yml").write_text(
        "policies: policies/\nstate: sqlite:///.orchestrator/state.db\n")
    state = tmp_path / ".orchestrator"
    state.mkdir(mode=0o700)
    store = SqliteStore(state / "state.db")
    write_estate(store, hostile=HOSTILE)
    store.close()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_to_stdout(workdir, capsys):
    code, out, err = run(capsys, "report", *PERIOD, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["headline"].startswith("Change log intact")
    assert data["period"]["lastDay"] == "2026-10-31"  # a date alone includes that day
    assert data["overall"]["patchCompliance"]["hosts"] == 3
    waivers = data["overall"]["waivers"]
    assert [(w["name"], w["daysLeft"], w["groups"]) for w in waivers] == [
        ("chrony-later", 15, ["web"])]  # legacy-telnet expires in 2027: not listed
    assert waivers[0]["source"].startswith("policies/waivers/soon.yml:") or \
        "soon.yml" in waivers[0]["source"]
    web = next(g for g in data["groups"] if g["group"] == "web")
    assert [w["name"] for w in web["waivers"]] == ["chrony-later"]


def test_global_json_format_is_the_default(workdir, capsys):
    code, out, _ = run(capsys, "--format", "json", "report", *PERIOD)
    assert code == 0 and json.loads(out)["period"]["records"] > 0


def test_files_are_private_and_whole(workdir, capsys):
    for fmt in ("html", "markdown", "json"):
        target = workdir / f"report.{fmt}"
        code, out, err = run(capsys, "report", *PERIOD, "--format", fmt, "--output",
                             str(target))
        assert code == 0, err
        assert out == "" and f"report written to {target}" in err
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".tmp")] == []


def test_output_link_is_replaced_not_followed(workdir, capsys):
    victim = workdir / "victim.txt"
    victim.write_text("keep me")
    (workdir / "out.md").symlink_to(victim)
    code, _, err = run(capsys, "report", *PERIOD, "--format", "markdown", "--output", "out.md")
    assert code == 0, err
    assert victim.read_text() == "keep me"
    assert not (workdir / "out.md").is_symlink()


def test_markdown_escapes_log_values(workdir, capsys):
    code, out, _ = run(capsys, "report", *PERIOD, "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("**Change log intact through record")
    assert "<img" not in out and "](http" not in out and "@admin" not in out
    assert "&#60;img src=x onerror=alert(1)&#62;" in out
    assert "## Appendix: the records behind each figure" in out
    # each reference in the text has its row in the appendix
    refs = {p.split("]")[0] for p in out.split("[R")[1:]}
    for ref in refs:
        assert f"| R{ref} |" in out


def test_html_escapes_and_is_self_contained(workdir, capsys):
    code, out, _ = run(capsys, "report", *PERIOD, "--format", "html")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")
    assert "<img" not in out and "onerror=alert(1)&gt;" in out
    assert "Content-Security-Policy" in out and "default-src 'none'" in out
    assert "<script" not in out.lower()
    assert out.count("<svg") >= 4  # compliance, drift, time to install, windows, firmware
    for ref in {p.split('"')[0] for p in out.split('href="#')[1:]}:
        assert f'id="{ref}"' in out


@pytest.mark.parametrize(("argv", "message"), [
    (("--from", "2026-10-01", "--until", "2026-09-01"), "is not before --until"),
    (("--from", "yesterday"), "--from 'yesterday': not an ISO 8601 date or time"),
    (("--output", "no/such/folder/r.html"), "does not exist"),
])
def test_bad_input_is_one_line(workdir, capsys, argv, message):
    code, out, err = run(capsys, "report", "--format", "html", *argv)
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_broken_policies_still_report(workdir, capsys):
    (workdir / "policies" / "waivers" / "broken.yml").write_text("kind: Waiver\nspec: [\n")
    code, out, err = run(capsys, "report", *PERIOD, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert any("do not validate" in n or "not listed" in n for n in data["notes"])


def test_broken_chain_warns(workdir, capsys):
    import sqlite3

    conn = sqlite3.connect(workdir / ".orchestrator" / "state.db")
    conn.execute("UPDATE records SET status = 'forged' WHERE seq = 4")
    conn.commit()
    conn.close()
    code, out, err = run(capsys, "report", *PERIOD, "--format", "markdown")
    assert code == 0  # SPEC: report exits 0; the report and stderr say it
    assert out.splitlines()[0].startswith("**WARNING: the change log is BROKEN at record 4")
    assert "BROKEN at record 4" in err


def test_umask_does_not_widen(workdir, capsys):
    old = os.umask(0)
    try:
        code, _, _ = run(capsys, "report", *PERIOD, "--format", "json", "--output", "r.json")
    finally:
        os.umask(old)
    assert code == 0 and stat.S_IMODE((workdir / "r.json").stat().st_mode) == 0o600


def _traces(value):
    if isinstance(value, dict):
        if {"query", "seqs", "count", "first", "last"} <= set(value):
            yield value
        for v in value.values():
            yield from _traces(v)
    elif isinstance(value, list):
        for v in value:
            yield from _traces(v)


@pytest.mark.parametrize("scope", [(), ("--group", "web")])
def test_every_trace_query_returns_its_records(workdir, capsys, scope):
    """An auditor runs the `log` command beside a figure and finds the records it names:
    all of them, and for aggregate figures exactly `count` records from first to last (or,
    where the figure picks some of them, more, with a note saying which)."""
    import shlex

    code, out, _ = run(capsys, "report", *PERIOD, "--format", "json", *scope)
    assert code == 0
    traces = list(_traces(json.loads(out)))
    assert len(traces) > 10
    checked = 0
    for t in traces:
        if not t["count"]:
            continue
        argv = shlex.split(t["query"])
        assert argv[:2] == ["orchestrator", "log"], t
        code, lines, err = run(capsys, "--format", "json", "log", *argv[2:])
        assert code == 0, err
        seqs = [json.loads(line)["seq"] for line in lines.splitlines()]
        if t["seqs"]:
            assert set(t["seqs"]) <= set(seqs), t
        elif t["exact"]:
            assert len(seqs) == t["count"] and (seqs[0], seqs[-1]) == (t["first"], t["last"]), t
        else:  # the query returns more; the note says which of them
            assert len(seqs) >= t["count"] and {t["first"], t["last"]} <= set(seqs), t
            assert t["note"], t
        checked += 1
    assert checked > 8


def test_output_never_replaces_what_the_orchestrator_reads(workdir, capsys):
    state = workdir / ".orchestrator" / "state.db"
    before = state.read_bytes()
    for target in (".orchestrator/state.db", ".orchestrator/state.db-wal", "orchestrator.yml",
                   "policies/waivers/soon.yml"):
        code, out, err = run(capsys, "report", *PERIOD, "--format", "json", "--output", target)
        assert code == 1 and "which the orchestrator reads" in err, (target, err)
    assert state.read_bytes() == before
    # a link to the store is replaced by the report, the store is not
    (workdir / "link.json").symlink_to(state)
    assert run(capsys, "report", *PERIOD, "--format", "json", "--output", "link.json")[0] == 0
    assert state.read_bytes() == before


def test_output_refuses_devices_and_pipes(workdir, capsys):
    os.mkfifo(workdir / "pipe")
    os.mknod(workdir / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (workdir / "stdout").symlink_to(workdir / "null")  # as /dev/stdout is a link
    for name in ("pipe", "null", "stdout", "/dev/report.json"):
        code, _, err = run(capsys, "report", *PERIOD, "--format", "json", "--output", name)
        assert code == 1 and ("not a regular file" in err or "in /dev" in err), err
    assert stat.S_ISCHR((workdir / "null").lstat().st_mode)
    assert (workdir / "stdout").is_symlink()
    assert stat.S_ISFIFO((workdir / "pipe").lstat().st_mode)


def test_html_shows_control_characters(workdir, capsys):
    store = SqliteStore(workdir / ".orchestrator" / "state.db")
    from orchestrator.changelog.record import Entry

    store.append(Entry(run="r-x", action="audit", status="drift", actor="a",
                       policy_revision="c" * 40,
                       host="evil\x1b]0;pwned\x07\u202egnp.exe\u3164",
                       group="web", details={"findings": [
                           {"id": "x\x1b[2J", "status": "drift"}]}))
    store.close()
    code, out, _ = run(capsys, "report", "--format", "html")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "evilU+001B]0;pwnedU+0007U+202Egnp.exeU+3164" in out


@pytest.mark.parametrize(("until", "last_day"), [("2026-10-31", "2026-10-31"),
                                                 ("20261031", "2026-10-31")])
def test_a_date_alone_includes_the_day(workdir, capsys, until, last_day):
    code, out, _ = run(capsys, "report", "--from", "2026-09-01", "--until", until,
                       "--format", "json")
    assert code == 0 and json.loads(out)["period"]["lastDay"] == last_day


@pytest.mark.parametrize("argv", [("--until", "9999-12-31"), ("--from", "0001-01-01T00:00:00Z",
                                                               "--until", "0001-01-02")])
def test_extreme_dates_are_one_line(workdir, capsys, argv):
    code, out, err = run(capsys, "report", "--format", "json", *argv)
    assert len(err.strip().splitlines()) <= 1 and "internal error" not in err, err
    assert code in (0, 1)


def test_log_until_date_includes_the_day(workdir, capsys):
    code, out, _ = run(capsys, "--format", "json", "log", "--since", "2026-10-31T00:00:00Z",
                       "--until", "2026-10-31")
    assert code == 0
    times = [json.loads(line)["time"][:10] for line in out.splitlines()]
    assert times and set(times) == {"2026-10-31"}


def test_log_since_far_past(workdir, capsys):
    code, out, err = run(capsys, "log", "--since", "0001-01-01", "--until", "2026-09-02")
    assert code == 0, err
    assert len(out.splitlines()) == 2  # the firmware scan of August and the first patch scan


def test_missing_state_is_not_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--state", "sqlite:///nowhere/state.db", "report",
                         "--format", "json")
    assert code == 1 and out == "" and "no change log" in err
    assert not (tmp_path / "nowhere").exists()
