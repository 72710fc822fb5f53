"""[DateTime] and [Globalization.CultureInfo] of the PowerShell subset: `ToString(format[,
provider])` with .NET's standard and custom format strings, in the invariant or en-US culture.

Standard formats: d D f F g G M m o O R r s t T u U Y y. Custom ones: yyyy yyy yy y, MMMM MMM MM
M, dddd ddd dd d, HH H hh h, mm m, ss s, f..fffffff, F..FFFFFFF, tt t, K, z zz zzz, `:` and `/`
(the culture's separators, both ':' and '/' here), 'quoted' and "quoted" literals, \\x and %x;
any other character is itself. The dates are of kind Unspecified (K prints nothing, z is +00:00).
An unknown one-letter format throws .NET's FormatException text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

BAD_FORMAT = "Input string was not in a correct format."
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class CultureInfo:
    """A culture: "" is InvariantCulture, "en-US" the emulated host's current culture."""

    name: str

    def __str__(self) -> str:
        return self.name

    def ps_member(self, name: str) -> object:
        if name == "name":
            return self.name
        if name == "displayname":
            return "Invariant Language (Invariant Country)" if not self.name else \
                "English (United States)"
        return None


INVARIANT = CultureInfo("")
EN_US = CultureInfo("en-US")

_STANDARD = {  # (invariant, en-US)
    "d": ("MM/dd/yyyy", "M/d/yyyy"),
    "D": ("dddd, dd MMMM yyyy", "dddd, MMMM d, yyyy"),
    "f": ("dddd, dd MMMM yyyy HH:mm", "dddd, MMMM d, yyyy h:mm tt"),
    "F": ("dddd, dd MMMM yyyy HH:mm:ss", "dddd, MMMM d, yyyy h:mm:ss tt"),
    "g": ("MM/dd/yyyy HH:mm", "M/d/yyyy h:mm tt"),
    "G": ("MM/dd/yyyy HH:mm:ss", "M/d/yyyy h:mm:ss tt"),
    "M": ("MMMM dd", "MMMM d"), "m": ("MMMM dd", "MMMM d"),
    "o": ("yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",) * 2,
    "O": ("yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",) * 2,
    "R": ("ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",) * 2,
    "r": ("ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",) * 2,
    "s": ("yyyy'-'MM'-'dd'T'HH':'mm':'ss",) * 2,
    "t": ("HH:mm", "h:mm tt"),
    "T": ("HH:mm:ss", "h:mm:ss tt"),
    "u": ("yyyy'-'MM'-'dd HH':'mm':'ss'Z'",) * 2,
    "U": ("dddd, dd MMMM yyyy HH:mm:ss", "dddd, MMMM d, yyyy h:mm:ss tt"),
    "Y": ("yyyy MMMM", "MMMM yyyy"), "y": ("yyyy MMMM", "MMMM yyyy"),
}
_TOKEN = re.compile(r"y+|M+|d+|H+|h+|m+|s+|f+|F+|t+|K|z+|'[^']*'?|\"[^\"]*\"?|\\.?|%|.", re.S)


def format_date(value: datetime, fmt: str | None, culture: CultureInfo = EN_US) -> str:
    """`[DateTime].ToString(fmt, culture)`; ValueError(BAD_FORMAT) as .NET throws."""
    fmt = fmt or "G"
    if len(fmt) == 1:
        if fmt not in _STANDARD:
            raise ValueError(BAD_FORMAT)
        pattern = _STANDARD[fmt]
        fmt = pattern[1] if culture.name and len(pattern) > 1 else pattern[0]
    out = ""
    for t in _TOKEN.findall(fmt):
        text = _token(value, t)
        if t[0] == "F" and not text and out.endswith("."):
            out = out[:-1]  # an all-zero F fraction takes its decimal point with it
        out += text
    return out


def _token(v: datetime, t: str) -> str:  # noqa: C901, PLR0911 - one branch per token kind
    c, n = t[0], len(t)
    if c == "y":
        return str(v.year % 100) if n == 1 else f"{v.year % 100:02d}" if n == 2 else \
            str(v.year).zfill(n)
    if c == "M":
        return _MONTHS[v.month - 1][: 3 if n == 3 else None] if n >= 3 else f"{v.month:0{n}d}"
    if c == "d":
        return DAYS[v.weekday()][: 3 if n == 3 else None] if n >= 3 else f"{v.day:0{n}d}"
    if c in "Hhms":
        num = {"H": v.hour, "h": v.hour % 12 or 12, "m": v.minute, "s": v.second}[c]
        return f"{num:0{min(n, 2)}d}"
    if c in "fF":
        if n > 7:
            raise ValueError(BAD_FORMAT)
        digits = f"{v.microsecond:06d}0"[:n]
        return digits.rstrip("0") if c == "F" else digits
    if c == "t":
        return ("AM" if v.hour < 12 else "PM")[: 1 if n == 1 else None]
    if c == "K":
        return ""
    if c == "z":
        return "+00" if n < 3 else "+00:00"
    if c in "'\"":
        if n < 2 or t[-1] != c:
            raise ValueError(BAD_FORMAT)  # an unterminated quoted literal
        return t[1:-1]
    if c == "\\":
        if n < 2:
            raise ValueError(BAD_FORMAT)
        return t[1]
    if c == "%":
        return ""
    return t
