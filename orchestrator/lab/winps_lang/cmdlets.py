"""The generic cmdlets of the PowerShell subset (the ones that do not touch the host).

ConvertTo-Json [-InputObject] [-Compress] [-Depth N] (default 2: deeper objects as their text),
Select-Object [-Property] (names or @{n=..;e={..}}) [-ExpandProperty] [-First],
Where-Object/ForEach-Object { script block }, Out-String, Out-Null, Write-Output/echo,
Write-Host [-NoNewline], Write-Error. Each takes (interpreter, arguments,
pipeline input, -ErrorAction) and returns its output objects; `GENERIC` maps names and aliases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formatting import format_default, to_json
from .members import member
from .values import (
    Bound,
    Command,
    PSError,
    PSObject,
    ScriptBlock,
    collapse,
    enumerate_,
    to_string,
    truthy,
)

if TYPE_CHECKING:
    from .evaluator import Interp


def _convertto_json(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    value = b.named["inputobject"] if "inputobject" in b.named else collapse(data)
    depth = b.named.get("depth", 2)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 100:
        raise PSError(f"Cannot validate argument on parameter 'Depth'. The {to_string(depth)} "
                      "argument is not in the range 0..100.", "ConvertTo-Json")
    return [to_json(value, bool(b.named.get("compress")), depth)]


def _select_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    props = enumerate_(b.get("property", 0))
    expand = b.named.get("expandproperty")
    first = b.named.get("first")
    rows = data[: int(first)] if first is not None else data
    if expand is not None:
        return [v for row in rows for v in enumerate_(member(row, to_string(expand).lower()))]
    if not props:
        return rows
    out = []
    for row in rows:
        obj = PSObject()
        for p in props:
            if isinstance(p, dict):
                label = member(p, "name") or member(p, "n") or member(p, "label") or member(p, "l")
                expr = member(p, "expression") or member(p, "e")
                if isinstance(expr, ScriptBlock):
                    res = ip.call_block(expr, row, has_dollar=True)
                    obj[to_string(label)] = collapse(res)
                else:
                    obj[to_string(label)] = member(row, to_string(expr).lower())
            else:
                key = to_string(p)
                real = next((k for k in row if str(k).lower() == key.lower()), key) \
                    if isinstance(row, dict) else key
                obj[real] = member(row, key.lower())
        out.append(obj)
    return out


def _where_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    block = b.get("filterscript", 0)
    if not isinstance(block, ScriptBlock):
        raise PSError("Where-Object needs a script block.", "Where-Object")
    return [x for x in data if truthy(collapse(ip.call_block(block, x, has_dollar=True)))]


def _foreach_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    block = b.get("process", 0)
    if not isinstance(block, ScriptBlock):
        raise PSError("ForEach-Object needs a script block.", "ForEach-Object")
    return [y for x in data for y in ip.call_block(block, x, has_dollar=True)]


def _out_string(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    text = "".join(format_default(x).replace("\n", "\r\n") for x in data)
    return [text] if data else [""]


def _write_output(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    items = [v for x in b.pos for v in enumerate_(x)]
    return items + enumerate_(b.named.get("inputobject"))


def _write_host(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    text = " ".join(to_string(x) for x in b.pos)
    ip.out.append(text + ("" if b.named.get("nonewline") else "\n"))
    return []


def _write_error(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    ip.error(to_string(b.get("message", 0)), "Write-Error", ea)
    return []


GENERIC: dict[str, Command] = {  # lower-case name or alias -> cmdlet
    "convertto-json": _convertto_json,
    "select-object": _select_object, "select": _select_object,
    "where-object": _where_object, "where": _where_object, "?": _where_object,
    "foreach-object": _foreach_object, "%": _foreach_object,
    "out-string": _out_string,
    "out-null": lambda ip, b, d, ea: [],
    "write-output": _write_output, "echo": _write_output, "write": _write_output,
    "write-host": _write_host,
    "write-error": _write_error,
}
