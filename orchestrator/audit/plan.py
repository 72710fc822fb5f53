"""Which hosts an audit covers and what each must satisfy."""

from __future__ import annotations

import fnmatch

from orchestrator.audit.host import HostJob
from orchestrator.errors import OrchestratorError
from orchestrator.inventory.model import Inventory
from orchestrator.policy.model import PolicySet


def host_jobs(ps: PolicySet, inv: Inventory, group: str | None = None,
              limit: str | None = None) -> list[HostJob]:
    """One job per host of the chosen groups, with the baselines of all its groups."""
    if group is not None and group not in ps.groups:
        known = ", ".join(sorted(ps.groups)) or "none"
        raise OrchestratorError(f"{ps.root}: no AssetGroup named {group!r} (known: {known}); "
                                "check --group")
    chosen = [ps.groups[group]] if group else list(ps.groups.values())
    patterns = [p.strip() for p in (limit or "").split(",") if p.strip()]
    by_host: dict[str, list[str]] = {}
    for g in chosen:
        for h in inv.members(g):
            if patterns and not any(fnmatch.fnmatchcase(h.name, p) for p in patterns):
                continue
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
