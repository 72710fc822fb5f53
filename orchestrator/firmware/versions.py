"""Firmware version comparison: pure, no I/O.

Vendors write firmware versions in many ways (`2.19.1`, `7.10.30.00`, `A04`, `1.2.3-beta`,
`v22.31.6`). Both sides are split into runs of digits and runs of letters (separators `.`, `-`,
`_`, `+`, `~`, space are only boundaries; a leading `v` is dropped; letters compare without
case). Runs compare pairwise: numbers by value, letters alphabetically, a number above a letter
run (as rpm does). When one side runs out first, the rest of the longer one decides: zeros only
are the same version (`7.10.30.00` is `7.10.30`), anything else is newer (`1.2.3-beta` is newer
than `1.2.3`, as rpm says). Leading zeros do not count either, so `2.19.01` is `2.19.1`.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"[0-9]+|[A-Za-z]+")

CURRENT, OUTDATED, AHEAD, UNKNOWN = "current", "outdated", "ahead", "unknown"


def _runs(version: str) -> list[int | str]:
    text = version.strip()
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    return [int(r) if r.isdigit() else r.lower() for r in _RUN.findall(text)]


def compare(installed: str, wanted: str) -> int:
    """-1 when `installed` is older than `wanted`, 0 the same, 1 newer."""
    a, b = _runs(installed), _runs(wanted)
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return -1 if x < y else 1
        if isinstance(x, str) and isinstance(y, str):
            return -1 if x < y else 1
        return 1 if isinstance(x, int) else -1
    rest = a[len(b):] or b[len(a):]
    if all(r == 0 for r in rest):
        return 0
    return 1 if len(a) > len(b) else -1


def status(installed: str | None, wanted: str) -> str:
    """`current`, `outdated` or `ahead`; `unknown` when the component reports no version."""
    if installed is None or not _runs(installed):
        return UNKNOWN
    return {-1: OUTDATED, 0: CURRENT, 1: AHEAD}[compare(installed, wanted)]
