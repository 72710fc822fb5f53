"""Transports: how the orchestrator talks to a host. Backends are imported lazily by name.

t = get_transport("ssh", host_vars, settings, host="web-01")
res = t.run("dpkg-query", "-W", "openssh-server", timeout=10)   # args are quoted for you
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.transports.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    Identity,
    RemoteFileError,
    Result,
    Transport,
)

__all__ = [
    "BACKENDS",
    "Identity",
    "RemoteFileError",
    "Result",
    "Transport",
    "TransportSettings",
    "connection_name",
    "get_transport",
    "transport_for_host",
]

# name -> module holding create(name, host_vars, settings)
BACKENDS = {
    "ssh": "orchestrator.transports.ssh",
    "winrm": "orchestrator.transports.winrm",
    "local": "orchestrator.transports.local",
}
# ansible_connection values that mean our ssh backend
_ALIASES = {
    "smart": "ssh",
    "paramiko": "ssh",
    "paramiko_ssh": "ssh",
    "ssh": "ssh",
    "ansible.builtin.ssh": "ssh",
    "ansible.builtin.paramiko_ssh": "ssh",
    "winrm": "winrm",
    "ansible.builtin.winrm": "winrm",
    "psrp": None,
    "local": "local",
    "ansible.builtin.local": "local",
}


@dataclass(frozen=True)
class TransportSettings:
    """Connection settings that come from orchestrator.yml rather than the inventory."""

    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    host_keys: str = "strict"  # strict | acceptNew
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT


def connection_name(host_vars: Mapping[str, Any], host: str = "?") -> str:
    raw = str(host_vars.get("ansible_connection") or "ssh")
    name = _ALIASES.get(raw)
    if name is None:
        raise InventoryError(
            f"inventory host {host}: ansible_connection {raw!r} is not supported; use ssh or winrm"
        )
    return name


def get_transport(
    name: str, host_vars: Mapping[str, Any], settings: Any = None, *, host: str | None = None
) -> Transport:
    """A transport of backend `name` ('ssh', 'winrm', 'local') for one host; nothing connects
    until the first command. `settings` is a TransportSettings or config.SshSettings."""
    module = BACKENDS.get(name)
    host = host or str(host_vars.get("inventory_hostname") or host_vars.get("ansible_host") or "?")
    if module is None:
        raise InventoryError(f"inventory host {host}: unknown transport {name!r}; use ssh or winrm")
    backend = importlib.import_module(module)
    return backend.create(
        host, host_vars, settings if settings is not None else TransportSettings()
    )


def transport_for_host(host: str, host_vars: Mapping[str, Any], settings: Any = None) -> Transport:
    """The transport the inventory asks for (ansible_connection; ssh by default)."""
    return get_transport(connection_name(host_vars, host), host_vars, settings, host=host)
