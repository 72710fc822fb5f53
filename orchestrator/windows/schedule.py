"""Raw local start times of a window's schedule: cron (5 fields) or an RFC 5545 rrule.

Parsing uses croniter (cron fields, `L`, `#n`) and dateutil (rrulestr); the iteration of
cron starts is done here, month by month, because it must be fast (10,000 windows x 12
occurrences in well under a second) and croniter's own iteration costs ~300 us a step.
A test checks this iteration against croniter's for random expressions.

Everything here is naive local wall-clock time of the window's zone; daylight saving is
applied by `occurrences.py`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.errors import PolicyError
from orchestrator.windows.rrule_simple import SimpleSet, month_info, parse_simple

# How far ahead a schedule is searched before it is said to never occur again.
SEARCH_YEARS = 50

_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_LAST_DOW = re.compile(r"([0-7]|sun|mon|tue|wed|thu|fri|sat)l\Z")


class ScheduleError(PolicyError):
    """A window's schedule cannot be used (bad cron, bad rrule, unknown zone)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError with a readable message when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from exc


# ---------------------------------------------------------------- cron
@dataclass(frozen=True, eq=False)  # identity: compile_cron caches one object per expression
class CronSpec:
    expr: str
    times: tuple[tuple[int, int], ...]  # (hour, minute), sorted
    months: tuple[int, ...]
    dom: frozenset[int] | None  # None: '*'
    dom_last: bool
    dow: frozenset[int] | None  # plain weekdays, Python numbering (Mon=0); None: '*'
    nth: tuple[tuple[int, int], ...]  # (Python weekday, n); n == 0 means last
    _days: dict[tuple[int, int], list[int]] = field(default_factory=dict, repr=False)

    def days(self, year: int, month: int) -> list[int]:
        """Matching days of a month, ascending (memoised)."""
        key = (year, month)
        found = self._days.get(key)
        if found is None:
            if len(self._days) > 2400:
                self._days.clear()
            found = self._days[key] = _cron_days(self, year, month)
        return found

    def starts(self, start: datetime, end: datetime | None = None) -> Iterator[datetime]:
        """Every matching naive local time >= start, ascending (minute resolution); see
        `batches` for `end`."""
        for batch in self.batches(start, end):
            yield from batch

    def batches(self, start: datetime, end: datetime | None = None
                ) -> Iterator[list[datetime]]:
        """`starts` as one ascending list per month (the hot loop iterates lists, cheaper
        than resuming a generator for every start). The search goes to the end of the year
        of `end` (naive local), or SEARCH_YEARS years past `start` without one."""
        year, month, day = start.year, start.month, start.day
        times = self.times
        key = (start.hour, start.minute + (1 if start.second or start.microsecond else 0))
        first_times = times[bisect_left(times, key):]
        single = times[0] if len(times) == 1 else None
        last_year = end.year if end is not None else year + SEARCH_YEARS
        for y in range(year, last_year + 1):
            for mo in self.months:
                if y == year and mo <= month:
                    if mo < month:
                        continue
                    yield [datetime(y, mo, d, h, mi)  # the month of `start`
                           for d in self.days(y, mo) if d >= day
                           for h, mi in (first_times if d == day else times)]
                elif single is not None:
                    h, mi = single
                    yield [datetime(y, mo, d, h, mi) for d in self.days(y, mo)]
                else:
                    for d in self.days(y, mo):
                        yield [datetime(y, mo, d, h, mi) for h, mi in times]

    @cached_property
    def never(self) -> bool:
        """True when no day ever matches (`0 3 30 2 *`). The Gregorian calendar repeats
        every 400 years (146,097 days, a whole number of weeks), so one cycle decides."""
        return not any(_cron_days(self, y, mo) for y in range(2000, 2400) for mo in self.months)

    def ends_before(self, t: datetime) -> bool:
        """True when provably no start is at or after the naive local `t`: a cron schedule
        never ends, unless it never matches at all."""
        return self.never


def _rewrite_dow(field: str) -> str:
    """Accept `5L` / `FRIL` (last Friday) as well as croniter's `L5`."""
    parts = []
    for token in field.split(","):
        m = _LAST_DOW.match(token)
        if m:
            value = m.group(1)
            token = "l" + str(_DOW_NAMES.get(value, value))
        parts.append(token)
    return ",".join(parts)


