"""A host's BMC as the inventory describes it (SPEC section 2): `bmc_address`, `bmc_user`,
`bmc_password`, `bmc_system_id`, `bmc_ca_file`, and `bmc_validate_certs` (default true).

Inventory values arrive rendered as Ansible renders them, so the password may be plain, vaulted
(`!vault`) or read from an environment variable the inventory names
(`bmc_password: "{{ lookup('env', 'BMC_PASSWORD') }}"`). The password is kept out of `repr`
and out of every message. Plain HTTP is refused: the password would cross the network in clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import InventoryError

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
    ca_file: str | None = None
    verify: bool = True

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
    password = host_vars.get("bmc_password")
    if password is None or _text(password) == "":
        raise bad("bmc_password", "is not set or empty (plain, vaulted, or "
                  "\"{{ lookup('env', 'VAR') }}\")")
    system_id = _text(host_vars.get("bmc_system_id")) or None
    if system_id is not None and not _SYSTEM_ID.match(system_id):
        raise bad("bmc_system_id", f"{system_id[:40]!r} is not a Redfish resource id")
    ca_file = _text(host_vars.get("bmc_ca_file")) or None
    if ca_file is not None and not Path(ca_file).is_file():
        raise bad("bmc_ca_file", f"names {ca_file[:120]!r}, which is not a readable file")
    verify = host_vars.get("bmc_validate_certs", True)
    if isinstance(verify, str):
        if verify.strip().lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise bad("bmc_validate_certs", f"{verify[:20]!r} is not true or false")
        verify = verify.strip().lower() in ("true", "yes", "1")
    return Bmc(host, address, user, str(password), system_id, ca_file, bool(verify))
