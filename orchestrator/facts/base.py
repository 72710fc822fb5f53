"""Facts: a shell command (policy values quoted) plus a pure parser (text in, typed value out)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

SHELLS = ("sh", "powershell")


class FactParseError(ValueError):
    """The output does not look like what the command prints. Message: one line."""


class FactArgError(ValueError):
    """A value from a policy that must not reach a shell (or makes no sense for this fact)."""


@dataclass(frozen=True)
class FactRequest:
    """One fact to gather, e.g. FactRequest('file.stat', ('/etc/ssh/sshd_config',))."""

    fact: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(str(a) for a in self.args))

    @property
    def key(self) -> str:
        return self.fact + (":" + ",".join(self.args) if self.args else "")


@dataclass(frozen=True)
class FactResult:
    """A value, or an error (one line) when the fact could not be determined."""

    value: Any = None
    error: str | None = None
    lossy: bool = False  # the output was not valid UTF-8; undecodable bytes became U+FFFD

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Output:
    """One fact's share of a batch: what its parser sees."""

    stdout: str
    stderr: str = ""
    rc: int = 0

    def first_error(self) -> str:
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()[:200]
        return f"exit status {self.rc}"


@dataclass(frozen=True)
class Fact:
    name: str
    shell: str  # sh | powershell
    command: Callable[[tuple[str, ...]], str]
    parse: Callable[[Output, tuple[str, ...]], Any]
    check: Callable[[tuple[str, ...]], None] | None = None
    doc: str = ""


FACTS: dict[str, Fact] = {}


def register(*facts: Fact) -> None:
    for f in facts:
        FACTS[f.name] = f


def to_jsonable(value: Any) -> Any:
    """Fact values (dataclasses, tuples, dicts) as plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return value


# -- argument checks shared by several facts ------------------------------------------------
def no_control(value: str, what: str) -> None:
    if any(c in value for c in "\x00\n\r"):
        raise FactArgError(f"{what} {value!r} contains a NUL or newline")


def abs_path(value: str) -> None:
    no_control(value, "path")
    if not value.startswith("/"):
        raise FactArgError(f"path {value!r} must be absolute")


NAME_RE = re.compile(r"^[A-Za-z0-9@._:+][A-Za-z0-9@._:+\-]{0,254}$")


def safe_name(value: str, what: str) -> None:
    if not NAME_RE.fullmatch(value):
        raise FactArgError(f"{what} {value!r} has characters outside A-Z a-z 0-9 @ . _ : + -")
