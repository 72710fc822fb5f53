"""Freezes added, lifted or moved, and waivers added, extended, shortened, removed or
expiring soon, between two revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from orchestrator.policy.model import Freeze, PolicySet, Waiver

EXPIRING_DAYS = 30


@dataclass(frozen=True)
class FreezeChange:
    name: str
    change: str  # added | lifted | changed
    freeze: Freeze  # the head's (the base's when lifted)
    was: Freeze | None = None  # the base's, for a changed freeze

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "change": self.change, **_freeze(self.freeze),
                "was": _freeze(self.was) if self.was else None}


def _freeze(f: Freeze) -> dict[str, Any]:
    return {"from": f.start.isoformat(), "until": f.until.isoformat(), "timezone": f.timezone,
            "groups": list(f.groups) if f.groups is not None else None, "reason": f.reason}


@dataclass(frozen=True)
class WaiverChange:
    name: str
    change: str  # added | removed | extended | shortened | changed | expiring
    waiver: Waiver  # the head's (the base's when removed)
    was: Waiver | None = None

    def to_json(self) -> dict[str, Any]:
        w = self.waiver
        return {"name": self.name, "change": self.change, "expires": w.expires.isoformat(),
                "wasExpires": self.was.expires.isoformat() if self.was else None,
                "checks": list(w.checks), "hosts": list(w.hosts), "groups": list(w.groups),
                "justification": w.justification}


def freeze_changes(base: PolicySet, head: PolicySet) -> list[FreezeChange]:
    out = []
    for name in sorted(set(base.freezes) | set(head.freezes)):
        old, new = base.freezes.get(name), head.freezes.get(name)
        if old is None and new is not None:
            out.append(FreezeChange(name, "added", new))
        elif new is None and old is not None:
            out.append(FreezeChange(name, "lifted", old))
        elif old is not None and new is not None and _fields(old) != _fields(new):
            out.append(FreezeChange(name, "changed", new, old))
    return out


def _fields(f: Freeze) -> tuple:
    return (f.start, f.until, f.timezone, f.groups, f.reason)


def waiver_changes(base: PolicySet, head: PolicySet, today: date) -> list[WaiverChange]:
    """Changed waivers, then the head's waivers (changed or not) that are in force today and
    expire within EXPIRING_DAYS days."""
    out = []
    for name in sorted(set(base.waivers) | set(head.waivers)):
        old, new = base.waivers.get(name), head.waivers.get(name)
        if old is None and new is not None:
            out.append(WaiverChange(name, "added", new))
        elif new is None and old is not None:
            out.append(WaiverChange(name, "removed", old))
        elif old is not None and new is not None:
            if new.expires > old.expires:
                out.append(WaiverChange(name, "extended", new, old))
            elif new.expires < old.expires:
                out.append(WaiverChange(name, "shortened", new, old))
            elif _wfields(old) != _wfields(new):
                out.append(WaiverChange(name, "changed", new, old))
    soon = today + timedelta(days=EXPIRING_DAYS)
    for name in sorted(head.waivers):
        w = head.waivers[name]
        if not w.expired(today) and w.expires <= soon:
            out.append(WaiverChange(name, "expiring", w, base.waivers.get(name)))
    return out


def _wfields(w: Waiver) -> tuple:
    return (w.checks, w.justification, w.hosts, w.groups)
