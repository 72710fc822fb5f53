"""Window occurrences in the coming days that a policy change adds, removes, blocks or
unblocks.

An occurrence is its window's name and its start, end and cutoff instants: a window whose
schedule, duration or zone changes loses its old occurrences and gains new ones. One that
stays but is newly overlapped by a freeze (for the groups using its window) is `blocked`;
one no longer overlapped is `unblocked`. Occurrences touched by a daylight-saving change
carry the note `windows next` gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orchestrator.policy.model import PolicySet
from orchestrator.windows.check import blocked_by, spans_for_groups
from orchestrator.windows.occurrences import Occurrence, occurrences_between

HORIZON = timedelta(days=30)


@dataclass(frozen=True)
class OccurrenceChange:
    change: str  # appears | disappears | blocked | unblocked
    occurrence: Occurrence
    blocked_by: tuple[str, ...]  # under the revision it belongs to (head, or base if gone)
    dst: str | None

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, **self.occurrence.to_json(list(self.blocked_by)),
                "dst": self.dst}


def _key(o: Occurrence) -> tuple[datetime, datetime, datetime]:
    return (o.start_utc, o.end_utc, o.cutoff_utc)


def _blocked(ps: PolicySet, window: str, occ: Occurrence) -> tuple[str, ...]:
    return tuple(blocked_by(occ, spans_for_groups(ps, ps.groups_using_window(window))))


def occurrence_changes(base: PolicySet, head: PolicySet, changed: dict[str, set[str]],
                       now: datetime, horizon: timedelta = HORIZON) -> list[OccurrenceChange]:
    """Changes among occurrences that have not ended at `now` and start before now+horizon,
    in start order."""
    until = now + horizon
    out: list[OccurrenceChange] = []
    freezes_changed = bool(changed["Freeze"])
    for name in sorted(set(base.windows) | set(head.windows)):
        if (name not in changed["Window"] and not freezes_changed
                and base.groups_using_window(name) == head.groups_using_window(name)):
            continue  # nothing that decides its occurrences differs
        old = {_key(o): o for o in (occurrences_between(base.windows[name], now, until)
                                     if name in base.windows else [])}
        new = {_key(o): o for o in (occurrences_between(head.windows[name], now, until)
                                     if name in head.windows else [])}
        for key, occ in new.items():
            now_blocked = _blocked(head, name, occ)
            if key not in old:
                out.append(OccurrenceChange("appears", occ, now_blocked, occ.dst_note()))
                continue
            was_blocked = _blocked(base, name, old[key])
            if bool(now_blocked) != bool(was_blocked):
                out.append(OccurrenceChange("blocked" if now_blocked else "unblocked", occ,
                                            now_blocked or was_blocked, occ.dst_note()))
        for key, occ in old.items():
            if key not in new:
                out.append(OccurrenceChange("disappears", occ, _blocked(base, name, occ),
                                            occ.dst_note()))
    out.sort(key=lambda c: (c.occurrence.start_utc, c.occurrence.window, c.change))
    return out