_MONTH_NAMES = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NUM = re.compile(r"[0-9]{1,2}\Z")  # ASCII digits only (\d takes any script's); with .match


class _Unsupported(Exception):
    """The quick parser does not handle this; croniter decides."""


def _value(text: str, index: int) -> int:
    names = _MONTH_NAMES if index == 3 else _DOW_NAMES if index == 4 else {}
    if text in names:
        return names[text]
    if not _NUM.match(text):
        raise _Unsupported
    return int(text)


_FIELD_MEMO: dict[tuple[str, int], list | None] = {}


def _quick_field(text: str, index: int) -> list:
    """One field expanded (memoised: 10,000 windows share few distinct fields)."""
    key = (text, index)
    if key not in _FIELD_MEMO:
        if len(_FIELD_MEMO) > 4096:
            _FIELD_MEMO.clear()
        try:
            _FIELD_MEMO[key] = _expand_field(text, index)
        except _Unsupported:
            _FIELD_MEMO[key] = None
    found = _FIELD_MEMO[key]
    if found is None:
        raise _Unsupported
    return list(found)


def _expand_field(text: str, index: int) -> list:
    lo, hi = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        base = part
        if "/" in part:
            base, _, step_text = part.partition("/")
            if not _NUM.match(step_text) or int(step_text) == 0:
                raise _Unsupported
            step = int(step_text)
        if base in ("*", "?"):
            a, b = lo, (6 if index == 4 else hi)
        elif "-" in base:
            first, _, last = base.partition("-")
            a, b = _value(first, index), _value(last, index)
        else:
            a = _value(base, index)
            b = (6 if index == 4 else hi) if "/" in part else a
        if not (lo <= a <= b <= hi):
            raise _Unsupported
        values.update(range(a, b + 1, step))
    if index == 4:
        values = {v % 7 for v in values}
        if len(values) == 7:
            return ["*"]
    elif index != 2 and len(values) == hi - lo + 1:
        return ["*"]
    return sorted(values)


def quick_expand(expr: str) -> tuple[list, dict]:
    """The result of croniter.expand for common syntax, ~50x faster; _Unsupported otherwise.
    Handles numbers, names, ranges, steps, lists, `L` alone in day-of-month and `N#n` /
    `LN` in day-of-week. Lowercase input with 5 fields."""
    fields = expr.split()
    expanded: list[list] = []
    nth: dict = {}
    for index, text in enumerate(fields):
        if text in ("*", "?"):
            expanded.append(["*"])
        elif index == 2 and "l" in text.split(","):
            rest = [t for t in text.split(",") if t != "l"]
            values = _quick_field(",".join(rest), 2) if rest else []
            expanded.append(sorted(set(values)) + ["l"])
        elif index == 4 and ("#" in text or "l" in text):
            days = []
            for token in text.split(","):
                if token.startswith("l"):
                    wd, n = _value(token[1:], 4) % 7, "l"
                elif "#" in token:
                    wd_text, _, n_text = token.partition("#")
                    if not _NUM.match(n_text) or not 1 <= int(n_text) <= 5:
                        raise _Unsupported
                    wd, n = _value(wd_text, 4) % 7, int(n_text)
                else:
                    raise _Unsupported  # mixing plain weekdays and nth: croniter refuses
                nth.setdefault(wd, set()).add(n)
                days.append(wd)
            expanded.append(sorted(set(days)))
        else:
            expanded.append(_quick_field(text, index))
    return expanded, nth


@lru_cache(maxsize=65536)
def compile_cron(expr: str) -> CronSpec:
    """Parse a 5-field cron expression; ValueError with a readable message when invalid."""
    fields = expr.lower().split()
    if (len(fields) == 5 and _NUM.match(fields[0]) and _NUM.match(fields[1])
            and int(fields[0]) < 60 and int(fields[1]) < 24):
        # One time of day (the usual case): the day fields are parsed once for every time.
        try:
            days = _compile_days(" ".join(fields[2:]))
        except ValueError:
            pass  # parsed again below, for the message naming this expression
        else:
            return CronSpec(expr=expr, times=((int(fields[1]), int(fields[0])),),
                            months=days.months, dom=days.dom, dom_last=days.dom_last,
                            dow=days.dow, nth=days.nth, _days=days._days)
    return _compile_cron(expr)


@lru_cache(maxsize=4096)
def _compile_days(day_fields: str) -> CronSpec:
    """The day part (day of month, month, day of week) of a cron expression, at 00:00."""
    return _compile_cron("0 0 " + day_fields)


