"""A host's components against its firmware policy: pure, no I/O.

A policy component's `match` is compared, without regard to case and as an fnmatch pattern
(`BIOS`, `NIC*`), with each installed component's Id, its Name and (fwupd) its GUIDs and
plugin, the rule of orchestrator.facts.fwupd. Members a BMC says are not updateable
(`Updateable: false`, e.g. the rollback copies some BMCs list) are not judged. Every member a
component matches is judged, unless an earlier component of the policy matched it first (a
member is flashed to one version, the first that claims it); a component that matches nothing
is one `unknown` entry. A host is `outdated` when any component is, `unknown` when none is
outdated but one is unknown, else `compliant`.
"""

from __future__ import annotations

import fnmatch

from orchestrator.firmware.model import ComponentState, HostFirmware, Installed, Reading
from orchestrator.firmware.versions import UNKNOWN, status
from orchestrator.policy.model import FirmwarePolicy


def matches(pattern: str, item: Installed) -> bool:
    p = pattern.lower()
    return any(fnmatch.fnmatchcase(v.lower(), p)
               for v in (item.id, item.name, *item.guids, item.plugin) if v)


def judge(policy: FirmwarePolicy, group: str, reading: Reading) -> HostFirmware:
    out = HostFirmware(reading.host, group, policy.name, policy.method, "compliant",
                       reading.error, reading.power_state)
    if reading.status != "ok":
        out.status = reading.status
        return out
    claimed: set[int] = set()
    for comp in policy.components:
        found = [(n, i) for n, i in enumerate(reading.components)
                 if n not in claimed and i.updateable is not False and matches(comp.match, i)]
        claimed |= {n for n, _ in found}
        if not found:
            out.components.append(ComponentState(comp.match, comp.version, comp.image, UNKNOWN))
        for _, item in found:
            out.components.append(ComponentState(
                comp.match, comp.version, comp.image, status(item.version, comp.version),
                item.id, item.name, item.version, item.uri))
    states = {c.status for c in out.components}
    out.status = "outdated" if "outdated" in states else (
        "unknown" if UNKNOWN in states else "compliant")
    return out
