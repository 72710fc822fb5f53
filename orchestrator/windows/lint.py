"""Problems and warnings about windows, for `orchestrator validate`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.policy.model import PolicySet, Window
from orchestrator.windows.check import blocked_by, spans_for_groups
from orchestrator.windows.freezes import free_time
from orchestrator.windows.occurrences import occurrences_between
from orchestrator.windows.schedule import validate_schedule


def _where(policies: PolicySet, window: Window) -> str:
    locate = getattr(policies, "locate", None)
    where = locate("Window", window.name) if locate else str(window.meta.source)
    return f"{where}: Window/{window.name}"


def window_warnings(policies: PolicySet, now: datetime | None = None) -> list[str]:
    """Warnings for a reviewer: windows that never occur in the next year, occurrences (or
    whole windows) that freezes block completely, DST-affected occurrences in the next 90 days.
    `now` (aware; default: now). Windows with schedule problems are skipped."""
    now = now or datetime.now(UTC)
    out: list[str] = []
    year = now + timedelta(days=365)
    for name in sorted(policies.windows):
        w = policies.windows[name]
        if validate_schedule(w):
            continue
        occs = occurrences_between(w, now, year)
        if not occs:
            out.append(
                f"{_where(policies, w)}: never occurs in the next year (from {now:%Y-%m-%d})"
            )
            continue
        groups = policies.groups_using_window(w.name)
        # A freeze blocks an occurrence for the window when it applies to every group using it.
        spans = [
            s
            for s in spans_for_groups(policies, groups)
            if all(s.freeze.applies_to(g) for g in groups)
        ]
        blocked = [
            o
            for o in occs
            if not free_time(o.start, o.cutoff, [s for s in spans if s.overlaps(o.start, o.cutoff)])
        ]
        if blocked and len(blocked) == len(occs):
            names = sorted({n for o in blocked for n in blocked_by(o, spans)})
            out.append(
                f"{_where(policies, w)}: every occurrence in the next year is blocked by freezes "
                f"({', '.join(names)})"
            )
        elif blocked:
            names = sorted({n for o in blocked for n in blocked_by(o, spans)})
            out.append(
                f"{_where(policies, w)}: {len(blocked)} of {len(occs)} occurrences in the next "
                "year "
                f"are blocked completely by freezes ({', '.join(names)}); first "
                f"{blocked[0].id}"
            )
        soon = now + timedelta(days=90)
        for o in occs:
            if o.start >= soon:
                break
            note = o.dst_note()
            if note:
                out.append(f"{_where(policies, w)}: daylight saving affects {o.id}: {note}")
        if w.cron:
            fields = w.cron.split()
            if len(fields) == 5 and fields[2] not in ("*", "?") and fields[4] not in ("*", "?"):
                out.append(
                    f"{_where(policies, w)}: cron {w.cron!r} restricts both day of month and day "
                    "of week; cron matches days that satisfy EITHER (for 'second "
                    "Tuesday' write TUE#2)"
                )
    return out
