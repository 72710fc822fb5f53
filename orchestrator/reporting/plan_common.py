"""What the plan formats share: value spelling and hosts grouped by identical changes."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.gitops.diff import FieldChange, plain
from orchestrator.gitops.hosts import HostChange

VALUE_WIDTH = 160
CONTEXT = 40  # characters shown before the first difference of two long values


def _text(v: Any) -> str:
    return "(unset)" if v is None else json.dumps(plain(v), ensure_ascii=False, sort_keys=True)


def value(v: Any) -> str:
    """A policy value as JSON text, cut to VALUE_WIDTH characters."""
    text = _text(v)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 3] + "..."


def pair(old: Any, new: Any) -> tuple[str, str]:
    """Two values as text, each cut so that where they differ shows: long values are shown
    from a little before their first difference, never as two identical prefixes."""
    a, b = _text(old), _text(new)
    if len(a) <= VALUE_WIDTH and len(b) <= VALUE_WIDTH:
        return a, b
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                 min(len(a), len(b)))
    start = max(0, first - CONTEXT)

    def cut(text: str) -> str:
        piece = text[start:start + VALUE_WIDTH]
        return ("..." if start else "") + piece + ("..." if start + VALUE_WIDTH < len(text)
                                                   else "")
    return cut(a), cut(b)


def field_line(f: FieldChange) -> str:
    if f.added or f.removed:
        parts = [f"+{_text(v)}" for v in f.added] + [f"-{_text(v)}" for v in f.removed]
        return f"{f.path}: {' '.join(parts)}"
    a, b = pair(f.old, f.new)
    return f"{f.path}: {a} -> {b}"


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
