"""The values of the PowerShell subset: object kinds, errors and conversions shared by all parts.

Objects are plain Python values (str, int, float, bool, None, list) plus the kinds here: property
bags (`PSObject`), hashtables, dates, script blocks, error records and `[Type]` names. `PSError` is
a terminating error; `Return` and `ExitScript` carry `return` and `exit` through the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .dates import DAYS, EN_US, CultureInfo, format_date

if TYPE_CHECKING:
    from .evaluator import Interp


class PSError(Exception):
    """A terminating error. `command` prefixes the stderr text like PowerShell's error view."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.message, self.command = message, command

    def render(self) -> str:
        return f"{self.command} : {self.message}" if self.command else self.message


class Return(Exception):  # noqa: N818 - control flow, not an error
    """`return`: unwinds to the script block being called, carrying its output."""

    def __init__(self, values: list) -> None:
        self.values = values


class ExitScript(Exception):  # noqa: N818
    """`exit N`: ends the whole script with exit code N."""

    def __init__(self, code: int) -> None:
        self.code = code


class PSObject(dict):
    """A property bag: [pscustomobject], Select-Object output, cmdlet results."""


class Hashtable(dict):
    """`@{k = v}` (also `[ordered]`); prints as its type name, as PowerShell does."""


@dataclass
class PSDate:
    """A [DateTime]: prints in the en-US form, converts to JSON as `/Date(ms)/`; Year, Month,
    Day, Hour, Minute, Second, Date, DayOfWeek, and ToString([format][, provider])."""

    value: datetime

    def __str__(self) -> str:
        return format_date(self.value, "G")

    def json(self) -> str:  # PowerShell 5.1's ConvertTo-Json form
        return f"/Date({int(self.value.replace(tzinfo=UTC).timestamp() * 1000)})/"

    def ps_member(self, name: str) -> Any:
        v = self.value
        parts = {"year": v.year, "month": v.month, "day": v.day, "hour": v.hour,
                 "minute": v.minute, "second": v.second, "millisecond": v.microsecond // 1000}
        if name in parts:
            return parts[name]
        if name == "date":
            return PSDate(v.replace(hour=0, minute=0, second=0, microsecond=0))
        if name == "dayofweek":
            return DAYS[v.weekday()]
        return None

    def ps_call(self, name: str, args: list) -> Any:
        if name != "tostring" or len(args) > 2:
            raise PSError(f'Cannot find an overload for "{name}" and the argument count: '
                          f'"{len(args)}".' if name == "tostring" else
                          f"Method invocation failed because [System.DateTime] does not contain "
                          f"a method named '{name}'.")
        fmt: str | None = None
        culture = EN_US
        for n, arg in enumerate(args):
            if isinstance(arg, CultureInfo):
                culture = arg
            elif n == 0 and (arg is None or isinstance(arg, str)):
                fmt = arg
            elif arg is not None:
                raise PSError(f'Cannot convert argument "provider", with value: "{to_string(arg)}'
                              '", for "ToString" to type "System.IFormatProvider".')
        try:
            return format_date(self.value, fmt, culture)
        except ValueError as exc:
            raise PSError(f'Exception calling "ToString" with "{len(args)}" argument(s): '
                          f'"{exc}"') from None


@dataclass
class ScriptBlock:
    """`{ ... }`: parsed statements, run later by the evaluator."""

    body: list


@dataclass
class ErrorRecord:
    """`$_` inside a catch block: `$_.Exception.Message` is the error's message."""

    error: PSError

    def ps_member(self, name: str) -> Any:
        if name == "exception":
            return PSObject(Message=self.error.message)
        return None

    def __str__(self) -> str:
        return self.error.message


@dataclass
class Bound:
    """A command's arguments: positional values and named ones (lower-case names)."""

    pos: list = field(default_factory=list)
    named: dict = field(default_factory=dict)

    def get(self, name: str, index: int | None = None, default: Any = None) -> Any:
        if name in self.named:
            return self.named[name]
        if index is not None and len(self.pos) > index:
            return self.pos[index]
        return default


@dataclass
class PSType:
    """`[Type]` used as a value (the left side of `[Type]::Member`)."""

    name: str


Command = Callable[["Interp", Bound, list, "str | None"], list]
"""A cmdlet: (interpreter, its arguments, pipeline input, -ErrorAction) -> its output."""


FILE_ATTRIBUTES = {1: "ReadOnly", 2: "Hidden", 4: "System", 16: "Directory", 32: "Archive",
                   128: "Normal", 1024: "ReparsePoint"}


class FileAttributes(int):
    """A [System.IO.FileAttributes] flags value: an integer (for -band and JSON) that prints as
    its names ("Archive, ReparsePoint"), as .NET enums do."""

    def __str__(self) -> str:
        names = [n for bit, n in FILE_ATTRIBUTES.items() if self & bit]
        return ", ".join(names) if names else str(int(self))


def truthy(v: Any) -> bool:
    """PowerShell's truth: empty/zero/null are false, a one-item list is its item's truth."""
    if isinstance(v, list):
        return len(v) > 1 or (len(v) == 1 and truthy(v[0]))
    return bool(v) if isinstance(v, (str, int, float, bool, type(None))) else True


def to_string(v: Any) -> str:
    """How PowerShell turns a value into text (in strings, -join, Write-Host, casts)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return " ".join(to_string(x) for x in v)
    if isinstance(v, PSObject):
        return "@{" + "; ".join(f"{k}={to_string(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Hashtable):
        return "System.Collections.Hashtable"
    return str(v)


def enumerate_(v: Any) -> list:
    """A value as pipeline items: null is none, a list its items, anything else one item."""
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]



def collapse(out: list) -> Any:
    """Pipeline output as one value: none is null, one item is itself, more are a list."""
    return None if not out else out[0] if len(out) == 1 else out
