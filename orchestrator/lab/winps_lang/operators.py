"""The operators of the PowerShell subset: casts, + and -, and the comparison operators.

Comparisons convert the right operand to the left one's type and ignore case; with a list on the
left, a comparison filters the list (`@(1,2,3) -gt 1` is `2, 3`).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from .values import Hashtable, PSError, PSObject, enumerate_, to_string, truthy


def cast(type_name: str, v: Any) -> Any:
    """`[type] v`: string, int, bool, array, pscustomobject, ordered/hashtable."""
    t = type_name.removeprefix("system.")
    if t == "string":
        return to_string(v)
    if t in ("int", "int32", "int64", "long"):
        try:
            return int(v) if not isinstance(v, str) else int(v.strip())
        except (TypeError, ValueError):
            raise PSError(f'Cannot convert value "{to_string(v)}" to type '
                          '"System.Int32".') from None
    if t == "bool":
        return truthy(v)
    if t in ("array", "object[]"):
        return enumerate_(v)
    if t in ("pscustomobject", "management.automation.pscustomobject"):
        return PSObject(v) if isinstance(v, dict) else v
    if t in ("ordered", "hashtable"):
        if not isinstance(v, dict):
            raise PSError(f"Cannot convert value to type [{type_name}].")
        return Hashtable(v)
    raise PSError(f"Unable to find type [{type_name}].")


def _coerce(left: Any, right: Any) -> Any:
    """Right operand converted to the left one's type, as PowerShell compares."""
    if isinstance(left, str):
        return to_string(right)
    if isinstance(left, bool):
        return truthy(right)
    if isinstance(left, (int, float)) and isinstance(right, str):
        try:
            return float(right) if "." in right else int(right)
        except ValueError:
            return right
    return right


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    b = _coerce(a, b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def binop(op: str, a: Any, b: Any) -> Any:  # noqa: C901 - a table of operators
    """`a <op> b` for + -, -band -bor (integers, flags) and the comparison operators
    (case-insensitive)."""
    if op == "+":
        if a is None:
            return b
        if isinstance(a, list):
            return a + enumerate_(b)
        if isinstance(a, str):
            return a + to_string(b)
        if isinstance(a, dict) and isinstance(b, dict):
            return Hashtable({**a, **b})
        return a + _coerce(a, b)
    if op == "-":
        return a - _coerce(a, b)
    if op in ("band", "bor"):
        x, y = cast("int", a), cast("int", b)
        return x & y if op == "band" else x | y
    if op in ("contains", "notcontains"):
        found = any(_eq(x, b) for x in enumerate_(a) or [None])
        return found if op == "contains" else not found
    if op in ("in", "notin"):
        return binop("contains" if op == "in" else "notcontains", b, a)
    if isinstance(a, list):  # comparison with a list on the left filters it
        return [x for x in a if binop(op, x, b) is True]
    if op == "eq":
        return _eq(a, b)
    if op == "ne":
        return not _eq(a, b)
    if op in ("like", "notlike"):
        hit = fnmatch.fnmatchcase(to_string(a).lower(), to_string(b).lower())
        return hit if op == "like" else not hit
    if op in ("match", "notmatch"):
        hit = re.search(to_string(b), to_string(a), re.I) is not None
        return hit if op == "match" else not hit
    b = _coerce(a, b)
    if isinstance(a, str):
        a, b = a.lower(), to_string(b).lower()
    try:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    except TypeError:
        raise PSError(f"Cannot compare {to_string(a)!r} and {to_string(b)!r}.") from None
