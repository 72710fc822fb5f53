"""Reading a BMC over Redfish for a scan: its firmware inventory and the system's power state,
in one request sequence on one keep-alive connection.

    GET /redfish/v1/UpdateService/FirmwareInventory      (following Members@odata.nextLink)
    GET each member
    GET /redfish/v1/Systems/<bmc_system_id>              (or the only member of /Systems)
"""

from __future__ import annotations

from typing import Any

from orchestrator.firmware.model import Installed
from orchestrator.textsafe import clean

FIRMWARE_INVENTORY = "/redfish/v1/UpdateService/FirmwareInventory"
SYSTEMS = "/redfish/v1/Systems"
MAX_MEMBERS = 500  # a BMC listing more components (or a loop of next links) is refused
MAX_PAGES = 50  # next links followed at most (a BMC inventing pages without members)


class _Getter:
    def get(self, path: str) -> dict[str, Any]: ...


def _links(data: dict[str, Any]) -> list[str]:
    members = data.get("Members")
    out: list[str] = []
    for m in members if isinstance(members, list) else []:
        if isinstance(m, dict) and isinstance(m.get("@odata.id"), str):
            out.append(m["@odata.id"])
    return out


def _text(value: Any) -> str | None:
    return None if value is None else clean(str(value))[:200]


def firmware_inventory(session: _Getter) -> list[Installed]:
    links: list[str] = []
    page: str | None = FIRMWARE_INVENTORY
    seen: set[str] = set()
    while page and page not in seen and len(links) < MAX_MEMBERS and len(seen) < MAX_PAGES:
        seen.add(page)
        data = session.get(page)
        links += _links(data)
        nxt = data.get("Members@odata.nextLink")
        page = nxt if isinstance(nxt, str) else None
    items = []
    for link in links[:MAX_MEMBERS]:
        data = session.get(link)
        items.append(member(link, data))
    return items


def member(link: str, data: dict[str, Any]) -> Installed:
    """One SoftwareInventory resource (pure)."""
    ident = _text(data.get("Id")) or link.rstrip("/").rsplit("/", 1)[-1]
    version = data.get("Version")
    up = data.get("Updateable")
    return Installed(ident, _text(data.get("Name")) or ident,
                     _text(version) if isinstance(version, str | int | float) else None,
                     link, up if isinstance(up, bool) else None)


def power_state(session: _Getter, system_id: str | None) -> str | None:
    if system_id is None:
        links = _links(session.get(SYSTEMS))
        if len(links) != 1:
            return None  # several systems behind one BMC: bmc_system_id says which
        path = links[0]
    else:
        path = f"{SYSTEMS}/{system_id}"
    state = session.get(path).get("PowerState")
    return _text(state) if isinstance(state, str) else None
