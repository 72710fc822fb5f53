"""What audit and patch scan share: which hosts a command covers, and one host's facts in one
connection (connect, gather in one round trip, close), never raising for host trouble."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import HostKeyError, OrchestratorError, TransportError
from orchestrator.inventory.model import Host, Inventory
from orchestrator.policy.model import AssetGroup, PolicySet


def chosen_members(ps: PolicySet, inv: Inventory, group: str | None, limit: str | None
                   ) -> Iterator[tuple[AssetGroup, Host]]:
    """(asset group, host) for every host of `group` (default: every group) that matches
    `--limit` (comma-separated fnmatch patterns). An unknown group is an error."""
    if group is not None and group not in ps.groups:
        known = ", ".join(sorted(ps.groups)) or "none"
        raise OrchestratorError(f"{ps.root}: no AssetGroup named {group!r} (known: {known}); "
                                "check --group")
    chosen = [ps.groups[group]] if group else list(ps.groups.values())
    patterns = [p.strip() for p in (limit or "").split(",") if p.strip()]
    for g in chosen:
        for h in inv.members(g):
            if not patterns or any(fnmatch.fnmatchcase(h.name, p) for p in patterns):
                yield g, h


@dataclass(frozen=True)
class HostFacts:
    """`status` ok (facts by request), unreachable (could not connect) or error (a host key
    refused, the connection dropped, the batch hung), with a one-line reason."""

    status: str
    error: str | None = None
    facts: dict[Any, Any] = field(default_factory=dict)


def gather_host(host: str, host_vars: dict[str, Any], settings: Any, requests: Sequence[Any],
                timeout: float) -> HostFacts:
    from orchestrator.facts import gather
    from orchestrator.transports import transport_for_host

    try:
        transport = transport_for_host(host, host_vars, settings)
    except OrchestratorError as exc:
        return HostFacts("error", exc.message)
    try:
        try:
            transport.connect()
        except HostKeyError as exc:
            return HostFacts("error", exc.message)
        except TransportError as exc:
            return HostFacts("unreachable", exc.message)
        try:
            return HostFacts("ok", None, gather(transport, requests, timeout=timeout))
        except TransportError as exc:
            return HostFacts("error", exc.message)
    finally:
        transport.close()
