"""`windows next`: the next N occurrences of some windows, searched until N are found or
every schedule provably ends, within a stated bound.

The bound: the search looks at most NEXT_SEARCH_YEARS (400) years past the later of
`--from` and the earliest `validFrom` of the windows asked about. 400 Gregorian years are
one whole calendar cycle (146,097 days, a whole number of weeks): a cron schedule with no
start in them has none ever. Every window is searched to the same instant, so what is
listed is always exactly the first occurrences in start order; when fewer than N were found
and some window may still occur after the bound, the result says so (`limit`, `unfinished`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from orchestrator.policy.model import Window
from orchestrator.windows.check import merged
from orchestrator.windows.occurrences import Occurrence, compile_window

NEXT_SEARCH_YEARS = 400
NEXT_SEARCH = timedelta(days=146_097)  # 400 Gregorian years


@dataclass(frozen=True)
class Upcoming:
    occurrences: list[Occurrence]
    begin: datetime  # aware: where the bound is counted from
    limit: datetime | None  # aware: the bound, when it was hit (fewer found than asked)
    unfinished: tuple[str, ...] = ()  # windows that may still occur after `limit`

    @property
    def truncated(self) -> bool:
        return self.limit is not None


def upcoming(windows: Iterable[Window], after: datetime, count: int, *,
             search: timedelta = NEXT_SEARCH) -> Upcoming:
    """The first `count` occurrences not yet ended at the aware instant `after`, in start
    order (ties: window name), looking at most `search` past the later of `after` and the
    earliest validFrom."""
    windows = list(windows)
    compiled = [compile_window(w) for w in windows]
    begin = min((max(after, cw.valid_from) if cw.valid_from else after for cw in compiled),
                default=after)
    try:
        limit = begin + search
    except OverflowError:
        limit = datetime.max.replace(tzinfo=UTC)
    found = list(islice(merged(windows, after, horizon=max(limit - after, timedelta(0))),
                        count))
    if len(found) >= count:
        return Upcoming(found, begin, None)
    unfinished = tuple(cw.window.name for cw in compiled if not cw.ends_by(limit))
    return Upcoming(found, begin, limit if unfinished else None, unfinished)
