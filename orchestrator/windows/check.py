"""Open or closed, and why: groups at an instant, and the run-window trigger guard."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.errors import OrchestratorError
from orchestrator.policy.durations import format_duration
from orchestrator.policy.model import PolicySet, Window
from orchestrator.windows.freezes import FreezeSpan, covering, free_time, spans
from orchestrator.windows.occurrences import DEFAULT_HORIZON, Occurrence, occurrences


class UnknownName(OrchestratorError):
    """A group or window named on the command line does not exist."""


def _fmt(t: datetime, occ: Occurrence | None = None) -> str:
    return occ.local_iso(t) if occ is not None else t.isoformat()


def get_group_windows(policies: PolicySet, group: str) -> list[Window]:
    g = policies.groups.get(group)
    if g is None:
        known = ", ".join(sorted(policies.groups)) or "none"
        raise UnknownName(
            f"{policies.root}: no AssetGroup named {group!r} (known: {known}); check --group"
        )
    missing = [w for w in g.windows if w not in policies.windows]
    if missing:
        raise UnknownName(
            f"{g.meta.source}: AssetGroup {group} names window {missing[0]!r}, which does not "
            "exist; run `orchestrator validate`"
        )
    return [policies.windows[w] for w in g.windows]


def get_window(policies: PolicySet, name: str) -> Window:
    w = policies.windows.get(name)
    if w is None:
        known = ", ".join(sorted(policies.windows)) or "none"
        raise UnknownName(f"{policies.root}: no Window named {name!r} (known: {known})")
    return w


def merged(windows: Iterable[Window], after: datetime, *, ongoing: bool = True,
           horizon: timedelta | None = DEFAULT_HORIZON) -> Iterator[Occurrence]:
    """Occurrences of several windows in start order (ties: window name)."""
    its = [occurrences(w, after, ongoing=ongoing, horizon=horizon) for w in windows]
    return heapq.merge(*its, key=lambda o: (o.start, o.window))


def group_spans(policies: PolicySet, group: str) -> list[FreezeSpan]:
    return spans(policies.freezes_for(group))


def spans_for_groups(policies: PolicySet, groups: Iterable[str]) -> list[FreezeSpan]:
    """Freezes applying to any of `groups`; with no groups, freezes that apply to every group."""
    groups = list(groups)
    if not groups:
        return spans(f for f in policies.freezes.values() if f.groups is None)
    return spans(f for f in policies.freezes.values() if any(f.applies_to(g) for g in groups))


def blocked_by(occ: Occurrence, spans_: Iterable[FreezeSpan]) -> list[str]:
    """Names of freezes overlapping [start, end) of the occurrence."""
    return sorted({s.name for s in spans_ if s.overlaps(occ.start, occ.end)})


def next_opening(windows: list[Window], spans_: list[FreezeSpan], after: datetime, *,
                 strictly_later_start: bool = False,
                 horizon: timedelta = DEFAULT_HORIZON) -> tuple[datetime, Occurrence] | None:
    """The first instant >= `after` at which one of `windows` is open and no span covers it,
    with its occurrence. strictly_later_start: only occurrences starting after `after`."""
    best: tuple[datetime, Occurrence] | None = None
    for occ in merged(windows, after, horizon=horizon):
        if best is not None and occ.start >= best[0]:
            break
        if strictly_later_start and occ.start <= after:
            continue
        if occ.cutoff <= after:
            continue
        free = free_time(max(occ.start, after), occ.cutoff,
                         [s for s in spans_ if s.overlaps(occ.start, occ.cutoff)])
        if free and (best is None or free[0][0] < best[0]):
            best = (free[0][0], occ)
    return best


@dataclass(frozen=True)
class CheckResult:
    group: str
    open: bool
    at: datetime
    reason: str
    occurrence: Occurrence | None
    next: Occurrence | None
    next_opens: datetime | None
    spans: tuple[FreezeSpan, ...] = ()

    def to_json(self) -> dict:
        return {
            "group": self.group,
            "open": self.open,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "occurrence": (self.occurrence.to_json(blocked_by(self.occurrence, self.spans))
                           if self.occurrence else None),
            "next": self.next.to_json(blocked_by(self.next, self.spans)) if self.next else None,
        }


def check_group(policies: PolicySet, group: str, at: datetime) -> CheckResult:
    """Is `group` open at the aware instant `at`? Always says why."""
    windows = get_group_windows(policies, group)
    spans_ = group_spans(policies, group)
    if not windows:
        return CheckResult(group, False, at, f"group {group} uses no windows", None, None, None,
                           tuple(spans_))
    inside: list[Occurrence] = []
    past_cutoff: list[Occurrence] = []
    for occ in merged(windows, at, horizon=timedelta(0)):
        if occ.start > at:
            break
        (inside if occ.contains(at) else past_cutoff).append(occ)
    frozen = covering(spans_, at)
    if inside and not frozen:
        occ = max(inside, key=lambda o: (o.cutoff, o.start))
        nxt = next_opening(windows, spans_, at, strictly_later_start=True)
        reason = (f"open: {occ.id}; new work may start until {occ.local_iso(occ.cutoff)}, "
                  f"the window ends {occ.local_iso(occ.end)}")
        return CheckResult(group, True, at, reason, occ, nxt[1] if nxt else None,
                           nxt[0] if nxt else None, tuple(spans_))
    nxt = next_opening(windows, spans_, at)
    if nxt is None:
        opens = f"no window of group {group} opens in the next {DEFAULT_HORIZON.days} days"
    else:
        opens = f"next opens {nxt[1].local_iso(nxt[0])} ({nxt[1].id})"
    if frozen:
        f = frozen[0]
        text = f.freeze.reason.strip().rstrip(".")
        reason = f"frozen by freeze {f.name} ({text}) until {f.until_iso()}"
        if len(frozen) > 1:
            reason += "; also frozen by " + ", ".join(s.name for s in frozen[1:])
        if inside:
            reason += f"; it blocks {inside[-1].id}"
    elif past_cutoff:
        occ = past_cutoff[-1]
        reason = (f"the cutoff of {occ.id} passed at {occ.local_iso(occ.cutoff)}: no new work "
                  f"starts after it (the window ends {occ.local_iso(occ.end)})")
    else:
        reason = f"no window of group {group} is open"
    return CheckResult(group, False, at, f"{reason}; {opens}", None,
                       nxt[1] if nxt else None, nxt[0] if nxt else None, tuple(spans_))


# ---------------------------------------------------------------- run-window guard
def find_open_occurrence(window: Window, at: datetime) -> Occurrence | None:
    """The occurrence of `window` with start <= at < cutoff instant (the latest such), or None."""
    found = None
    for occ in occurrences(window, at, horizon=timedelta(0)):
        if occ.start > at:
            break
        if occ.contains(at):
            found = occ
    return found


@dataclass(frozen=True)
class TriggerDecision:
    run: bool
    occurrence: Occurrence | None  # the occurrence the trigger belongs to, if any
    reason: str


def misfired(occ: Occurrence, window: Window, at: datetime) -> bool:
    """A trigger later than start + misfireGrace (or at/after the cutoff instant) misfired."""
    if at >= occ.cutoff:
        return True
    return window.misfire_grace is not None and at > occ.start + window.misfire_grace


def trigger_guard(window: Window, at: datetime) -> TriggerDecision:
    """Should `run-window W` triggered at `at` do anything? Freezes are checked per group by
    the caller (`check_group` / `group_spans`)."""
    latest: Occurrence | None = None
    for occ in occurrences(window, at, horizon=timedelta(0)):
        if occ.start > at:
            break
        latest = occ
    if latest is not None and latest.contains(at):
        if misfired(latest, window, at):
            assert window.misfire_grace is not None
            limit = latest.start + window.misfire_grace
            return TriggerDecision(
                False, latest,
                f"misfire: trigger at {latest.local_iso(at)} is later than start + misfireGrace "
                f"({format_duration(window.misfire_grace)}) = {latest.local_iso(limit)} for "
                f"{latest.id}; nothing done",
            )
        return TriggerDecision(True, latest, f"{latest.id} is open until "
                                             f"{latest.local_iso(latest.cutoff)}")
    nxt = next(occurrences(window, at, ongoing=False), None)
    following = (f"; the next occurrence starts {nxt.local_iso(nxt.start)}" if nxt
                 else "; no further occurrence in the next two years")
    if latest is not None:
        return TriggerDecision(
            False, latest,
            f"the cutoff of {latest.id} passed at {latest.local_iso(latest.cutoff)}; "
            f"nothing done{following}",
        )
    return TriggerDecision(False, None, f"no occurrence of window {window.name} is open at "
                                        f"{at.isoformat()}; nothing done{following}")
