"""The transport interface: run a command, read a file, close. No heavy imports here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from orchestrator.errors import TransportError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    """What a command left behind. Output is raw bytes: hosts do not promise UTF-8."""

    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def first_error_line(self) -> str:
        for line in self.stderr.decode("utf-8", "replace").splitlines():
            if line.strip():
                return line.strip()[:200]
        return f"exit status {self.exit_status}"


@dataclass(frozen=True)
class Identity:
    """Who we talk to: the inventory name, the address and user actually used."""

    name: str
    host: str
    port: int
    user: str | None


@runtime_checkable
class Transport(Protocol):
    """One connection to one host. `shell` says which dialect `run` speaks: 'sh' or 'powershell'."""

    identity: Identity
    shell: str

    def connect(self) -> None:
        """Open the connection now (otherwise the first command does); raises TransportError."""
        ...

    def run(self, command: str, *args: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> Result:
        """Run `command` with each of `args` quoted for the remote shell and appended."""
        ...

    def read_file(self, path: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> bytes: ...

    def close(self) -> None: ...


class RemoteFileError(TransportError):
    """A remote file could not be read (missing, permission denied)."""


def port_number(raw: object, where: str) -> int:
    """An inventory port value as an int in 1..65535, else a one-line InventoryError."""
    from orchestrator.errors import InventoryError

    try:
        port = int(raw)  # type: ignore[call-overload]
        if not 0 < port < 65536:
            raise ValueError
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: ansible_port must be a port number, not {raw!r}") from None
    return port


