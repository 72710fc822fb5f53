"""Quoting for remote shells: a leaf module (the standard library only), so that facts,
transports and playbook runs share one implementation. Arguments passed through these never
reach a shell as code."""

from __future__ import annotations

import shlex

__all__ = ["posix_command", "powershell_command", "powershell_quote", "sh_quote"]

sh_quote = shlex.quote


def posix_command(command: str, args: tuple[str, ...]) -> str:
    """`command` followed by every arg shlex-quoted: args never reach the shell as code."""
    for a in args:
        if "\x00" in a:
            raise ValueError("argument contains a NUL byte")
    return " ".join([command, *(shlex.quote(a) for a in args)]) if args else command


def powershell_quote(value: str) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded; ' (and its look-alikes)
    are doubled."""
    if "\x00" in value:
        raise ValueError("argument contains a NUL byte")
    out = []
    for ch in value:
        out.append(ch)
        if ch in "'\u2018\u2019\u201a\u201b":
            out.append(ch)
    return "'" + "".join(out) + "'"


def powershell_command(command: str, args: tuple[str, ...]) -> str:
    return " ".join([command, *(powershell_quote(a) for a in args)]) if args else command
