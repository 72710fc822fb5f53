"""Passwords out of messages: URLs keep their scheme, user, host and path, never a password.

A state URL such as `postgresql://user:s3cret@db/orchestrator` (or one with `?password=`,
or a libpq keyword string `host=db password='s3 cret'`) names the store in error messages;
`redact` replaces the password with `***` wherever it appears in a text, whatever the scheme.
It over-redacts rather than under-redacts:

- in `scheme://user:password@host`, the password runs to the last `@` before the next
  whitespace or, when there is none there, to the last `@` on the line (a password may hold
  `@`, `/`, `:` and spaces);
- after `password=` (also `sslpassword`, `passwd`, `pwd`; spaces around `=` allowed, as
  libpq allows them), a quoted value runs through its closing quote (backslash escapes
  skipped; no closing quote: to the end of the text), an unquoted one to the next `&`, `;`
  or unescaped whitespace. A `:` that ends an unquoted value is the message's punctuation.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ - the user stops at ':', '/', '@' or a space. One slash is enough
# (a URL that went through a path join, `postgresql:/user:pw@host`).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*:/+[^\s:/@]*):"
                       r"(?P<pw>\S*|[^\r\n]*)@")
_QUERY = re.compile(
    r"(?P<head>(?<![A-Za-z0-9])(?:ssl)?(?:password|passwd|pwd)\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.?)*(?:'|\Z)"  # 'quoted' (\' inside), or unterminated: to the end
    r"|\"(?:[^\"\\]|\\.?)*(?:\"|\Z)"
    r"|(?:[^&;\s:\\]|\\.?|:(?!\s|\Z))*)",  # bare; a ':' before a space or the end is not its
    re.IGNORECASE | re.DOTALL)


def redact(text: str) -> str:
    """`text` with every password in it (URL, query string, libpq keywords) replaced by ***."""
    if ":/" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["pw"] else m[0], text)
