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
    "CONNECTIONS",
    "Connection",
    "Identity",
    "RemoteFileError",
    "Result",
    "Transport",
    "TransportSettings",
    "connection_name",
    "connection_of",
    "host_platform",
    "get_transport",
    "transport_for_host",
]

# name -> module holding create(name, host_vars, settings)
BACKENDS = {
    "ssh": "orchestrator.transports.ssh",
    "winrm": "orchestrator.transports.winrm",
    "local": "orchestrator.transports.local",
}


@dataclass(frozen=True)
class Connection:
    """What one `ansible_connection` value means, for every part of the orchestrator."""

    backend: str | None  # our transport (BACKENDS); None: Ansible has it, we do not
    platform: str  # linux | windows: which baselines apply
    plugin: str  # the ansible-core plugin check mode forces on the host (execution/checkmode.py)


_SSH = Connection("ssh", "linux", "ansible.builtin.ssh")
# paramiko's plugin reads only ~/.ssh/known_hosts and prompts on an unknown key: check mode
# runs these hosts through OpenSSH, held to the same known_hosts files as our ssh transport
_PARAMIKO = Connection("ssh", "linux", "ansible.builtin.ssh")
_WINRM = Connection("winrm", "windows", "ansible.builtin.winrm")
_PSRP = Connection(None, "windows", "ansible.builtin.psrp")
_LOCAL = Connection("local", "linux", "ansible.builtin.local")
# THE table: every ansible_connection value the orchestrator understands, short names and
# FQCNs alike. Host.platform, the transport of the fact audit and the connection plugin of
# check mode are all read from here; anything else is refused with a one-line error.
CONNECTIONS: dict[str, Connection] = {
    "ssh": _SSH,
    "smart": _SSH,  # Ansible's deprecated default: ssh
    "ansible.builtin.ssh": _SSH,
    "ansible.legacy.ssh": _SSH,
    "paramiko": _PARAMIKO,
    "paramiko_ssh": _PARAMIKO,
    "ansible.builtin.paramiko_ssh": _PARAMIKO,
    "ansible.legacy.paramiko_ssh": _PARAMIKO,
    "winrm": _WINRM,
    "ansible.builtin.winrm": _WINRM,
    "ansible.legacy.winrm": _WINRM,
    "psrp": _PSRP,
    "ansible.builtin.psrp": _PSRP,
    "ansible.legacy.psrp": _PSRP,
    "local": _LOCAL,
    "ansible.builtin.local": _LOCAL,
    "ansible.legacy.local": _LOCAL,
}
SUPPORTED = "ssh, paramiko, winrm or local (short names or ansible.builtin.*)"


def connection_value(host_vars: Mapping[str, Any]) -> str:
    """The host's ansible_connection as written (ssh when unset); Ansible's plugin names are
    exact, so no case folding or trimming."""
    return str(host_vars.get("ansible_connection") or "ssh")


def connection_of(host_vars: Mapping[str, Any], host: str = "?") -> Connection:
    """The table entry for a host's ansible_connection; InventoryError when unknown."""
    raw = connection_value(host_vars)
    found = CONNECTIONS.get(raw)
    if found is None:
        raise InventoryError(
            f"inventory host {host}: ansible_connection {raw!r} is not supported; use {SUPPORTED}"
        )
    return found


def host_platform(host_vars: Mapping[str, Any]) -> str:
    """linux or windows, from the same table; an unknown connection counts as linux (the
    transport then refuses the host with a one-line error)."""
    found = CONNECTIONS.get(connection_value(host_vars))
    return found.platform if found else "linux"


@dataclass(frozen=True)
class TransportSettings:
    """Connection settings that come from orchestrator.yml rather than the inventory."""

    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    host_keys: str = "strict"  # strict | acceptNew
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT


def connection_name(host_vars: Mapping[str, Any], host: str = "?") -> str:
    """Our transport backend for the host: ssh, winrm or local."""
    found = connection_of(host_vars, host)
    if found.backend is None:
        raw = connection_value(host_vars)
        raise InventoryError(
            f"inventory host {host}: ansible_connection {raw!r} is not supported; use {SUPPORTED}"
        )
    return found.backend


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
