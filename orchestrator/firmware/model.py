"""What a host's firmware is and how it compares with its policy: plain data, JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.redact import redact


@dataclass(frozen=True)
class Installed:
    """One firmware component as the host reports it: a Redfish FirmwareInventory member
    (`uri` is its resource path) or an fwupd device (`id` its DeviceId, `guids`, `plugin`,
    no `uri`)."""

    id: str
    name: str
    version: str | None
    uri: str | None = None
    updateable: bool | None = None
    guids: tuple[str, ...] = ()
    plugin: str | None = None


@dataclass(frozen=True)
class Reading:
    """What one host (or its BMC) said: its components and power state, or why not."""

    host: str
    status: str  # ok | unreachable | error
    error: str | None = None
    components: tuple[Installed, ...] = ()
    power_state: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ComponentState:
    """One policy component against one installed component (or none: `unknown`)."""

    match: str
    wanted: str
    image: str
    status: str  # current | outdated | ahead | unknown
    id: str | None = None
    name: str | None = None
    installed: str | None = None
    uri: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"match": self.match, "id": self.id, "name": self.name,
                "installed": self.installed, "wanted": self.wanted, "status": self.status,
                "image": redact(self.image)}  # an image URL may carry user:token@


@dataclass
class HostFirmware:
    host: str
    group: str
    policy: str
    method: str
    status: str  # compliant | outdated | unknown | unreachable | error
    error: str | None = None
    power_state: str | None = None
    components: list[ComponentState] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "groups": [self.group], "firmwarePolicy": self.policy,
                "method": self.method, "status": self.status, "error": self.error,
                "powerState": self.power_state,
                "components": [c.to_json() for c in self.components]}

    def record_details(self) -> dict[str, Any]:
        return {"firmwarePolicy": self.policy, "method": self.method, "error": self.error,
                "powerState": self.power_state,
                "components": [c.to_json() for c in self.components]}

    def outdated(self) -> list[ComponentState]:
        return [c for c in self.components if c.status == "outdated"]
