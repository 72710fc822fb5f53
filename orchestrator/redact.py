"""Passwords out of messages: URLs keep their scheme, user, host and path, never a password.

A state URL such as `postgresql://user:s3cret@db/orchestrator` (or one with `?password=`)
names the store in error messages; `redact` replaces the password with `***` wherever such a
URL appears in a text, whatever the scheme. It over-redacts rather than under-redacts: the
password runs to the last `@` of the URL, so a password holding `@`, `/` or `:` is hidden
whole.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ - the user stops at ':', '/', '@' or a space; the password runs to
# the last '@' before the next whitespace. One slash is enough (a URL that went through a
# path join, `postgresql:/user:pw@host`).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*:/+[^\s:/@]*):(?P<pw>\S*)@")
# password=... in a query string or a libpq keyword string (also sslpassword, passwd, pwd).
_QUERY = re.compile(r"(?P<head>(?:^|[?&;\s])(?:ssl)?(?:password|passwd|pwd)=)(?P<pw>[^&;\s'\"]*)",
                    re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    if ":/" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["pw"] else m[0], text)
