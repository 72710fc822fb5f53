"""Inventory as plain data, independent of Ansible's objects (so it can cross processes)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from orchestrator.policy.model import AssetGroup
from orchestrator.transports import connection_value, host_platform


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]  # inventory groups, `all` and `ungrouped` left out
    vars: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def connection(self) -> str:
        return connection_value(self.vars)

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host") or self.name)

    @property
    def platform(self) -> str:
        """From the one connection table (transports.CONNECTIONS), as the transport is."""
        return host_platform(self.vars)


@dataclass(frozen=True)
class Inventory:
    source: str
    hosts: dict[str, Host]
    groups: frozenset[str]

    def members(self, group: AssetGroup) -> list[Host]:
        """Hosts in any listed inventory group or matching any pattern, by name."""
        wanted = set(group.inventory_groups)
        return [h for name, h in sorted(self.hosts.items())
                if wanted.intersection(h.groups)
                or any(fnmatch.fnmatchcase(name, p) for p in group.patterns)]
