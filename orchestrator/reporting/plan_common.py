"""What the plan formats share: value spelling and hosts grouped by identical changes."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.gitops.diff import FieldChange, plain
from orchestrator.gitops.hosts import HostChange

VALUE_WIDTH = 120


def value(v: Any) -> str:
    """A policy value as JSON text, cut to VALUE_WIDTH characters."""
    if v is None:
        return "(unset)"
    text = json.dumps(plain(v), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 3] + "..."


def field_line(f: FieldChange) -> str:
    if f.added or f.removed:
        parts = [f"+{value(v)}" for v in f.added] + [f"-{value(v)}" for v in f.removed]
        return f"{f.path}: {' '.join(parts)}"
    return f"{f.path}: {value(f.old)} -> {value(f.new)}"


def host_groups(hosts: list[HostChange]) -> list[tuple[str, list[str]]]:
    """(what changes, the hosts it changes for), hosts with identical changes together,
    the largest first."""
    groups: dict[str, list[str]] = {}
    for h in hosts:
        what = ", ".join(h.categories) or "membership only"
        if h.joined:
            what += f"; joins {', '.join(h.joined)}"
        if h.left:
            what += f"; leaves {', '.join(h.left)}"
        groups.setdefault(what, []).append(h.host)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def names(items: list[str], most: int) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")
