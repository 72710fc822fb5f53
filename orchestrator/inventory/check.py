"""Policies against the inventory: groups that match nothing, hosts claimed twice."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.inventory.model import Host, Inventory
from orchestrator.policy.model import PolicySet
from orchestrator.transports import CONNECTIONS, connection_value


def cert_validation_ignored(hosts: Iterable[Host], source: str) -> str | None:
    """One warning line naming every WinRM host whose inventory switches off certificate
    validation (ansible_winrm_server_cert_validation: ignore), or None. Honoured, as Ansible
    honours it, but never silently."""
    names = sorted(
        h.name for h in hosts
        if getattr(CONNECTIONS.get(connection_value(h.vars)), "backend", None) == "winrm"
        and str(h.vars.get("ansible_winrm_server_cert_validation", "")).lower()
        == "ignore")
    if not names:
        return None
    return (f"{source}: ansible_winrm_server_cert_validation is 'ignore' for "
            f"{len(names)} host(s): {', '.join(names)}; their WinRM certificates are not "
            "verified (give ansible_winrm_ca_trust_path and validate instead)")


def check_inventory(ps: PolicySet, inv: Inventory) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) as `file:line:col: Kind/name: message` lines."""
    errors: list[str] = []
    warnings: list[str] = []
    insecure = cert_validation_ignored(inv.hosts.values(), inv.source)
    if insecure:
        warnings.append(insecure)
    claimed: dict[str, list[str]] = {}
    for g in ps.groups.values():
        where = ps.locate("AssetGroup", g.name, "spec", "hosts")
        for i, ig in enumerate(g.inventory_groups):
            if ig not in inv.groups:
                warnings.append(
                    f"{ps.locate('AssetGroup', g.name, 'spec', 'hosts', 'inventoryGroups', i)}: "
                    f"AssetGroup/{g.name}: inventory group {ig!r} is not in "
                    f"{inv.source}"
                )
        members = inv.members(g)
        if not members:
            warnings.append(f"{where}: AssetGroup/{g.name}: matches no host of {inv.source}")
        for h in members:
            claimed.setdefault(h.name, []).append(g.name)
    for host, groups in sorted(claimed.items()):
        if len(groups) < 2:
            continue
        objs = [ps.groups[n] for n in groups]
        policies = {o.patch_policy for o in objs if o.patch_policy}
        windows = {tuple(sorted(o.windows)) for o in objs if o.windows}
        firmware = {o.firmware_policy for o in objs if o.firmware_policy}
        for what, values in (
            ("patch policies", policies),
            ("windows", windows),
            ("firmware policies", firmware),
        ):
            if len(values) > 1:
                shown = "; ".join(
                    ", ".join(v) if isinstance(v, tuple) else v for v in sorted(values, key=str)
                )
                errors.append(
                    f"{ps.locate('AssetGroup', objs[1].name, 'spec', 'hosts')}: "
                    f"AssetGroup/{objs[1].name}: host {host} is also in "
                    f"{', '.join(n for n in groups if n != objs[1].name)} with "
                    f"different {what} ({shown}); a host may follow one only"
                )
    return errors, warnings
