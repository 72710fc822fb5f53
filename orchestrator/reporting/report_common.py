"""What the markdown and HTML reports share: the references from figures to the appendix
of records, and how numbers and rows read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.compliance.model import Report, Section, Trace

MOST_ROWS = 50  # rows of a long table (overdue patches, recurring failures...) per section


@dataclass
class Refs:
    """Figures point at `R<n>`; the appendix lists each one's records and log query."""

    items: list[tuple[str, Trace]] = field(default_factory=list)

    def add(self, trace: Any) -> str:
        t = _trace(trace)
        self.items.append((f"R{len(self.items) + 1}", t))
        return self.items[-1][0]


def _trace(value: Any) -> Trace:
    if isinstance(value, Trace):
        return value
    if isinstance(value, dict):
        return Trace(value.get("query", ""), tuple(value.get("seqs") or ()),
                     int(value.get("count") or 0), value.get("note") or "",
                     value.get("first"), value.get("last"), value.get("exact", True))
    return Trace("")


# Printable to Python but blank or joining: fillers, braille blank, variation selectors,
# the combining grapheme joiner, Mongolian free variation selectors.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u180b\u180c\u180d\u180f"
                   + "".join(chr(c) for c in range(0xFE00, 0xFE10))
                   + "".join(chr(c) for c in range(0xE0100, 0xE01F0)))


def visible(value: Any) -> str:
    """Text with every control, bidi or invisible character shown as U+XXXX: a value from a
    record cannot reorder what a reader sees, pass for another name or reach a terminal as
    an escape sequence."""
    text = "" if value is None else str(value)
    if text.isprintable() and _BLANK.isdisjoint(text):
        return text
    return "".join(c if c.isprintable() and c not in _BLANK else f"U+{ord(c):04X}"
                   for c in text)


def pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def num(value: Any) -> str:
    return "n/a" if value is None else str(value)


def day(value: Any) -> str:
    """A period bound or record time as its date."""
    return str(value)[:10] if value else ""


def title(r: Report) -> str:
    p = r.period
    scope = f", group {p['group']}" if p.get("group") else ""
    return f"Compliance report {day(p['from'])} to {p['lastDay']}{scope}"


def section_name(s: Section) -> str:
    return "All groups" if s.group is None else f"Group {s.group}"


def outcomes(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


def firmware_status(d: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in d.items())


def chain_line(r: Report) -> str:
    c = r.chain
    if c.get("intact"):
        return (f"log verify: intact, {c.get('records')} records checked, the whole log "
                f"(record 1 through record {c.get('through')}); anchor {c.get('anchor')}")
    return (f"log verify: BROKEN at record {c.get('brokenAt')}: {c.get('reason')} "
            f"({c.get('records')} records checked through record {c.get('through')})")
