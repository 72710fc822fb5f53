"""Property tests (hypothesis) for the window engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from window_builders import make_freeze, make_window, policy_set

from orchestrator.windows.check import check_group
from orchestrator.windows.occurrences import next_occurrences, occurrences
from orchestrator.windows.schedule import (
    _advanced,
    _rewrite_dow,
    _Unsupported,
    compile_cron,
    compile_rrule,
    quick_expand,
)

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
         "America/Sao_Paulo", "Pacific/Apia", "Europe/London"]
DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "0", "7", "1", "5"]


def _num(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(str)


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    single = st.one_of(
        _num(lo, hi),
        # a-b with a < b: croniter 7 reads a degenerate range like 1-1 as '*' (its bug; ours
        # reads it as the single value)
        st.tuples(st.integers(lo, hi), st.integers(lo, hi)).filter(lambda t: t[0] != t[1]).map(
            lambda t: f"{min(t)}-{max(t)}"),
        st.integers(1, 9).map(lambda s: f"*/{s}"),
    )
    return st.one_of(st.just("*"), st.lists(single, min_size=1, max_size=3).map(",".join))


dow = st.one_of(
    st.just("*"),
    st.lists(st.sampled_from(DAYS), min_size=1, max_size=3).map(",".join),
    st.tuples(st.sampled_from(DAYS[:7]), st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
    st.sampled_from(DAYS[:7]).map(lambda d: f"L{d}" if d.isdigit() else f"{d}L"),
)
dom = st.one_of(_field(1, 31), st.just("L"), st.just("1,L"))
cron_expr = st.tuples(_num(0, 59), _num(0, 23), dom, _field(1, 12), dow).map(" ".join).filter(
    lambda e: not (("#" in e or e.split()[4].upper().startswith("L") or e.endswith("L"))
                   and e.split()[2] != "*"))

window_spec = st.fixed_dictionaries({
    "cron": cron_expr,
    "timezone": st.sampled_from(ZONES),
    "duration": st.sampled_from(["15m", "1h", "4h", "8h", "24h"]),
    "cutoff": st.sampled_from(["0", "10m", "14m"]),
    "offsetDays": st.integers(0, 27),
})
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31),
                        timezones=st.just(UTC))

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(window_spec, instants)
def test_occurrences_are_well_formed_and_increasing(spec, after):
    w = make_window(spec)
    occs = next_occurrences(w, after, 25)
    for o in occs:
        assert o.start < o.cutoff <= o.end
        assert o.end - o.start == w.duration
        assert o.end > after
    for a, b in zip(occs, occs[1:], strict=False):
        assert a.start < b.start


@PROPS
@given(window_spec, instants, st.integers(0, 3 * 24 * 60),
       st.lists(st.tuples(st.integers(-2000, 2000), st.integers(1, 3000)), max_size=3))
def test_check_open_exactly_inside_an_occurrence_and_no_freeze(spec, base, minutes, frz):
    w = make_window(spec)
    freezes = []
    for i, (start_min, length) in enumerate(frz):
        a = (base + timedelta(minutes=start_min)).replace(tzinfo=None)
        freezes.append(make_freeze({"name": f"f{i}", "from": a, "timezone": "UTC",
                                    "until": a + timedelta(minutes=length)}))
    ps = policy_set([w], freezes)
    t = base + timedelta(minutes=minutes)
    listed = list(islice(occurrences(w, t - timedelta(days=3)), 200))
    inside = any(o.start <= t < o.cutoff for o in listed)
    frozen = any(f.start.replace(tzinfo=UTC) <= t < f.until.replace(tzinfo=UTC) for f in freezes)
    result = check_group(ps, "web", t)
    assert result.open == (inside and not frozen), result.reason
    assert result.reason


@settings(max_examples=300, deadline=None)
@given(cron_expr)
def test_quick_parser_agrees_with_croniter(expr):
    e = expr.lower()
    try:
        mine = quick_expand(e)
    except _Unsupported:
        return
    fields = e.split()
    if fields[4].startswith("l") or fields[4].endswith("l"):
        return  # croniter only knows the L5 spelling; compared via compile_cron below
    theirs = croniter.expand(e)
    full = list(range(1, 32))
    for expanded, _ in (mine, theirs):  # same meaning: all days when day-of-week is '*'
        if expanded[4] == ["*"] and expanded[2] == full:
            expanded[2] = ["*"]
    assert mine == theirs


def croniter_starts(expr: str, start: datetime, n: int) -> tuple[list[datetime], bool]:
    """croniter's first `n` starts at or after `start`, and whether it found no further date
    (CroniterBadDateError: nothing within its 50-year search). Any other exception fails."""
    fields = expr.lower().split()
    fields[4] = _rewrite_dow(fields[4])  # croniter's spelling of "last Friday" is L5
    it = croniter(" ".join(fields), start - timedelta(minutes=1))
    found = []
    for _ in range(n):
        try:
            found.append(it.get_next(datetime))
        except CroniterBadDateError:
            return found, True
    return found, False


@settings(max_examples=200, deadline=None)
@given(cron_expr, st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1)))
@example("0 0 30 2 *", datetime(2026, 1, 1))  # never: croniter gives up, and so must we
@example("0 0 31 4,6 *", datetime(2026, 1, 1))
@example("0 3 29 2 *", datetime(2025, 3, 1))  # leap days: 8 of them span 28 years
def test_cron_iteration_agrees_with_croniter(expr, start):
    start = start.replace(second=0, microsecond=0)
    expected, ended = croniter_starts(expr, start, 8)
    # the same 8 starts, or, when croniter finds no further date, exactly its few and then
    # none within our own search (SEARCH_YEARS) either
    assert list(islice(compile_cron(expr).starts(start), 8)) == expected
    assert ended == (len(expected) < 8)


def test_croniter_comparison_covers_schedules_that_end() -> None:
    """The examples above reach the branch where croniter finds nothing."""
    assert croniter_starts("0 0 30 2 *", datetime(2026, 1, 1), 8) == ([], True)
    assert list(compile_cron("0 0 30 2 *").starts(datetime(2026, 1, 1))) == []
    leap, ended = croniter_starts("0 3 29 2 *", datetime(2025, 3, 1), 8)
    assert not ended and leap[0] == datetime(2028, 2, 29, 3) and leap[-1].year == 2056


rrules = st.tuples(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.integers(1, 3),
    st.sampled_from(["", ";BYDAY=TU", ";BYDAY=2TU", ";BYMONTHDAY=15", ";BYDAY=-1FR",
                     ";BYMONTH=3,10"]),
    st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2026, 1, 1)),
).filter(lambda r: not (r[0] in ("DAILY", "WEEKLY") and r[2] in (";BYDAY=2TU", ";BYDAY=-1FR")))


@settings(max_examples=150, deadline=None)
@given(rrules, st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 1, 1)))
def test_rrule_fast_forward_changes_nothing(rule, target):
    freq, interval, extra, dtstart = rule
    text = (f"DTSTART;TZID=Europe/Berlin:{dtstart:%Y%m%dT%H%M00}\n"
            f"RRULE:FREQ={freq};INTERVAL={interval}{extra}")
    spec = compile_rrule(text, "Europe/Berlin")
    fast = list(islice(_advanced(spec.rset, target).xafter(target, inc=True), 6))
    slow = list(islice(spec.rset.xafter(target, inc=True), 6))
    assert fast == slow
