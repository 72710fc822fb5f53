"""The windows/schedule commands end to end (real policy loader, temporary policy folder),
plus validate hooks and scheduler export."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from window_builders import make_window, policy_set

from orchestrator.cli.main import main
from orchestrator.windows.export import export_cron, export_systemd
from orchestrator.windows.lint import window_warnings
from orchestrator.windows.schedule import validate_schedule

POLICY = Path(__file__).resolve().parents[2] / "bench" / "bench_windows.py"


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_windows", POLICY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "w.yml").write_text(mod.POLICY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *args):
    code = main(["--policies", "policies", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_open_closed_and_json(workdir, capsys):
    code, out, _ = run(capsys, "windows", "check", "--group", "web",
                       "--at", "2026-11-14T23:00:00+01:00")
    assert code == 0 and "OPEN" in out
    code, out, _ = run(capsys, "--format", "json", "windows", "check", "--group", "web",
                       "--at", "2026-12-20T12:00:00+01:00")
    data = json.loads(out)
    assert code == 3
    assert set(data) == {"group", "open", "at", "reason", "occurrence", "next"}
    assert data["open"] is False and data["occurrence"] is None
    assert "year-end" in data["reason"] and "2027-01-04T00:00:00-05:00" in data["reason"]
    assert data["next"]["occurrence"] == "patch-saturday@2027-01-16T22:00:00+01:00"


def test_check_errors_exit_1(workdir, capsys):
    code, _, err = run(capsys, "windows", "check", "--group", "nope")
    assert code == 1 and "no AssetGroup named 'nope'" in err
    code, _, err = run(capsys, "windows", "check", "--group", "web", "--at", "soon")
    assert code == 1 and "not an ISO 8601 instant" in err


def test_next_json_shape(workdir, capsys):
    code, out, _ = run(capsys, "--format", "json", "windows", "next", "--count", "3",
                       "--from", "2026-11-01T00:00:00Z")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3
    assert rows[0] == {
        "window": "patch-saturday", "occurrence": "patch-saturday@2026-11-14T22:00:00+01:00",
        "start": "2026-11-14T22:00:00+01:00", "end": "2026-11-15T02:00:00+01:00",
        "cutoff": "2026-11-15T01:30:00+01:00", "timezone": "Europe/Berlin", "blockedBy": []}


def test_list(workdir, capsys):
    code, out, _ = run(capsys, "--format", "json", "windows", "list")
    data = json.loads(out)
    assert code == 0 and data["windows"][0]["groups"] == ["web"]
    assert data["freezes"][0]["name"] == "year-end"


def test_schedule_export_files(workdir, capsys):
    code, _, _ = run(capsys, "schedule", "export", "--format", "systemd", "--output", "units",
                     "--from", "2026-11-01T00:00:00Z", "--days", "60")
    assert code == 0
    timer = (workdir / "units" / "orchestrator-window-patch-saturday.timer").read_text()
    assert "OnCalendar=2026-11-14 22:00:00 Europe/Berlin" in timer
    service = (workdir / "units" / "orchestrator-window-patch-saturday.service").read_text()
    assert f"WorkingDirectory={workdir}" in service and "run-window patch-saturday" in service


def test_export_gap_and_fold_entries():
    w = make_window({"cron": "30 2 * * SUN", "timezone": "Europe/Berlin", "duration": "1h"})
    ps = policy_set([w])
    now = datetime(2026, 3, 1, tzinfo=UTC)
    cron = export_cron(ps, now, ["/usr/bin/orchestrator"], "/srv/ops dir", 300)
    text = cron["orchestrator-windows.crontab"]
    assert ("30 3 29 3 * case \"$(TZ=Europe/Berlin date +\\%Y\\%m\\%d)\" in "
            "20260329|20260330) cd '/srv/ops dir' && /usr/bin/orchestrator run-window "
            "patch-window;; esac  # patch-window@2026-03-29T03:30:00+02:00\n") in text
    # 02:30 first instant = 00:30 UTC; its guard reads the date in UTC too
    assert ("CRON_TZ=UTC\n30 0 25 10 * case \"$(TZ=UTC date +\\%Y\\%m\\%d)\" in "
            "20261025|20261026) ") in text
    units = export_systemd(ps, now, ["/usr/bin/orchestrator"], "/srv", 300)
    timer = units["orchestrator-window-patch-window.timer"]
    assert "OnCalendar=2026-03-29 03:30:00 Europe/Berlin" in timer
    assert "OnCalendar=2026-10-25 00:30:00 UTC" in timer


@pytest.mark.parametrize("spec, problem", [
    ({"cron": "0 22 * *", "timezone": "UTC"}, "5 fields"),
    ({"cron": "0 25 * * *", "timezone": "UTC"}, "does not parse"),
    ({"cron": "0 22 15W * *", "timezone": "UTC"}, "not supported"),
    ({"cron": "0 22 1 * TUE#2", "timezone": "UTC"}, "ambiguous"),
    ({"rrule": "RRULE:FREQ=DAILY", "timezone": "UTC"}, "DTSTART"),
    ({"rrule": "DTSTART;TZID=Europe/Paris:20260101T220000\nRRULE:FREQ=DAILY",
      "timezone": "Europe/Berlin"}, "TZID=Europe/Paris"),
    ({"rrule": "DTSTART:20260101T220000\nRRULE:FREQ=SOMETIMES", "timezone": "UTC"},
     "does not parse"),
    # digits are 0-9 only, as in ECMA regular expressions (Python's \\d takes any script's)
    ({"cron": "\u0660 \u0663 * * *", "timezone": "UTC"}, "does not parse"),
    ({"cron": "0 \u0663 * * *", "timezone": "UTC"}, "does not parse"),
    ({"cron": "0 3 * * \u0661", "timezone": "UTC"}, "does not parse"),
    ({"cron": "0 3 1-\u0665 * *", "timezone": "UTC"}, "does not parse"),
    ({"rrule": "DTSTART:20260101T220000\nRRULE:FREQ=DAILY;BYHOUR=\u0663", "timezone": "UTC"},
     "ASCII"),
    ({"rrule": "DTSTART:\u0662\u0660\u0662\u06660101T220000\nRRULE:FREQ=DAILY",
      "timezone": "UTC"}, "ASCII"),
])
def test_validate_schedule_problems(spec, problem):
    w = make_window({**spec, "duration": "1h"})
    problems = validate_schedule(w)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize("text", [
    "DTSTART:20260101T220000\nRRULE:FREQ=DAILY;BYHOUR=\u0663",
    "DTSTART:20260101T220000\nRRULE:FREQ=DAILY;INTERVAL=\u0662",
    "DTSTART:20260101T220000\nRRULE:FREQ=MONTHLY;BYDAY=\u0661MO",
    "DTSTART:\u0662\u0660\u0662\u06660101T220000\nRRULE:FREQ=DAILY",
    "DTSTART:20260101T220000\nRRULE:FREQ=DAILY\nRDATE:\u0662\u0660\u0662\u06660102T220000",
])
def test_fast_rrule_path_reads_ascii_digits_only(text):
    from orchestrator.windows.rrule_simple import parse_simple

    assert parse_simple(text.replace("\u0660", "0").replace("\u0661", "1")
                        .replace("\u0662", "2").replace("\u0663", "3")
                        .replace("\u0666", "6")) is not None
    assert parse_simple(text) is None


def test_fast_cron_path_reads_ascii_digits_only():
    from orchestrator.windows.schedule import _Unsupported, quick_expand

    assert quick_expand("0 3 * * 1")[0][:2] == [[0], [3]]
    for expr in ("\u0660 3 * * 1", "0 3 * * \u0661", "*/\u0665 3 * * *", "0 3 * * 1#\u0662"):
        with pytest.raises(_Unsupported):
            quick_expand(expr)


def test_validate_schedule_ok():
    assert validate_schedule(make_window({"cron": "0 22 * * 5L", "timezone": "UTC",
                                          "duration": "1h"})) == []


def test_window_warnings():
    from window_builders import make_freeze

    now = datetime(2026, 3, 1, tzinfo=UTC)
    never = make_window({"cron": "0 1 * * *", "timezone": "UTC", "duration": "1h",
                         "validUntil": "2026-01-01"}, name="gone")
    dst = make_window({"cron": "30 2 * * SUN", "timezone": "Europe/Berlin", "duration": "1h"},
                      name="dst")
    frozen = make_window({"cron": "0 3 1 6 *", "timezone": "UTC", "duration": "1h"},
                         name="june")
    ored = make_window({"cron": "0 22 8-14 * TUE", "timezone": "UTC", "duration": "1h"},
                       name="ored")
    f = make_freeze({"name": "summer", "from": "2026-05-31T00:00", "until": "2026-06-02T00:00",
                     "timezone": "UTC"})
    clean = make_window({"cron": "0 22 * * TUE#2", "timezone": "UTC", "duration": "1h"},
                        name="clean")
    ws = window_warnings(policy_set([never, dst, frozen, ored, clean], [f]), now)
    text = "\n".join(ws)
    assert "gone: never occurs in the next year" in text
    assert "dst@2026-03-29T03:30:00+02:00" in text and "spring-forward gap" in text
    assert "june: every occurrence in the next year is blocked by freezes (summer)" in text
    assert "ored" in text and "EITHER" in text
    # One warning per problem (dst: the gap and the freeze on 2026-05-31), none for the
    # window without problems, at any instant.
    per_window = Counter(w.split("Window/")[1].split(":")[0] for w in ws)
    assert per_window == {"dst": 2, "gone": 1, "june": 1, "ored": 1}
    assert window_warnings(policy_set([clean]), now) == []
    assert window_warnings(policy_set([clean]), now + timedelta(days=1)) == []


@pytest.mark.parametrize("args", [
    ["windows", "next", "--from", "9999-12-31T00:00:00+00:00"],
    ["windows", "check", "--group", "web", "--at", "0001-01-01T00:00:00+00:00"],
    ["run-window", "patch-saturday", "--dry-run", "--at", "9999-12-31T23:59:59+00:00"],
    ["schedule", "export", "--format", "cron", "--from", "9000-12-31T23:00:00-05:00"],
    ["windows", "check", "--group", "web", "--at", "1969-12-31T23:00:00"],
])
def test_out_of_range_instants_exit_1_with_one_line(workdir, capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "out of range" in err and "1970 to 9000" in err, err
    assert "Traceback" not in err and "internal error" not in err


def test_instants_at_the_range_limits_work(workdir, capsys):
    code, out, _ = run(capsys, "--format", "json", "windows", "next", "--count", "2",
                       "--from", "9000-12-31T23:59:59Z")
    assert code == 0
    assert [r["start"] for r in json.loads(out)] == ["9001-01-17T22:00:00+01:00",
                                                     "9001-02-14T22:00:00+01:00"]
    code, out, _ = run(capsys, "windows", "check", "--group", "web",
                       "--at", "1970-01-01T00:00:00Z")
    assert code == 3 and "1970-01-17T22:00:00+01:00" in out
    code, out, _ = run(capsys, "schedule", "export", "--format", "systemd", "--days", "3660",
                       "--from", "9000-12-31T23:59:59Z")
    assert code == 0 and "OnCalendar=9010-" in out


@pytest.mark.parametrize("at", [datetime.min.replace(tzinfo=UTC), datetime.max.replace(
    tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(1, 1, 1, 1, tzinfo=UTC)])
@pytest.mark.parametrize("spec", [
    {"cron": "0 22 * * TUE#2", "offsetDays": 4, "timezone": "Europe/Berlin"},
    {"cron": "59 23 31 12 *", "timezone": "Pacific/Kiritimati"},
    {"cron": "0 0 1 1 *", "timezone": "America/New_York"},
    {"rrule": "DTSTART;TZID=UTC:00020101T000000\nRRULE:FREQ=MONTHLY;BYSETPOS=1;BYDAY=MO",
     "timezone": "UTC"},
])
def test_occurrences_near_datetime_limits_stop_cleanly(spec, at):
    from orchestrator.windows.occurrences import occurrences

    w = make_window({**spec, "duration": "4h"})
    for horizon in (timedelta(0), timedelta(days=800), None):
        for ongoing in (True, False):
            occs = list(islice(occurrences(w, at, ongoing=ongoing, horizon=horizon), 30))
            assert all(a.start < b.start for a, b in zip(occs, occs[1:], strict=False))
            if at.year > 5000:
                assert all(o.start.year >= 9999 for o in occs)
