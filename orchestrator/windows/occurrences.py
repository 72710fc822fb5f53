"""Occurrences of a window: raw local starts turned into instants with SPEC's DST rules.

- A local start in the spring-forward gap moves forward by the gap (02:30 -> 03:30): this is
  what PEP 495 gives for fold=0 (the offset before the transition), so `replace(tzinfo=zone)`
  followed by a conversion to UTC does it.
- A local start in the repeated fall-back hour is the first of the two instants (fold=0).
- end = start + duration and cutoff instant = end - cutoff, in elapsed time (UTC arithmetic).
- Two raw starts landing on the same instant (02:30 and 03:30 on a spring-forward day) give
  one occurrence; occurrences of one window are strictly increasing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import NamedTuple
from zoneinfo import ZoneInfo

from orchestrator.policy.model import Window
from orchestrator.windows.schedule import (
    SEARCH_YEARS,
    CronSpec,
    RRuleSpec,
    ScheduleError,
    compile_schedule,
    zone,
)

# How far a search for "the next occurrence" goes before giving up.
DEFAULT_HORIZON = timedelta(days=366 * 2)


def to_instant(local: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time -> aware UTC instant, with SPEC's gap and fold rules."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def iso_local(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).isoformat()


class Occurrence(NamedTuple):
    """One occurrence. Instants are stored as naive UTC (cheap to build by the 100,000);
    the properties `start`, `end`, `cutoff` give them as aware UTC datetimes."""

    window: str
    timezone: str
    local: datetime  # naive wall-clock start as scheduled (before the DST rules)
    start_utc: datetime  # naive UTC
    end_utc: datetime  # naive UTC
    cutoff_utc: datetime  # naive UTC: no new host work starts at or after it
    on_end: str = "finish"

    @property
    def start(self) -> datetime:
        return self.start_utc.replace(tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.end_utc.replace(tzinfo=UTC)

    @property
    def cutoff(self) -> datetime:
        return self.cutoff_utc.replace(tzinfo=UTC)

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def id(self) -> str:
        return f"{self.window}@{iso_local(self.start, self.zone)}"

    def local_iso(self, instant: datetime) -> str:
        return iso_local(instant, self.zone)

    def contains(self, t: datetime) -> bool:
        """True when new work may start at the aware instant t: start <= t < cutoff instant."""
        return self.start <= t < self.cutoff

    def dst_note(self) -> str | None:
        """How daylight saving affects this occurrence, or None."""
        tz = self.zone
        start_local = self.start.astimezone(tz)
        if start_local.replace(tzinfo=None) != self.local:
            return (f"scheduled {self.local:%Y-%m-%d %H:%M} does not exist (spring-forward gap); "
                    f"starts {start_local.isoformat()}")
        if self.local.replace(tzinfo=tz, fold=1).utcoffset() != start_local.utcoffset():
            return (f"{self.local:%Y-%m-%d %H:%M} occurs twice (fall-back); starts at the first, "
                    f"{start_local.isoformat()}")
        end_local = self.end.astimezone(tz)
        if end_local.utcoffset() != start_local.utcoffset():
            return (f"crosses a daylight-saving change: {start_local.isoformat()} to "
                    f"{end_local.isoformat()} is {self.end - self.start} elapsed")
        return None

    def to_json(self, blocked_by: list[str] | None = None) -> dict:
        tz = self.zone
        return {
            "window": self.window,
            "occurrence": self.id,
            "start": iso_local(self.start, tz),
            "end": iso_local(self.end, tz),
            "cutoff": iso_local(self.cutoff, tz),
            "timezone": self.timezone,
            "blockedBy": list(blocked_by or []),
        }


_LAST_NAIVE: list = [None, None]  # naive_utc's last argument and answer: callers repeat it


def naive_utc(t: datetime) -> datetime:
    """Aware instant -> naive UTC."""
    if t is _LAST_NAIVE[0]:
        return _LAST_NAIVE[1]
    if t.tzinfo is None:
        raise ValueError("an instant needs a UTC offset")
    result = t.astimezone(UTC).replace(tzinfo=None)
    _LAST_NAIVE[:] = [t, result]
    return result


class CompiledWindow:
    """A window with its schedule parsed and its bounds as instants (built by compile_window).
    A plain class with slots: one is built per window, 10,000 at a time in the benchmark."""

    __slots__ = ("window", "spec", "tz", "valid_from", "valid_until", "_vf", "_vu")

    def __init__(self, window: Window, spec: CronSpec | RRuleSpec, tz: ZoneInfo,
                 valid_from: datetime | None, valid_until: datetime | None) -> None:
        self.window = window
        self.spec = spec
        self.tz = tz
        self.valid_from = valid_from  # aware UTC
        self.valid_until = valid_until  # aware UTC
        self._vf = naive_utc(valid_from) if valid_from else None
        self._vu = naive_utc(valid_until) if valid_until else None

    def occurrences(self, after: datetime, *, ongoing: bool = True,
                    horizon: timedelta | None = DEFAULT_HORIZON) -> Iterator[Occurrence]:
        """Occurrences in start order: those not yet ended at `after` (ongoing=True) or those
        starting at or after `after` (ongoing=False); none starting after `after + horizon`."""
        w = self.window
        tz, duration, cut = self.tz, w.duration, w.duration - w.cutoff
        vf, vu = self._vf, self._vu
        try:
            after = naive_utc(after)
        except OverflowError:  # beyond datetime's range in UTC
            after = datetime.min if after.year < 5000 else datetime.max
        limit = _add(after, horizon) if horizon is not None else None
        # Bounds as plain comparisons (datetimes have microsecond resolution):
        # stop at start >= stop; skip start <= floor; yield start > lower.
        if vu is not None and (limit is None or vu <= limit):
            stop = vu  # validUntil is exclusive (also when it is the horizon's last instant)
        elif limit is not None:
            stop = _add(limit, _TICK)  # the horizon is inclusive
        else:
            stop = datetime.max
        lower = _add(after, -duration) if ongoing else after
        # Local search start: early enough for gap shifts and offset days.
        search = max(_add(lower, tz.utcoffset(lower) - _TWO_DAYS), _EARLIEST)
        if vf is not None:
            search = max(search, _add(vf, tz.utcoffset(vf) - _TWO_DAYS))
        floor = _add(vf, -_TICK) if vf is not None else datetime.min  # then: the last start
        if not ongoing:
            lower = _add(lower, -_TICK)
        fields = (w.name, w.timezone)
        on_end = w.on_end
        utcoffset = tz.utcoffset  # of a naive local time, fold=0: SPEC's gap and fold rules
        new = tuple.__new__
        # The schedule's raw starts plus offsetDays (raw_starts, inlined: this is the hot path).
        shift = timedelta(days=w.offset_days) if w.offset_days else None
        # How far the schedule itself is followed (raw local time, before offsetDays; a
        # local time is within a day of its instant). Unbounded (horizon None and no
        # validUntil): the schedule's own bound, SEARCH_YEARS past the search start.
        end = None if stop == datetime.max and limit is None else _add(stop, _TWO_DAYS)
        if shift and end is not None and end != datetime.max:
            end = _add(end, -shift)
        try:
            for batch in self.spec.batches(_add(search, -shift) if shift else search, end):
                if shift:
                    batch = [raw + shift for raw in batch]
                for local in batch:
                    start = local - utcoffset(local)
                    if start >= stop:
                        return
                    if start <= floor:
                        continue
                    floor = start
                    if start > lower:
                        yield new(Occurrence, (*fields, local, start, start + duration,
                                               start + cut, on_end))
        except (OverflowError, ValueError):
            # The search ran past datetime's range (year 9999): no more occurrences.
            # Anywhere else it is a bug and surfaces.
            reach = end if end is not None else _add(search, _SCHEDULE_REACH)
            if _EDGE_LOW < search and reach < _EDGE_HIGH and floor < _EDGE_HIGH:
                raise

    def ends_by(self, limit: datetime) -> bool:
        """True when provably no occurrence starts after the aware instant `limit`:
        `validUntil` is no later, the schedule's last start (COUNT, UNTIL, RDATE) comes
        before it, the schedule never matches, or nothing after it fits in a datetime."""
        try:
            lim = naive_utc(limit)
        except OverflowError:
            return True
        if self._vu is not None and self._vu <= _add(lim, _TICK):  # validUntil: exclusive
            return True
        # A start after lim is a local time after lim - 1 day (UTC offsets and gap shifts
        # stay within a day), so a raw start at or after this bound.
        if _add(lim, _TWO_DAYS) == datetime.max:  # the search went to datetime's end
            return True
        bound = _add(lim, -_TWO_DAYS - timedelta(days=self.window.offset_days))
        return self.spec.ends_before(bound)


_TICK = timedelta(microseconds=1)
_TWO_DAYS = timedelta(days=2)
# Local search starts no earlier than this (a local time minus its UTC offset stays valid).
_EARLIEST = datetime(1, 1, 3)
# Searches starting before _EDGE_LOW or reaching beyond _EDGE_HIGH may run into datetime's
# limits; without an end, the schedules look up to SEARCH_YEARS (50) years ahead.
_SCHEDULE_REACH = timedelta(days=366 * (SEARCH_YEARS + 1))
_EDGE_LOW = datetime(3, 1, 1)
_EDGE_HIGH = datetime(9999 - 60, 1, 1)


def _add(t: datetime, delta: timedelta) -> datetime:
    """t + delta, clamped to datetime's range."""
    try:
        return t + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


