"""A fast path for common RFC 5545 rule sets, without dateutil.

dateutil's rrulestr costs ~500 us a rule and its iteration always starts at DTSTART; for
10,000 windows that alone is over the performance target. The rules people write for
maintenance windows are simple, so this module handles exactly this subset and nothing else:

- one DTSTART (`YYYYMMDDTHHMMSS`, naive local time, after `normalise_rrule`), one or more
  RRULE lines, EXDATE and RDATE lines with date-time values and no parameters;
- RRULE parts FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, COUNT or UNTIL, BYMONTH,
  BYMONTHDAY (also negative), BYDAY (plain weekdays; `2TU` / `-1FR` with MONTHLY only; none
  with YEARLY), BYHOUR, BYMINUTE, BYSECOND, WKST, every value in canonical upper case.

Anything else (EXRULE, BYSETPOS, BYWEEKNO, VALUE=DATE, lower case, ...) returns None from
`parse_simple` and dateutil handles it. The semantics are dateutil's (RFC 5545): periods of
INTERVAL x FREQ counted from DTSTART (weeks begin on WKST), in each period the days passing
every BY filter, at every BYHOUR x BYMINUTE x BYSECOND time (default: DTSTART's), only
instants >= DTSTART, COUNT counted from DTSTART, UNTIL inclusive; the set is the union of
rules and RDATEs without EXDATEs, duplicates once. tests/windows/test_schedule_fast_paths.py checks
random rules against dateutil.
"""

from __future__ import annotations

import calendar
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, cached_property

# How far past the search start a rule is followed before it is said to never occur again
# (the same bound as cron schedules).
SEARCH_YEARS = 50

# ASCII digits only ([0-9]: Python's \d takes any script's digits, and int() reads them)
_DT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})\Z")
_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})\Z")
_DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_BYDAY = re.compile(r"([+-]?[1-5])?(MO|TU|WE|TH|FR|SA|SU)\Z")
_INT = re.compile(r"[+-]?[0-9]{1,3}\Z")
_FREQS = {"YEARLY": 0, "MONTHLY": 1, "WEEKLY": 2, "DAILY": 3}


class _NotSimple(Exception):
    pass


_DAYS_MEMO: dict[tuple, list[tuple[int, int, int]]] = {}
_MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)


def clear_caches() -> None:
    """Forget memoised days (the benchmark measures from cold caches)."""
    _DAYS_MEMO.clear()
    month_info.cache_clear()


@cache
def month_info(year: int, month: int) -> tuple[int, int]:
    """calendar.monthrange, memoised: weekday of the 1st (Mon=0) and the number of days."""
    return calendar.monthrange(year, month)


def _datetime(text: str, date_ok: bool = False) -> datetime:
    m = _DT.match(text)
    try:
        if m:
            return datetime(*map(int, m.groups()))
        m = _DATE.match(text) if date_ok else None
        if m:
            return datetime(*map(int, m.groups()))
    except ValueError:
        pass
    raise _NotSimple


def _ints(text: str, lo: int, hi: int, *, nonzero: bool = False) -> tuple[int, ...]:
    values = []
    for part in text.split(","):
        if not _INT.match(part):
            raise _NotSimple
        v = int(part)
        if not lo <= v <= hi or (nonzero and v == 0):
            raise _NotSimple
        values.append(v)
    return tuple(sorted(set(values)))


