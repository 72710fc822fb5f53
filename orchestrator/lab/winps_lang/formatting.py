"""How the PowerShell subset prints objects: the default (Out-Default) view and ConvertTo-Json.
"""

from __future__ import annotations

import json
from typing import Any

from .values import PSDate, to_string


def to_json_value(v: Any, depth: int = 0, max_depth: int = 2) -> Any:
    """A value as plain JSON data, as ConvertTo-Json -Depth max_depth: dates as `/Date(ms)/`,
    objects (property bags, COM objects' properties) and arrays expanded down to max_depth
    levels, deeper ones as their text ("@{a=1}", "System.__ComObject"); other objects as text."""
    if isinstance(v, PSDate):
        return v.json()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (dict, list, tuple)) or hasattr(v, "ps_properties"):
        if depth > max_depth:
            return to_string(v)
        if isinstance(v, (list, tuple)):
            return [to_json_value(x, depth + 1, max_depth) for x in v]
        items = v.items() if isinstance(v, dict) else v.ps_properties().items()
        return {str(k): to_json_value(x, depth + 1, max_depth) for k, x in items}
    return to_string(v)


def format_default(obj: Any) -> str:
    """What Out-Default prints for one object (strings as is, objects as a list view)."""
    if isinstance(obj, (str, int, float, bool, PSDate)):
        return to_string(obj) + "\n"
    if isinstance(obj, dict) or hasattr(obj, "ps_properties"):
        items = obj.items() if isinstance(obj, dict) else obj.ps_properties().items()
        return "\n".join(f"{k} : {to_string(v)}" for k, v in items) + "\n\n"
    return to_string(obj) + "\n"


def to_json(value: Any, compress: bool, depth: int = 2) -> str:
    """ConvertTo-Json's text: 4-space indents (or -Compress), <>'& escaped as in 5.1; -Depth
    (default 2) as to_json_value."""
    text = json.dumps(to_json_value(value, 0, depth), ensure_ascii=False,
                      indent=None if compress else 4,
                      separators=(",", ":") if compress else (",", ": "))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027"), ("&", "\\u0026")):
        text = text.replace(ch, esc)  # as PowerShell 5.1 escapes them
    return text
