"""Freezes: deny intervals [from, until) that win over windows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from orchestrator.policy.model import Freeze
from orchestrator.windows.occurrences import iso_local, to_instant
from orchestrator.windows.schedule import ScheduleError, zone


@dataclass(frozen=True)
class FreezeSpan:
    freeze: Freeze
    start: datetime  # aware UTC
    until: datetime  # aware UTC, exclusive

    @property
    def name(self) -> str:
        return self.freeze.name

    def until_iso(self) -> str:
        return iso_local(self.until, zone(self.freeze.timezone))

    def start_iso(self) -> str:
        return iso_local(self.start, zone(self.freeze.timezone))

    def covers(self, t: datetime) -> bool:
        return self.start <= t < self.until

    def overlaps(self, a: datetime, b: datetime) -> bool:
        return self.start < b and a < self.until


@lru_cache(maxsize=4096)
def span(freeze: Freeze) -> FreezeSpan:
    """The freeze as instants (same DST rules as window starts)."""
    try:
        tz = zone(freeze.timezone)
    except ValueError as exc:
        raise ScheduleError(f"{freeze.meta.source}: Freeze {freeze.name}: {exc}") from None
    return FreezeSpan(freeze, to_instant(freeze.start, tz), to_instant(freeze.until, tz))


def spans(freezes: Iterable[Freeze]) -> list[FreezeSpan]:
    return [span(f) for f in freezes]


def covering(spans_: Iterable[FreezeSpan], t: datetime) -> list[FreezeSpan]:
    """Spans in force at t, the one lasting longest first."""
    return sorted((s for s in spans_ if s.covers(t)), key=lambda s: (-s.until.timestamp(), s.name))


def free_time(a: datetime, b: datetime, spans_: Iterable[FreezeSpan]
              ) -> list[tuple[datetime, datetime]]:
    """[a, b) minus every span, as sorted disjoint intervals."""
    pieces = [(a, b)]
    for s in spans_:
        nxt = []
        for x, y in pieces:
            if not s.overlaps(x, y):
                nxt.append((x, y))
                continue
            if x < s.start:
                nxt.append((x, s.start))
            if s.until < y:
                nxt.append((s.until, y))
        pieces = nxt
    return sorted(pieces)