@dataclass(frozen=True, eq=False)
class SimpleRule:
    freq: int  # 0 YEARLY, 1 MONTHLY, 2 WEEKLY, 3 DAILY (dateutil's numbers)
    interval: int
    dtstart: datetime
    until: datetime | None
    count: int | None
    months: frozenset[int] | None
    monthdays: frozenset[int] | None  # positive and negative (-1: last day)
    weekdays: frozenset[int] | None  # Python numbering, Mon=0
    nth: frozenset[tuple[int, int]] | None  # (weekday, n), n in +-1..5, MONTHLY only
    times: tuple[tuple[int, int, int], ...]  # sorted (hour, minute, second)
    wkst: int

    @cached_property
    def _week_offsets(self) -> list[timedelta]:
        """Offsets from the start of a week (WKST) of the days in BYDAY, ascending."""
        wds = self.weekdays if self.weekdays is not None else range(7)
        return [timedelta(days=o) for o in sorted((wd - self.wkst) % 7 for wd in wds)]

    def _month_days(self, y: int, m: int, lo: int, hi: int) -> list[int]:
        """Days lo..hi of month m of year y that pass every BY filter, ascending."""
        if self.months is not None and m not in self.months:
            return []
        first_wd, mlen = month_info(y, m)
        found: set[int] | None = None
        if self.monthdays is not None:
            found = {md if md > 0 else mlen + 1 + md for md in self.monthdays}
        if self.nth is not None:
            last_wd = (first_wd + mlen - 1) % 7
            nth = {1 + (wd - first_wd) % 7 + 7 * (n - 1) if n > 0
                   else mlen - (last_wd - wd) % 7 + 7 * (n + 1) for wd, n in self.nth}
            found = nth if found is None else found & nth
        if self.weekdays is not None:
            plain: set[int] = set()
            for wd in self.weekdays:
                plain.update(range(1 + (wd - first_wd) % 7, mlen + 1, 7))
            found = plain if found is None else found & plain
        if found is None:
            return list(range(lo, min(hi, mlen) + 1))
        return sorted(d for d in found if lo <= d <= hi)

    @cached_property
    def _filter_key(self) -> tuple:
        return (self.months, self.monthdays, self.weekdays, self.nth, self.wkst)

    def _days(self, first: date, ndays: int) -> list[tuple[int, int, int]]:
        """_days_uncached, memoised across rules with the same BY filters (read only)."""
        key = (self._filter_key, first, ndays)
        found = _DAYS_MEMO.get(key)
        if found is None:
            if len(_DAYS_MEMO) > 20000:
                _DAYS_MEMO.clear()
            found = _DAYS_MEMO[key] = self._days_uncached(first, ndays)
        return found

    def _days_uncached(self, first: date, ndays: int) -> list[tuple[int, int, int]]:
        """(year, month, day) of the days among `ndays` days from `first` that pass every BY
        filter, ascending."""
        if self.months is None and self.monthdays is None and self.nth is None:
            # Weekdays alone (the common WEEKLY / DAILY rules): no month arithmetic.
            if ndays == 7:  # a WEEKLY period starts on WKST: the days are fixed offsets
                days = [first + off for off in self._week_offsets]
            else:
                wds = self.weekdays
                days = [d for d in (first + timedelta(days=i) for i in range(ndays))
                        if wds is None or d.weekday() in wds]
            return [(d.year, d.month, d.day) for d in days]
        out = []
        y, m, d = first.year, first.month, first.day
        left = ndays
        while left > 0:
            mlen = month_info(y, m)[1]
            last = min(mlen, d + left - 1)
            out.extend((y, m, day) for day in self._month_days(y, m, d, last))
            left -= last - d + 1
            d, m = 1, m + 1
            if m == 13:
                y, m = y + 1, 1
        return out

    @cached_property
    def _origin(self) -> int:
        """Where period 0 starts: a day ordinal (DAILY, WEEKLY: the WKST before DTSTART), a
        month number (year * 12 + month - 1) or a year."""
        start = self.dtstart.date()
        if self.freq == 3:
            return start.toordinal()
        if self.freq == 2:
            return start.toordinal() - (start.weekday() - self.wkst) % 7
        if self.freq == 1:
            return start.year * 12 + start.month - 1
        return start.year

    def _period(self, k: int) -> tuple[date, int] | None:
        """First day and length in days of period k (0: the one holding DTSTART)."""
        at = self._origin + k * self.interval
        try:
            if self.freq == 3:
                return date.fromordinal(at), 1
            if self.freq == 2:
                return date.fromordinal(self._origin + 7 * k * self.interval), 7
            if self.freq == 1:
                y, m = divmod(at, 12)
                return date(y, m + 1, 1), month_info(y, m + 1)[1]
            return date(at, 1, 1), 366 if calendar.isleap(at) else 365
        except (OverflowError, ValueError):  # past year 9999
            return None

    def _first_period(self, target: date) -> int:
        """A period index no later than the one holding `target` (0 with COUNT)."""
        start = self.dtstart.date()
        if self.count is not None or target <= start:
            return 0
        if self.freq == 3:
            span = (target - start).days
        elif self.freq == 2:
            span = (target - start + timedelta(days=(start.weekday() - self.wkst) % 7)).days // 7
        elif self.freq == 1:
            span = (target.year - start.year) * 12 + target.month - start.month
        else:
            span = target.year - start.year
        return max(0, span // self.interval - 1)

    def starts(self, start: datetime, end: datetime | None = None) -> Iterator[datetime]:
        """Every occurrence >= start (and < end, when given), ascending."""
        for batch in self.batches(start, end):
            yield from batch

    def batches(self, start: datetime, end: datetime | None = None
                ) -> Iterator[list[datetime]]:
        """`starts` as one ascending list per period, up to `end` (exclusive) or, without
        one, SEARCH_YEARS years past the later of `start` and DTSTART."""
        lower = max(start, self.dtstart)
        if end is not None:
            stop = end
        else:
            year = lower.year + SEARCH_YEARS
            if year > datetime.max.year:
                stop = datetime.max
            elif lower.month == 2 and lower.day == 29:  # no 29 February in that year, maybe
                stop = lower.replace(year=year, day=28)
            else:
                stop = lower.replace(year=year)
        if self.until is not None:
            stop = min(stop, self.until + timedelta(microseconds=1))
        remaining = self.count
        times = self.times
        # A period starting on or after stop_day starts at or after stop.
        try:
            stop_day = stop.date() + (timedelta(0) if stop.time() == _MIDNIGHT else _ONE_DAY)
        except OverflowError:
            stop_day = date.max
        k = self._first_period(start.date())
        while True:
            period = self._period(k)
            if period is None or period[0] >= stop_day:
                return
            batch = [datetime(y, mo, d, h, mi, s)
                     for y, mo, d in self._days(*period) for h, mi, s in times]
            if remaining is None:  # no COUNT: just the bounds
                if batch and batch[-1] >= stop:
                    yield [dt for dt in batch if lower <= dt < stop]
                    return
                yield [dt for dt in batch if dt >= lower]
            else:
                out = []
                for dt in batch:
                    if dt < self.dtstart:
                        continue
                    if dt >= stop or remaining <= 0:
                        yield out
                        return
                    remaining -= 1
                    if dt >= start:
                        out.append(dt)
                yield out
            k += 1


def _parse_rule(value: str, dtstart: datetime) -> SimpleRule:
    parts: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if not sep or key in parts or not val or val != val.upper():
            raise _NotSimple
        parts[key] = val
    allowed = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYHOUR",
               "BYMINUTE", "BYSECOND", "WKST"}
    if not set(parts) <= allowed or "FREQ" not in parts or parts["FREQ"] not in _FREQS:
        raise _NotSimple
    if "COUNT" in parts and "UNTIL" in parts:
        raise _NotSimple
    freq = _FREQS[parts["FREQ"]]
    interval = _ints(parts.get("INTERVAL", "1"), 1, 999)[0]
    count = _ints(parts["COUNT"], 1, 999)[0] if "COUNT" in parts else None
    until = _datetime(parts["UNTIL"], date_ok=True) if "UNTIL" in parts else None
    if "WKST" in parts and parts["WKST"] not in _DAYS:
        raise _NotSimple
    wkst = _DAYS[parts.get("WKST", "MO")]
    months = frozenset(_ints(parts["BYMONTH"], 1, 12)) if "BYMONTH" in parts else None
    monthdays = (frozenset(_ints(parts["BYMONTHDAY"], -31, 31, nonzero=True))
                 if "BYMONTHDAY" in parts else None)
    weekdays: frozenset[int] | None = None
    nth: frozenset[tuple[int, int]] | None = None
    if "BYDAY" in parts:
        plain, ordinal = set(), set()
        for token in parts["BYDAY"].split(","):
            m = _BYDAY.match(token)
            if not m:
                raise _NotSimple
            if m.group(1):
                ordinal.add((_DAYS[m.group(2)], int(m.group(1))))
            else:
                plain.add(_DAYS[m.group(2)])
        if freq == 0 or (ordinal and (plain or freq != 1)):
            raise _NotSimple
        weekdays = frozenset(plain) or None
        nth = frozenset(ordinal) or None
    if monthdays is None and weekdays is None and nth is None:  # dateutil's defaults
        if freq == 0:
            months = months if months is not None else frozenset({dtstart.month})
            monthdays = frozenset({dtstart.day})
        elif freq == 1:
            monthdays = frozenset({dtstart.day})
        elif freq == 2:
            weekdays = frozenset({dtstart.weekday()})
    hours = _ints(parts["BYHOUR"], 0, 23) if "BYHOUR" in parts else (dtstart.hour,)
    minutes = _ints(parts["BYMINUTE"], 0, 59) if "BYMINUTE" in parts else (dtstart.minute,)
    seconds = _ints(parts["BYSECOND"], 0, 59) if "BYSECOND" in parts else (dtstart.second,)
    times = tuple(sorted((h, mi, s) for h in hours for mi in minutes for s in seconds))
    return SimpleRule(freq, interval, dtstart, until, count, months, monthdays, weekdays, nth,
                      times, wkst)


