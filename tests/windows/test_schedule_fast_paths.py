"""The fast paths added for issue 4's performance targets give the same answers as the
libraries they stand in for:

- rrule_simple (common RFC 5545 rules without dateutil) == dateutil's rrulestr;
- compile_cron's shared day-field parse == the full parse of the expression;
(the policy loader's fast paths are checked in tests/policy/test_loader_fast_paths.py).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.windows.rrule_simple import parse_simple
from orchestrator.windows.schedule import _compile_cron, compile_cron, compile_rrule

ROOT = Path(__file__).resolve().parents[2]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


# ---------------------------------------------------------------- rrule
def _csv(values: list) -> str:
    return ",".join(str(v) for v in values)


@st.composite
def simple_rules(draw) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    start = draw(st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2027, 1, 1)))
    start = start.replace(microsecond=0, second=draw(st.sampled_from([0, 0, 30])))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 4))}")
    bound = draw(st.sampled_from(["", "", "count", "until"]))
    if bound == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif bound == "until":
        until = start + timedelta(days=draw(st.integers(0, 1200)))
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%S}")
    if draw(st.booleans()):
        parts.append("BYMONTH=" + _csv(draw(st.lists(st.integers(1, 12), min_size=1,
                                                     max_size=4))))
    ordinal = freq == "MONTHLY" and draw(st.booleans())
    if not ordinal and draw(st.booleans()):
        parts.append("BYMONTHDAY=" + _csv(draw(st.lists(
            st.sampled_from([1, 2, 13, 15, 28, 29, 30, 31, -1, -2, -7]), min_size=1,
            max_size=3))))
    if ordinal:
        parts.append("BYDAY=" + _csv(draw(st.lists(st.tuples(
            st.sampled_from([1, 2, 3, 4, 5, -1, -2]), st.sampled_from(DAYS)).map(
            lambda t: f"{t[0]}{t[1]}"), min_size=1, max_size=3))))
    elif freq != "YEARLY" and draw(st.booleans()):
        parts.append("BYDAY=" + _csv(draw(st.lists(st.sampled_from(DAYS), min_size=1,
                                                   max_size=3))))
    if draw(st.booleans()):
        parts.append("BYHOUR=" + _csv(draw(st.lists(st.integers(0, 23), min_size=1,
                                                    max_size=2))))
    if draw(st.booleans()):
        parts.append("BYMINUTE=" + _csv(draw(st.lists(st.integers(0, 59), min_size=1,
                                                      max_size=2))))
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    lines = [f"DTSTART:{start:%Y%m%dT%H%M%S}", "RRULE:" + ";".join(draw(st.permutations(parts)))]
    if draw(st.booleans()):
        lines.append(f"RRULE:FREQ=WEEKLY;BYDAY={draw(st.sampled_from(DAYS))}")
    if draw(st.booleans()):
        lines.append("EXDATE:" + _csv([f"{start + timedelta(days=7 * k):%Y%m%dT%H%M%S}"
                                       for k in range(draw(st.integers(1, 3)))]))
    if draw(st.booleans()):
        extra = start + timedelta(days=draw(st.integers(0, 500)), hours=1)
        lines.append(f"RDATE:{extra:%Y%m%dT%H%M%S}")
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simple_rules(), st.integers(-200, 2500), st.integers(0, 1439))
def test_simple_rrule_agrees_with_dateutil(text, day, minute):
    fast = parse_simple(text)
    assert fast is not None, text
    ref = rrulestr(text, forceset=True)
    start = ref._rrule[0]._dtstart + timedelta(days=day, minutes=minute)
    end = start + timedelta(days=800)
    expected = ref.between(start, end, inc=True)
    got = list(itertools.takewhile(lambda t: t <= end, fast.starts(start)))
    assert got == expected
    assert [t for b in fast.batches(start) for t in b][:len(got)] == got


def test_uncommon_rules_go_to_dateutil():
    for text in ["DTSTART:20260101T220000\nRRULE:FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2",
                 "DTSTART:20260101T220000\nRRULE:FREQ=YEARLY;BYDAY=-1FR;BYMONTH=12",
                 "DTSTART:20260101T220000\nRRULE:FREQ=WEEKLY\nEXRULE:FREQ=MONTHLY",
                 "DTSTART:20260101T220000\nRRULE:freq=weekly",
                 "DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=WEEKLY",
                 "DTSTART:20260101T220000\nRRULE:FREQ=MONTHLY;BYDAY=2TU,WE",
                 "DTSTART:20260101T220000\nRRULE:FREQ=HOURLY"]:
        assert parse_simple(text) is None, text


def test_compile_rrule_uses_the_fast_path_and_keeps_rset():
    text = "DTSTART;TZID=Europe/Berlin:20260113T220000\nRRULE:FREQ=MONTHLY;BYDAY=2TU"
    spec = compile_rrule(text, "Europe/Berlin")
    assert spec.simple is not None
    start = datetime(2026, 5, 1)
    assert (list(itertools.islice(spec.starts(start), 5))
            == list(itertools.islice(spec.rset.xafter(start, inc=True), 5)))


# ---------------------------------------------------------------- cron
cron_days = st.tuples(
    st.sampled_from(["*", "1", "15", "L", "1,15", "10-20", "*/5", "31", "L,5"]),
    st.sampled_from(["*", "1", "2,8", "jan-mar", "*/3"]),
    st.sampled_from(["*", "TUE#2", "FRI", "5L", "FRIL", "L5", "MON-FRI", "SUN#1,SAT#3", "0",
                     "7"]),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 59), st.integers(0, 23), cron_days)
def test_cron_shared_day_fields_equal_full_parse(minute, hour, days):
    expr = f"{minute} {hour} {' '.join(days)}"
    try:
        full = _compile_cron(expr)
    except ValueError as exc:
        try:
            compile_cron(expr)
        except ValueError as exc2:
            assert str(exc2) == str(exc)
            return
        raise AssertionError(f"{expr}: compile_cron accepted what the full parse rejects") from None
    fast = compile_cron(expr)
    for name in ("expr", "times", "months", "dom", "dom_last", "dow", "nth"):
        assert getattr(fast, name) == getattr(full, name), name
    start = datetime(2026, 3, 1)
    assert (list(itertools.islice(fast.starts(start), 10))
            == list(itertools.islice(full.starts(start), 10)))




def test_a_search_from_29_february_is_bounded_like_any_other():
    """From 29 February the 50-year bound fell back to year 9999 (and the batches then
    disagreed with dateutil's answer near the end of the calendar); it is 28 February now."""
    text = "DTSTART:20240229T220000\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"
    fast = parse_simple(text)
    assert fast is not None
    start = datetime(2024, 2, 29, 0, 0)
    ref = rrulestr(text, forceset=True)
    expected = ref.between(start, start + timedelta(days=800), inc=True)
    got = [t for b in fast.batches(start) for t in b]
    assert got[:len(expected)] == expected
    assert max(got) < datetime(2024 + 51, 1, 1)
