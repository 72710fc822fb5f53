"""How the PowerShell subset prints objects: the default (Out-Default) view and ConvertTo-Json.
"""

from __future__ import annotations

import json
from typing import Any

from .values import PSDate, to_string


def to_json_value(v: Any) -> Any:
    """A value as plain JSON data (dates as `/Date(ms)/`, other objects as their text)."""
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    if isinstance(v, PSDate):
        return v.json()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return to_string(v)


def format_default(obj: Any) -> str:
    """What Out-Default prints for one object (strings as is, objects as a list view)."""
    if isinstance(obj, (str, int, float, bool, PSDate)):
        return to_string(obj) + "\n"
    if isinstance(obj, dict):
        return "\n".join(f"{k} : {to_string(v)}" for k, v in obj.items()) + "\n\n"
    return to_string(obj) + "\n"


def to_json(value: Any, compress: bool) -> str:
    """ConvertTo-Json's text: 4-space indents (or -Compress), <>'& escaped as in 5.1."""
    text = json.dumps(to_json_value(value), ensure_ascii=False,
                      indent=None if compress else 4,
                      separators=(",", ":") if compress else (",", ": "))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027"), ("&", "\\u0026")):
        text = text.replace(ch, esc)  # as PowerShell 5.1 escapes them
    return text
