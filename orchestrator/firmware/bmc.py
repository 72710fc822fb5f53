"""A host's BMC as the inventory describes it (SPEC section 2): `bmc_address`, `bmc_user`,
`bmc_password`, `bmc_system_id`, `bmc_ca_file`, and `bmc_validate_certs` (default true).

Inventory values arrive rendered as Ansible renders them, so the password may be plain, vaulted
(`!vault`) or read from an environment variable the inventory names
(`bmc_password: "{{ lookup('env', 'BMC_PASSWORD') }}"`). The password is kept out of `repr`
and out of every message. Plain HTTP is refused: the password would cross the network in clear.

`bmc_ca_file` is resolved to an absolute path (a relative one is relative to the
orchestrator's working directory) and read once, here: it must be trusted as the known_hosts
files are (a regular file of this user or root, writable by nobody else, reached through
folders and links nobody else can change) and hold at least one PEM certificate. The
resolved path is `Bmc.ca_file` (for the apply playbook), the certificates `Bmc.ca_pem` (for
our own client, so a file swapped after the check is not read). `bmc_validate_certs` is a
boolean or true/false, yes/no, 1/0 (any case); empty means the default, true; anything else
is an error, never "off".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.transports.redfish import basic_auth, read_ca_file

_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
                   r"(?::(?P<port>[0-9]{1,5}))?$")
_SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class Bmc:
    """Where and how to reach one host's BMC. `address` is `host[:port]` (HTTPS)."""

    host: str  # the inventory host it belongs to
    address: str
    user: str
    password: str = field(repr=False)
    system_id: str | None = None
    ca_file: str | None = None  # absolute, links resolved
    verify: bool = True
    ca_pem: str | None = field(default=None, repr=False, compare=False)  # ca_file's certificates

    @property
    def base_uri(self) -> str:
        return f"https://{self.address}"

    @property
    def hostname(self) -> str:
        text = self.address
        if text.startswith("["):
            return text[1:text.index("]")]
        return text.rsplit(":", 1)[0] if text.count(":") == 1 else text

    @property
    def port(self) -> int:
        m = _HOST.match(self.address)
        return int(m.group("port")) if m and m.group("port") else 443


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def bmc_of(host: str, host_vars: dict[str, Any]) -> Bmc:
    """The BMC of `host` from its inventory variables; InventoryError (one line, naming the
    host and the variable) when one is missing or malformed."""
    def bad(var: str, what: str) -> InventoryError:
        return InventoryError(f"{host}: inventory variable {var} {what}; set it in the host's "
                              "or group's variables")

    address = _text(host_vars.get("bmc_address"))
    if not address:
        raise bad("bmc_address", "is not set (the BMC's host name or address, host[:port])")
    if "://" in address:
        scheme, _, rest = address.partition("://")
        if scheme.lower() != "https":
            raise bad("bmc_address", f"uses {scheme[:10]!r}: only https is used (the BMC's "
                      "password must not cross the network in clear)")
        address = rest.rstrip("/")
    m = _HOST.match(address)
    if not m or (m.group("port") and not 1 <= int(m.group("port")) <= 65535):
        raise bad("bmc_address", f"{address[:80]!r} is not host[:port]")
    user = _text(host_vars.get("bmc_user"))
    if not user:
        raise bad("bmc_user", "is not set")
    if ":" in user:
        raise bad("bmc_user", "holds ':', which basic authentication cannot carry")
    password = host_vars.get("bmc_password")
    if password is None or _text(password) == "":
        raise bad("bmc_password", "is not set or empty (plain, vaulted, or "
                  "\"{{ lookup('env', 'VAR') }}\")")
    password = str(password)
    try:
        basic_auth(user, password)
    except ValueError as exc:
        raise bad("bmc_user or bmc_password", str(exc)) from None
    system_id = _text(host_vars.get("bmc_system_id")) or None
    if system_id is not None and not _SYSTEM_ID.match(system_id):
        raise bad("bmc_system_id", f"{system_id[:40]!r} is not a Redfish resource id")
    ca_file, ca_pem = _ca_file(host, host_vars.get("bmc_ca_file"))
    verify = _validate_certs(host_vars.get("bmc_validate_certs"), bad)
    return Bmc(host, address, user, password, system_id, ca_file, verify, ca_pem)


_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def _validate_certs(value: Any, bad: Callable[[str, str], InventoryError]) -> bool:
    """A boolean, 0 or 1, or one of _TRUE/_FALSE (any case); None (empty) is true."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise bad("bmc_validate_certs", f"{value[:20]!r} is not true or false")
    raise bad("bmc_validate_certs", f"is a {type(value).__name__}, not true or false")


def _ca_file(host: str, value: Any) -> tuple[str | None, str | None]:
    """(the resolved path, its PEM certificates) of `bmc_ca_file`, (None, None) if unset."""
    path = _text(value)
    if not path:
        return None, None
    try:
        return read_ca_file(path)
    except ValueError as exc:
        raise InventoryError(f"{host}: inventory variable bmc_ca_file: {exc}") from None
