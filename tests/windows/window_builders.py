"""Building model objects directly (no loader) for the window engine tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from orchestrator.policy.durations import parse_duration
from orchestrator.policy.model import AssetGroup, Freeze, Location, Meta, PolicySet, Window


def meta(name: str) -> Meta:
    return Meta(name, None, Location(Path("x.yml"), 1, 1))


def local(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def make_window(spec: dict, name: str = "patch-window") -> Window:
    grace = spec.get("misfireGrace")
    return Window(
        meta=meta(name),
        timezone=spec["timezone"],
        duration=parse_duration(str(spec["duration"])),
        cutoff=parse_duration(str(spec.get("cutoff", "0"))),
        cron=spec.get("cron"),
        rrule=spec.get("rrule"),
        offset_days=spec.get("offsetDays", 0),
        on_end=spec.get("onEnd", "finish"),
        misfire_grace=parse_duration(grace) if grace else None,
        valid_from=local(spec["validFrom"]) if spec.get("validFrom") else None,
        valid_until=local(spec["validUntil"]) if spec.get("validUntil") else None,
    )


def make_freeze(spec: dict) -> Freeze:
    return Freeze(
        meta=meta(spec["name"]),
        start=local(spec["from"]),
        until=local(spec["until"]),
        timezone=spec["timezone"],
        reason=spec.get("reason", "frozen"),
        groups=tuple(spec["groups"]) if spec.get("groups") else None,
    )


def policy_set(windows: list[Window], freezes: list[Freeze] = (), group: str = "web"
               ) -> PolicySet:
    g = AssetGroup(meta=meta(group), patterns=("web-*",), windows=tuple(w.name for w in windows))
    return PolicySet(
        root=Path("policies"),
        windows={w.name: w for w in windows},
        freezes={f.name: f for f in freezes},
        groups={group: g},
    )
