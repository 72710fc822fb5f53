"""Which hosts an audit covers and what each must satisfy."""

from __future__ import annotations

import fnmatch

from orchestrator.audit.host import HostJob
from orchestrator.hostfacts import chosen_members
from orchestrator.inventory.model import Inventory
from orchestrator.policy.model import PolicySet


def host_jobs(ps: PolicySet, inv: Inventory, group: str | None = None,
              limit: str | None = None) -> list[HostJob]:
    """One job per host of the chosen groups, with the baselines of all its groups."""
    by_host: dict[str, list[str]] = {}
    for g, h in chosen_members(ps, inv, group, limit):
        by_host.setdefault(h.name, []).append(g.name)
    jobs = []
    for name in sorted(by_host):
        host = inv.hosts[name]
        groups = tuple(sorted(by_host[name]))
        baselines: dict[str, object] = {}
        for gname in groups:
            for bname in ps.groups[gname].baselines:
                b = ps.baselines[bname]
                if b.platform == host.platform:
                    baselines.setdefault(bname, b)
        waivers = tuple(w for w in ps.waivers.values()
                        if set(w.groups).intersection(groups)
                        or any(fnmatch.fnmatchcase(name, p) for p in w.hosts))
        jobs.append(HostJob(name, groups, host.platform, dict(host.vars),
                            tuple(baselines.values()), waivers))  # type: ignore[arg-type]
    return jobs