# compile_window's cache, by identity: hashing a Window (every field, a Path among them)
# costs more than compiling it again from the cached schedule. Entries keep their window
# alive, so an id is never reused while its entry exists.
_COMPILED: dict[int, tuple[Window, CompiledWindow]] = {}
_COMPILED_MAX = 65536


def compile_window(window: Window) -> CompiledWindow:
    """Parse a window's schedule once; ScheduleError (one line, with the file) when invalid."""
    hit = _COMPILED.get(id(window))
    if hit is not None and hit[0] is window:
        return hit[1]
    try:
        spec = compile_schedule(window.cron, window.rrule, window.timezone)
    except ValueError as exc:
        raise ScheduleError(f"{window.meta.source}: Window {window.name}: {exc}") from None
    tz = zone(window.timezone)
    vf = to_instant(window.valid_from, tz) if window.valid_from else None
    vu = to_instant(window.valid_until, tz) if window.valid_until else None
    compiled = CompiledWindow(window, spec, tz, vf, vu)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[id(window)] = (window, compiled)
    return compiled


compile_window.cache_clear = _COMPILED.clear  # type: ignore[attr-defined]


def occurrences(window: Window, after: datetime, *, ongoing: bool = True,
                horizon: timedelta | None = DEFAULT_HORIZON) -> Iterator[Occurrence]:
    """See CompiledWindow.occurrences. `after` must be aware."""
    return compile_window(window).occurrences(after, ongoing=ongoing, horizon=horizon)


def next_occurrences(window: Window, after: datetime, count: int, *, ongoing: bool = True,
                     horizon: timedelta | None = DEFAULT_HORIZON) -> list[Occurrence]:
    return list(islice(occurrences(window, after, ongoing=ongoing, horizon=horizon), count))


def occurrences_between(window: Window, start: datetime, end: datetime) -> list[Occurrence]:
    """Occurrences that have not ended at `start` and start before `end`."""
    result = []
    for occ in occurrences(window, start, horizon=end - start):
        if occ.start >= end:
            break
        result.append(occ)
    return result