def _compile_cron(expr: str) -> CronSpec:
    fields = expr.lower().split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expr!r} must have 5 fields (minute hour day-of-month month day-of-week)"
        )
    if "w" in fields[2]:
        raise ValueError(f"cron {expr!r}: 'W' (nearest weekday) is not supported")
    fields[4] = _rewrite_dow(fields[4])
    try:
        expanded, nth = quick_expand(" ".join(fields))
    except _Unsupported:
        from croniter import croniter

        try:
            expanded, nth = croniter.expand(" ".join(fields))
        except Exception as exc:  # croniter raises several unrelated classes
            raise ValueError(f"cron {expr!r} does not parse: {exc}") from None
    minutes_f, hours_f, dom_f, month_f, dow_f = expanded
    minutes = range(60) if minutes_f == ["*"] else sorted(minutes_f)
    hours = range(24) if hours_f == ["*"] else sorted(hours_f)
    months = tuple(range(1, 13)) if month_f == ["*"] else tuple(sorted(month_f))
    dom: frozenset[int] | None = None
    dom_last = False
    if dom_f != ["*"]:
        dom_last = "l" in dom_f
        dom = frozenset(int(d) for d in dom_f if d != "l")
    dow: frozenset[int] | None = None
    nth_pairs: list[tuple[int, int]] = []
    if nth:
        for cron_wd, ns in nth.items():
            for n in ns:
                nth_pairs.append(((int(cron_wd) - 1) % 7, 0 if n == "l" else int(n)))
    elif dow_f != ["*"]:
        dow = frozenset((int(d) - 1) % 7 for d in dow_f)
    if nth_pairs and dom is not None:
        raise ValueError(
            f"cron {expr!r}: a day of month together with '#n' or 'L' weekdays is ambiguous; "
            "use one of them"
        )
    nth_t = tuple(sorted(nth_pairs))
    return CronSpec(
        expr=expr,
        times=tuple((h, m) for h in hours for m in minutes),
        months=months,
        dom=dom,
        dom_last=dom_last,
        dow=dow,
        nth=nth_t,
        _days=_day_memo((dom, dom_last, dow, nth_t)),
    )


# Matching days of a month depend only on the day fields; expressions that share them (the
# same weekday at other times) share one memo of CronSpec.days.
_DAY_MEMOS: dict[tuple, dict[tuple[int, int], list[int]]] = {}


def _day_memo(key: tuple) -> dict[tuple[int, int], list[int]]:
    memo = _DAY_MEMOS.get(key)
    if memo is None:
        if len(_DAY_MEMOS) > 4096:
            _DAY_MEMOS.clear()
        memo = _DAY_MEMOS[key] = {}
    return memo


def _cron_days(spec: CronSpec, year: int, month: int) -> list[int]:
    first_wd, ndays = month_info(year, month)
    dom_restricted = spec.dom is not None or spec.dom_last
    dow_restricted = spec.dow is not None or bool(spec.nth)
    if not dom_restricted and not dow_restricted:
        return list(range(1, ndays + 1))
    days: set[int] = set()
    if dom_restricted:
        days.update(d for d in (spec.dom or ()) if d <= ndays)
        if spec.dom_last:
            days.add(ndays)
    if spec.dow is not None:
        for wd in spec.dow:
            days.update(range(1 + (wd - first_wd) % 7, ndays + 1, 7))
    if spec.nth:
        last_wd = (first_wd + ndays - 1) % 7
        for wd, n in spec.nth:
            if n == 0:
                days.add(ndays - (last_wd - wd) % 7)
            else:
                d = 1 + (wd - first_wd) % 7 + 7 * (n - 1)
                if d <= ndays:
                    days.add(d)
    # Both restricted: cron ORs them (Vixie cron, croniter); done by the union above.
    return sorted(days)


# ---------------------------------------------------------------- rrule
# Printable ASCII only: dateutil reads any script's digits (int() does), RFC 5545 rules have none
_PROP = re.compile(r"(?P<name>[A-Za-z-]+)(?P<params>(?:;[ -9;-~]*)?):(?P<value>[ -~]*)\Z")


