"""Text that is safe to show on a terminal: control characters escaped.

Values printed by the orchestrator come from hosts (package versions, fact values, error
text), from inventories, policy files and the environment (ORCHESTRATOR_ACTOR). A value holding
an escape sequence could recolour, clear or rewrite the terminal; one holding a newline could
forge a line of `log` output; a bidi override could make text read differently than it is.

`clean` makes one field or one line safe: every C0 control (newline and tab too: a field is
one line), DEL, every C1 control, the Unicode bidi embedding/override/isolate marks and the
line/paragraph separators become visible escapes (`\\x1b`, `\\n`, `\\u202e`). Other text,
including non-ASCII letters, is kept as it is. Backslashes are kept too, so a value that
already reads `\\x1b` looks the same as an escaped ESC: that is ambiguous to read but harmless.

`json_text` does the same for JSON that json.dumps wrote with ensure_ascii=False: C0 controls
are already escaped there, DEL, C1 and bidi marks are not; they become `\\u00XX` escapes,
which decode to the same value.

This module imports nothing of the orchestrator, so every renderer can use it.
"""

from __future__ import annotations

import re

# Bidi marks and embeddings/overrides/isolates, the Arabic letter mark, and U+2028/U+2029
# (some terminals and editors treat them as line breaks).
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
# In JSON text the C0 controls are already escaped by json.dumps.
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object) -> str:
    """`value` as one line of text with every control character escaped."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def clean_block(text: str) -> str:
    """Text of several lines built by the orchestrator: each line cleaned, the newlines
    between them kept. Fields inside must not carry their own newlines; clean them first
    when they come from outside (a host, an inventory, the environment)."""
    return "\n".join(clean(line) for line in text.split("\n"))


def json_text(text: str) -> str:
    """JSON text from json.dumps(..., ensure_ascii=False) with DEL, C1 controls and bidi
    marks written as \\u escapes: the same JSON value, safe on a terminal."""
    if _UNSAFE_IN_JSON.search(text) is None:
        return text
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
