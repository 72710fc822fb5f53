"""`windows next --count N` honours N: it searches until N occurrences are found or every
schedule provably ends (COUNT, UNTIL, validUntil), within a stated bound (400 years), and
says so (stderr, exit 4) when the bound cuts the list short. JSON stays SPEC's list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from window_builders import make_window

from orchestrator.cli.main import main
from orchestrator.windows.occurrences import compile_window
from orchestrator.windows.schedule import compile_cron, compile_rrule
from orchestrator.windows.upcoming import NEXT_SEARCH, NEXT_SEARCH_YEARS, upcoming

FROM = "2026-03-01T00:00:00Z"

WINDOWS = {
    "leap": {"cron": "0 3 29 2 *"},
    "yearly": {"rrule": "DTSTART;TZID=Europe/Berlin:20200101T030000\\nRRULE:FREQ=YEARLY"},
    "far": {"cron": "0 3 * * MON", "validFrom": "2031-01-01"},
    "count60": {"rrule": "DTSTART;TZID=Europe/Berlin:20200101T030000\\n"
                         "RRULE:FREQ=YEARLY;COUNT=60"},
    "until": {"rrule": "DTSTART;TZID=Europe/Berlin:20200101T030000\\n"
                       "RRULE:FREQ=YEARLY;UNTIL=20300101T020000Z"},
    "ends": {"cron": "0 0 1 1 *", "validUntil": "2029-01-01"},  # bare date: excluded start
    "never": {"cron": "0 3 30 2 *"},
    "weekly": {"cron": "0 22 * * SAT"},
}


def _doc(name: str, spec: dict) -> str:
    schedule = (f'{{cron: "{spec["cron"]}"}}' if "cron" in spec
                else f'{{rrule: "{spec["rrule"]}"}}')
    extra = "".join(f"\n  {k}: {v}" for k, v in spec.items() if k not in ("cron", "rrule"))
    return (f"apiVersion: orchestrator/v1\nkind: Window\nmetadata: {{name: {name}}}\nspec:\n"
            f"  schedule: {schedule}\n  timezone: Europe/Berlin\n  duration: 1h{extra}\n")


@pytest.fixture()
def policies(tmp_path, monkeypatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "w.yml").write_text(
        "---\n".join(_doc(n, s) for n, s in WINDOWS.items()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def next_json(capsys, window: str, count: int, *extra: str) -> tuple[int, list, str]:
    code = main(["--policies", "policies", "--format", "json", "windows", "next",
                 "--window", window, "--count", str(count), "--from", FROM, *extra])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def starts(rows: list[dict]) -> list[str]:
    return [r["start"] for r in rows]


def test_leap_day_window_gives_count_occurrences(policies, capsys) -> None:
    code, rows, err = next_json(capsys, "leap", 5)
    assert starts(rows) == [f"{y}-02-29T03:00:00+01:00" for y in (2028, 2032, 2036, 2040, 2044)]
    assert code == 0 and err == ""


def test_yearly_window_beyond_two_years(policies, capsys) -> None:
    code, rows, err = next_json(capsys, "yearly", 12)
    assert starts(rows) == [f"{y}-01-01T03:00:00+01:00" for y in range(2027, 2039)]
    assert code == 0 and err == ""


def test_far_valid_from(policies, capsys) -> None:
    code, rows, err = next_json(capsys, "far", 3)
    assert starts(rows) == ["2031-01-06T03:00:00+01:00", "2031-01-13T03:00:00+01:00",
                            "2031-01-20T03:00:00+01:00"]
    assert code == 0 and err == ""


def test_count_rule_longer_than_fifty_years_ends_with_its_count(policies, capsys) -> None:
    """COUNT=60 from 2020: 2027..2079 remain (53), all of them, and no warning: the rule
    provably ends."""
    code, rows, err = next_json(capsys, "count60", 100)
    assert starts(rows) == [f"{y}-01-01T03:00:00+01:00" for y in range(2027, 2080)]
    assert code == 0 and err == ""


@pytest.mark.parametrize(("window", "years"), [
    ("until", [2027, 2028, 2029, 2030]),  # UNTIL 2030-01-01T02:00Z = 03:00 local: inclusive
    ("ends", [2027, 2028]),  # validUntil 2029-01-01 00:00 excludes that day's start
    ("never", []),  # 30 February: no start in a whole 400-year calendar cycle, none ever
])
def test_schedules_that_end_give_fewer_without_a_warning(policies, capsys, window,
                                                         years) -> None:
    code, rows, err = next_json(capsys, window, 10)
    hour = "03" if window != "ends" else "00"
    assert starts(rows) == [f"{y}-01-01T{hour}:00:00+01:00" for y in years]
    assert code == 0 and err == ""


def test_bound_hit_is_reported_on_stderr_and_exit_4(policies, capsys) -> None:
    """97 leap days in 400 years: asking for 150 hits the bound. The JSON is still the list
    of what was found; stderr says how many of how many, where the search stopped, and
    which window may occur later; exit 4 (incomplete)."""
    code, rows, err = next_json(capsys, "leap", 150)
    assert len(rows) == 97
    assert rows[-1]["start"] == "2424-02-29T03:00:00+01:00"
    assert code == 4
    assert err.startswith("warning: windows next: 97 of 150 occurrences found")
    assert "2426-03-01T00:00:00+00:00 (400 years after 2026-03-01T00:00:00+00:00)" in err
    assert "leap may occur later" in err and err.count("\n") == 1


def test_bound_hit_in_text_output(policies, capsys) -> None:
    code = main(["--policies", "policies", "windows", "next", "--window", "leap", "--count",
                 "98", "--from", FROM])
    out = capsys.readouterr()
    assert code == 4
    assert len(out.out.splitlines()) == 97
    assert "97 of 98 occurrences found" in out.err


def test_several_windows_list_exactly_the_first_ones(policies, capsys) -> None:
    code = main(["--policies", "policies", "--format", "json", "windows", "next", "--count",
                 "5", "--from", "2028-02-28T00:00:00Z"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["window"], r["start"]) for r in rows] == [
        ("leap", "2028-02-29T03:00:00+01:00"),
        ("weekly", "2028-03-04T22:00:00+01:00"),
        ("weekly", "2028-03-11T22:00:00+01:00"),
        ("weekly", "2028-03-18T22:00:00+01:00"),
        ("weekly", "2028-03-25T22:00:00+01:00"),
    ]
    assert code == 0


# ---------------------------------------------------------------- the engine
def test_upcoming_searches_every_window_to_the_same_bound() -> None:
    """With a short bound: what is listed is exactly every occurrence up to it, and only the
    windows that may still occur are named."""
    weekly = make_window({"cron": "0 3 * * MON", "timezone": "UTC", "duration": "1h"}, "weekly")
    later = make_window({"cron": "0 3 * * TUE", "timezone": "UTC", "duration": "1h",
                         "validFrom": "2026-01-20"}, "later")
    done = make_window({"cron": "0 3 * * WED", "timezone": "UTC", "duration": "1h",
                        "validUntil": "2026-01-10"}, "done")
    after = datetime(2026, 1, 1, tzinfo=UTC)
    found = upcoming([weekly, later, done], after, 100, search=timedelta(days=20))
    assert found.begin == after and found.limit == datetime(2026, 1, 21, tzinfo=UTC)
    assert [(o.window, o.start.day) for o in found.occurrences] == [
        ("weekly", 5), ("done", 7), ("weekly", 12), ("weekly", 19), ("later", 20)]
    assert found.unfinished == ("weekly", "later") and found.truncated
    enough = upcoming([weekly, later, done], after, 3, search=timedelta(days=20))
    assert not enough.truncated and len(enough.occurrences) == 3


def test_upcoming_bound_counts_from_the_earliest_valid_from() -> None:
    far = make_window({"cron": "0 3 1 1 *", "timezone": "UTC", "duration": "1h",
                       "validFrom": "2500-01-01"}, "far")
    after = datetime(2026, 1, 1, tzinfo=UTC)
    found = upcoming([far], after, 3)
    assert [o.start.year for o in found.occurrences] == [2500, 2501, 2502]
    assert found.begin == datetime(2500, 1, 1, tzinfo=UTC) and not found.truncated
    assert NEXT_SEARCH == timedelta(days=146_097) and NEXT_SEARCH_YEARS == 400


def test_window_ends_by() -> None:
    lim = datetime(2030, 1, 1, 12, tzinfo=UTC)

    def ends(spec: dict) -> bool:
        return compile_window(make_window({"timezone": "UTC", "duration": "1h", **spec}))\
            .ends_by(lim)

    assert not ends({"cron": "0 3 * * *"})
    assert ends({"cron": "0 3 30 2 *"})
    assert ends({"cron": "0 3 * * *", "validUntil": "2030-01-01T12:00"})
    assert not ends({"cron": "0 3 * * *", "validUntil": "2030-01-05T12:00"})
    assert ends({"rrule": "DTSTART;TZID=UTC:20200101T030000\nRRULE:FREQ=DAILY;COUNT=5"})
    assert not ends({"rrule": "DTSTART;TZID=UTC:20200101T030000\nRRULE:FREQ=DAILY;COUNT=9999"})
    assert ends({"rrule": "DTSTART;TZID=UTC:20200101T030000\n"
                          "RRULE:FREQ=DAILY;UNTIL=20250101T000000Z"})
    assert not ends({"rrule": "DTSTART;TZID=UTC:20200101T030000\n"
                              "RRULE:FREQ=DAILY;UNTIL=20250101T000000Z\nRDATE:20310101T030000"})
    assert not ends({"rrule": "DTSTART;TZID=UTC:20200101T030000\n"
                              "RRULE:FREQ=DAILY;COUNT=5\nRRULE:FREQ=WEEKLY"})


def test_schedule_end_bounds_its_own_search() -> None:
    """`end` lets a schedule be followed beyond SEARCH_YEARS (and stops it early)."""
    cron = compile_cron("0 3 1 1 *")
    assert [d.year for d in cron.starts(datetime(2026, 1, 1), datetime(2200, 1, 1))][-1] == 2200
    assert [d.year for d in cron.starts(datetime(2026, 1, 1))][-1] == 2076  # SEARCH_YEARS
    rule = compile_rrule("DTSTART;TZID=UTC:20200101T030000\nRRULE:FREQ=YEARLY", "UTC")
    years = [d.year for d in rule.starts(datetime(2026, 1, 1), datetime(2200, 1, 1))]
    assert years == list(range(2026, 2200))
    assert cron.ends_before(datetime(2030, 1, 1)) is False
