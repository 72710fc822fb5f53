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


def _common_prefix(a: str, b: str) -> int:
    """Length of the common start of a and b (by halving, with C-speed comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def pair(old: Any, new: Any, middle: int = 4000) -> tuple[str, str]:
    """Two values as text, cut so that what differs shows: the common start and end are
    trimmed to a little context and the differing middle kept whole up to `middle`
    characters (longer: its two ends, with how much was left out), so a late change is
    never hidden behind an early one."""
    a, b = _text(old), _text(new)
    if len(a) <= VALUE_WIDTH and len(b) <= VALUE_WIDTH:
        return a, b
    head = _common_prefix(a, b)
    tail = _common_prefix(a[head:][::-1], b[head:][::-1])

    def cut(text: str) -> str:
        start, end = max(0, head - CONTEXT), min(len(text), len(text) - tail + CONTEXT)
        mid = text[head:len(text) - tail]
        if len(mid) > middle:
            half = middle // 2
            mid = f"{mid[:half]} ...({len(mid) - 2 * half} characters)... {mid[-half:]}"
        return (("..." if start else "") + text[start:head] + mid
                + text[len(text) - tail:end] + ("..." if end < len(text) else ""))
    return cut(a), cut(b)


MOST_ITEMS = 50  # items added or removed shown per field (the JSON has them all)


def field_line(f: FieldChange, width: int = 4 * VALUE_WIDTH, middle: int = 4000) -> str:
    if f.added or f.removed:
        parts = [f"+{value(v, width)}@{i}" for v, i in zip(f.added, f.added_at, strict=False)]
        parts += [f"-{value(v, width)}@{i}"
                  for v, i in zip(f.removed, f.removed_at, strict=False)]
        more = f" and {len(parts) - MOST_ITEMS} more" if len(parts) > MOST_ITEMS else ""
        order = " (and the other items reordered)" if f.reordered else ""
        return f"{f.path}: {' '.join(parts[:MOST_ITEMS])}{more}{order}"
    a, b = pair(f.old, f.new, middle)
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