@dataclass(frozen=True, eq=False)
class RRuleSpec:
    text: str  # normalised, naive local
    simple: SimpleSet | None = None  # the fast path (rrule_simple), when the rules allow

    @cached_property
    def rset(self) -> Any:
        """The dateutil.rrule.rruleset of the text (parsed on first use)."""
        return _parse_rset(self.text)

    def starts(self, start: datetime, end: datetime | None = None) -> Iterator[datetime]:
        """Starts >= `start`, ascending. The fast path searches up to `end` (naive local;
        SEARCH_YEARS past `start` without one); dateutil to its own end (year 9999), so
        the caller stops it."""
        if self.simple is not None:
            return self.simple.starts(start, end)
        return _advanced(self.rset, start).xafter(start, inc=True)

    def batches(self, start: datetime, end: datetime | None = None
                ) -> Iterator[list[datetime]]:
        """`starts` in ascending lists (one per start; per period on the fast path)."""
        if self.simple is not None:
            return self.simple.batches(start, end)
        return ([dt] for dt in self.starts(start))

    def ends_before(self, t: datetime) -> bool:
        """True when provably no start is at or after the naive local `t`: every RRULE is
        bounded by COUNT or UNTIL and none of them, and no RDATE, reaches `t` (EXRULE and
        EXDATE only remove starts, so they are left out: the answer errs towards False)."""
        rset = self.rset
        for rule in rset._rrule:
            if rule._count is None and rule._until is None:
                return False
            if rule._until is not None and rule._until < t:  # UNTIL is inclusive
                continue
            if rule.after(t, inc=True) is not None:  # COUNT: iterates at most COUNT starts
                return False
        return all(d < t for d in rset._rdate)


