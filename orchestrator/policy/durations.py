"""Durations like 90m, 4h, 1h30m, 2d, 0."""

from __future__ import annotations

import re
from datetime import timedelta

MAX = timedelta(days=3650)  # nothing in a policy needs more; keeps date arithmetic in range
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raises ValueError with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like '90m', got {text!r}")
    text = text.strip()
    if text == "0":
        return timedelta(0)
    m = _DURATION.fullmatch(text)
    if not text or not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration; write e.g. 90m, 4h, 1h30m or 2d")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        value = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
    if value > MAX:
        raise ValueError(f"{text!r} is too long a duration (at most {MAX.days} days)")
    return value


def format_duration(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    if total == 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)
