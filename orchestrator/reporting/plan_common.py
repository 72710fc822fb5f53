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


def value(v: Any, width: int = VALUE_WIDTH) -> str:
    """A policy value as JSON text, cut to `width` characters (head and tail kept)."""
    text = _text(v)
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def pair(old: Any, new: Any) -> tuple[str, str]:
    """Two values as text, cut so that everything that differs shows: the common head and
    tail are trimmed to a little context, the differing middle kept (up to 2 x VALUE_WIDTH,
    then its two ends), so a late change is never hidden behind an early one."""
    a, b = _text(old), _text(new)
    if len(a) <= VALUE_WIDTH and len(b) <= VALUE_WIDTH:
        return a, b
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1

    def cut(text: str) -> str:
        start, end = max(0, head - CONTEXT), min(len(text), len(text) - tail + CONTEXT)
        middle = text[head:len(text) - tail]
        if len(middle) > 2 * VALUE_WIDTH:
            middle = f"{middle[:VALUE_WIDTH]} ... {middle[-VALUE_WIDTH:]}"
        return (("..." if start else "") + text[start:head] + middle
                + text[len(text) - tail:end] + ("..." if end < len(text) else ""))
    return cut(a), cut(b)


def field_line(f: FieldChange, width: int = 4 * VALUE_WIDTH) -> str:
    if f.added or f.removed:
        parts = [f"+{value(v, width)}" for v in f.added] + \
            [f"-{value(v, width)}" for v in f.removed]
        order = " (and the other items reordered)" if f.reordered else ""
        return f"{f.path}: {' '.join(parts)}{order}"
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