def _advance_rule(rule: Any, target: datetime) -> Any:
    """The same rule with DTSTART moved forward by whole periods (INTERVAL x FREQ) to just
    before `target`; the occurrences from `target` on are unchanged. Only for rules without
    COUNT, at daily or coarser frequency, whose defaults taken from DTSTART survive the move."""
    freq, interval, dt = rule._freq, rule._interval, rule._dtstart
    if rule._count is not None or freq > 3 or dt >= target:  # 3 == DAILY
        return rule
    if freq in (0, 1):  # YEARLY, MONTHLY
        if dt.day > 28:
            return rule
        months = (target.year - dt.year) * 12 + target.month - dt.month
        step = 12 * interval if freq == 0 else interval
        k = months // step - 2
        if k <= 0:
            return rule
        total = dt.month - 1 + k * step
        new = dt.replace(year=dt.year + total // 12, month=total % 12 + 1)
    else:  # WEEKLY, DAILY
        step = 7 * interval if freq == 2 else interval
        k = (target - dt).days // step - 2
        if k <= 0:
            return rule
        new = dt + timedelta(days=k * step)
    return rule.replace(dtstart=new)


def _advanced(rset: Any, target: datetime) -> Any:
    """A rule set equal to `rset` from `target` on, cheaper to iterate (dateutil always
    iterates from DTSTART)."""
    from dateutil.rrule import rruleset

    rules = [_advance_rule(r, target) for r in rset._rrule]
    exrules = [_advance_rule(r, target) for r in rset._exrule]
    if all(a is b for a, b in zip(rules + exrules, rset._rrule + rset._exrule, strict=True)):
        return rset
    out = rruleset()
    for r in rules:
        out.rrule(r)
    for r in exrules:
        out.exrule(r)
    for d in rset._rdate:
        out.rdate(d)
    for d in rset._exdate:
        out.exdate(d)
    return out


def _utc_to_local(value: str, tz: ZoneInfo) -> str:
    dt = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return dt.astimezone(tz).replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")


def normalise_rrule(text: str, timezone: str) -> str:
    """Rewrite an RFC 5545 rule set to naive local time of `timezone`.

    DTSTART/EXDATE/RDATE with a TZID must name `timezone`; UTC values (`...Z`) are converted.
    Raises ValueError with a readable message.
    """
    tz = zone(timezone)
    lines = [ln.strip() for ln in text.replace("\\n", "\n").splitlines() if ln.strip()]
    out: list[str] = []
    has_start = False
    for line in lines:
        m = _PROP.match(line)
        if not m:
            raise ValueError(f"rrule line {line!r} is not NAME[;PARAM=..]:VALUE in ASCII")
        name, params, value = m.group("name").upper(), m.group("params"), m.group("value")
        if name in ("DTSTART", "EXDATE", "RDATE"):
            has_start = has_start or name == "DTSTART"
            kept = []
            for param in filter(None, params.split(";")):
                key, _, pval = param.partition("=")
                key = key.upper()
                if key == "TZID":
                    if pval != timezone:
                        raise ValueError(
                            f"rrule {name} has TZID={pval} but the window's timezone is "
                            f"{timezone}; they must agree"
                        )
                elif key == "VALUE" and pval.upper() in ("DATE", "DATE-TIME"):
                    kept.append(param)
                else:
                    raise ValueError(f"rrule {name} parameter {param!r} is not supported")
            values = [
                _utc_to_local(v, tz) if v.upper().endswith("Z") else v
                for v in value.split(",")
            ]
            out.append(name + "".join(";" + p for p in kept) + ":" + ",".join(values))
        elif name in ("RRULE", "EXRULE"):
            parts = []
            for part in value.split(";"):
                key, sep, pval = part.partition("=")
                if key.upper() == "UNTIL" and pval.upper().endswith("Z"):
                    pval = _utc_to_local(pval.upper(), tz)
                parts.append(f"{key}={pval}" if sep else part)
            out.append(name + ":" + ";".join(parts))
        else:
            raise ValueError(f"rrule property {name} is not supported (DTSTART, RRULE, EXRULE, "
                             "EXDATE, RDATE are)")
    if not has_start:
        raise ValueError(
            "rrule needs a DTSTART line, e.g. DTSTART;TZID=Europe/Berlin:20260101T220000"
        )
    if not any(ln.startswith(("RRULE", "RDATE")) for ln in out):
        raise ValueError("rrule needs at least one RRULE or RDATE line")
    return "\n".join(out)


def _parse_rset(norm: str) -> Any:
    from dateutil.rrule import rrulestr

    try:
        rset = rrulestr(norm, forceset=True, cache=True)
        rset.after(datetime(1970, 1, 1))  # forces evaluation of every part
    except Exception as exc:  # dateutil raises ValueError, TypeError, ...
        raise ValueError(f"rrule does not parse: {exc}") from None
    return rset


@lru_cache(maxsize=65536)
def compile_rrule(text: str, timezone: str) -> RRuleSpec:
    """Parse an RFC 5545 rule set; ValueError with a readable message when invalid.
    Common rules take the fast path of rrule_simple (no dateutil); the others dateutil."""
    norm = normalise_rrule(text, timezone)
    simple = parse_simple(norm)
    if simple is not None:
        return RRuleSpec(text=norm, simple=simple)
    spec = RRuleSpec(text=norm)
    spec.rset  # noqa: B018 - parse now: errors belong to compiling
    return spec


def clear_caches() -> None:
    """Forget every parsed schedule and memoised day (the benchmark starts cold)."""
    from orchestrator.windows import rrule_simple

    for cached in (compile_cron, _compile_days, compile_rrule):
        cached.cache_clear()
    _FIELD_MEMO.clear()
    _DAY_MEMOS.clear()
    rrule_simple.clear_caches()


# ---------------------------------------------------------------- window
def compile_schedule(cron: str | None, rrule: str | None, timezone: str) -> CronSpec | RRuleSpec:
    """The schedule of a window; ValueError when it is missing, doubled or invalid."""
    zone(timezone)
    if bool(cron) == bool(rrule):
        raise ValueError("schedule needs exactly one of cron or rrule")
    if cron:
        return compile_cron(cron)
    assert rrule is not None
    return compile_rrule(rrule, timezone)


def raw_starts(spec: CronSpec | RRuleSpec, start: datetime, offset_days: int = 0
               ) -> Iterator[datetime]:
    """Naive local starts (schedule time plus offset days) at or after `start`."""
    if not offset_days:
        yield from spec.starts(start)
        return
    shift = timedelta(days=offset_days)
    for dt in spec.starts(start - shift):
        yield dt + shift


def validate_schedule(window: Any) -> list[str]:
    """Problems with a Window's schedule, without position (the caller adds it): cron or rrule
    that does not parse, rrule TZID disagreeing with the timezone, unknown zone, neither or
    both of cron and rrule. Raises nothing."""
    try:
        compile_schedule(window.cron, window.rrule, window.timezone)
    except ValueError as exc:
        return [str(exc)]
    except Exception as exc:  # noqa: BLE001 - validate must report, never crash
        return [f"schedule cannot be used: {exc}"]
    return []
