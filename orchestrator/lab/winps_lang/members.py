"""Members of PowerShell-subset values: properties, methods, and static `[Type]::` members.

Property names are matched case-insensitively; objects of the caller's own kinds take part by
defining `ps_member(name)` and `ps_call(name, args)` (names arrive lower-cased).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .dates import EN_US, INVARIANT
from .values import FILE_ATTRIBUTES, FileAttributes, Hashtable, PSError, to_string

if TYPE_CHECKING:
    from .evaluator import Interp


def member(obj: Any, name: str) -> Any:
    """`obj.Name`: case-insensitive; a list yields its items' members (member enumeration)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() == name:
                return v
        if isinstance(obj, Hashtable) and name == "count":
            return len(obj)
        return None
    if isinstance(obj, list):
        if name in ("count", "length"):
            return len(obj)
        vals = [member(x, name) for x in obj]
        return [v for v in vals if v is not None]
    if isinstance(obj, str) and name == "length":
        return len(obj)
    if hasattr(obj, "ps_member"):
        return obj.ps_member(name)
    return None


def call_method(obj: Any, name: str, args: list) -> Any:
    """`obj.Name(args)`: ToString(), string methods, ContainsKey, or the object's own (which
    include ToString with arguments, e.g. a date's format)."""
    if name == "tostring" and not args:
        return to_string(obj)
    if hasattr(obj, "ps_call"):
        return obj.ps_call(name, args)
    if name == "tostring":
        raise PSError(f'Cannot find an overload for "ToString" and the argument count: '
                      f'"{len(args)}".')
    if isinstance(obj, str):
        text = {"toupper": obj.upper, "tolower": obj.lower, "trim": obj.strip}.get(name)
        if text:
            return text()
        if name == "startswith":
            return obj.lower().startswith(to_string(args[0]).lower())
        if name == "replace":
            return obj.replace(to_string(args[0]), to_string(args[1]))
    if isinstance(obj, dict) and name == "containskey":
        return any(str(k).lower() == to_string(args[0]).lower() for k in obj)
    if obj is None:
        raise PSError("You cannot call a method on a null-valued expression.")
    raise PSError(f"Method invocation failed because [{type(obj).__name__}] does not contain a "
                  f"method named '{name}'.")


class ConsoleOut:
    """`[Console]::Out`: Write/WriteLine append to the script's stdout."""

    def __init__(self, interp: Interp) -> None:
        self.interp = interp

    def ps_call(self, name: str, args: list) -> None:
        if name not in ("write", "writeline"):
            raise PSError(f"Method invocation failed: TextWriter has no method '{name}'.")
        text = "".join(to_string(a) for a in args)
        self.interp.out.append(text + ("\r\n" if name == "writeline" else ""))


def static_member(type_node: tuple, name: str) -> Any:
    """`[Type]::Name`: the [System.Text.Encoding] encodings, [Globalization.CultureInfo]'s
    InvariantCulture and CurrentCulture (en-US), [IO.FileAttributes]' flags."""
    t = type_node[1].removeprefix("system.")
    if t in ("text.encoding",) and name in ("utf8", "unicode", "ascii"):
        return f"System.Text.{name.upper()}Encoding"
    if t == "globalization.cultureinfo" and name in ("invariantculture", "currentculture"):
        return INVARIANT if name == "invariantculture" else EN_US
    if t == "io.fileattributes":
        bit = next((b for b, n in FILE_ATTRIBUTES.items() if n.lower() == name), None)
        if bit is not None:
            return FileAttributes(bit)
    raise PSError(f"Unable to find type [{type_node[1]}] or its static member {name}.")


def static_call(interp: Interp, type_name: str, name: str, args: list) -> Any:
    """`[Type]::Name(args)`: [WildcardPattern]::Escape."""
    t = type_name.removeprefix("system.")
    if t == "management.automation.wildcardpattern" and name == "escape":
        return re.sub(r"([*?\[\]`])", r"`\1", to_string(args[0]))
    raise PSError(f"Unable to find type [{type_name}] or its method {name}.")