@dataclass(frozen=True, eq=False)
class SimpleSet:
    rules: tuple[SimpleRule, ...]
    rdates: tuple[datetime, ...]  # sorted
    exdates: frozenset[datetime]

    def starts(self, start: datetime, end: datetime | None = None) -> Iterator[datetime]:
        """Every start >= `start` of the rule set, ascending, each once (rules followed up
        to `end`, see SimpleRule.batches)."""
        if len(self.rules) == 1 and not self.rdates and not self.exdates:
            return self.rules[0].starts(start, end)  # strictly increasing already
        return self._merged(start, end)

    def batches(self, start: datetime, end: datetime | None = None
                ) -> Iterator[list[datetime]]:
        """`starts` in ascending lists."""
        if len(self.rules) == 1 and not self.rdates and not self.exdates:
            return self.rules[0].batches(start, end)
        return ([dt] for dt in self._merged(start, end))

    def _merged(self, start: datetime, end: datetime | None) -> Iterator[datetime]:
        its: list[Iterator[datetime]] = [r.starts(start, end) for r in self.rules]
        if self.rdates:
            its.append(d for d in self.rdates if d >= start)
        merged = its[0] if len(its) == 1 else heapq.merge(*its)
        exdates = self.exdates
        last = None
        for dt in merged:
            if dt == last or dt in exdates:
                continue
            last = dt
            yield dt


def parse_simple(norm: str) -> SimpleSet | None:
    """The rule set of a normalised rrule text (see schedule.normalise_rrule) when it lies in
    the subset above, else None."""
    try:
        dtstart: datetime | None = None
        rules: list[str] = []
        rdates: list[datetime] = []
        exdates: list[datetime] = []
        for line in norm.split("\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise _NotSimple
            if name == "DTSTART":
                if dtstart is not None:
                    raise _NotSimple
                dtstart = _datetime(value)
            elif name == "RRULE":
                rules.append(value)
            elif name in ("RDATE", "EXDATE"):
                (rdates if name == "RDATE" else exdates).extend(
                    _datetime(v) for v in value.split(","))
            else:
                raise _NotSimple
        if dtstart is None or not rules:
            raise _NotSimple
        return SimpleSet(tuple(_parse_rule(r, dtstart) for r in rules), tuple(sorted(rdates)),
                         frozenset(exdates))
    except _NotSimple:
        return None
