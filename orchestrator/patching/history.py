"""What the change log says about a group's earlier rollouts: hosts deferred last time (they go
first), hosts an earlier run of an occurrence finished or was working on when it died (a
resumed run skips the first and finishes the second), and the plan a dry run shows."""

from __future__ import annotations

from typing import Any

from orchestrator.context import RunContext
from orchestrator.patching.rollout import batches
from orchestrator.policy.model import PolicySet

# kind -> (the `*.batch` record's key of each host's work, the fields kept of each item)
KEYS = {"patch": ("packages", ("name", "version")),
        "firmware": ("components", ("id", "match", "uri", "version", "image", "name"))}


def deferred_last_time(ctx: RunContext, group: str, kind: str = "patch") -> list[str]:
    """Hosts the group's last rollout (of `kind`: patch, firmware) deferred (they go first
    this time)."""
    from orchestrator.changelog.store import LogFilter

    last: list[str] = []
    for rec in ctx.store.records(LogFilter(action=f"{kind}.apply.end")):
        if rec.group == group:
            last = [str(h) for h in rec.details.get("deferred") or []]
    return last


def finished_in(ctx: RunContext, group: str, occurrence: str, kind: str = "patch"
                ) -> dict[str, tuple[str, str, str]]:
    """Hosts of `group` with an outcome (`patch.apply`, `firmware.apply`) recorded by another
    run in `occurrence`: host -> (status, reason, run)."""
    from orchestrator.changelog.store import LogFilter

    out: dict[str, tuple[str, str, str]] = {}
    for rec in ctx.store.records(LogFilter(action=f"{kind}.apply", occurrence=occurrence)):
        if rec.group == group and rec.host and rec.run != ctx.run_id:
            out[rec.host] = (rec.status, str(rec.details.get("reason") or ""), rec.run)
    return out


def interrupted_in(ctx: RunContext, group: str, finished: dict[str, tuple[str, str, str]], *,
                    occurrence: str | None = None, run: str | None = None,
                    kind: str = "patch") -> dict[str, list[dict[str, str]]]:
    """Hosts of `group` that another run (in `occurrence`, or the run `run`) handed to a
    playbook (`patch.batch`, `firmware.batch`) and never gave an outcome or a skip: it died
    while working on them. host -> the pinned packages (components) it was installing."""
    key, fields = KEYS[kind]
    from orchestrator.changelog.store import LogFilter

    started: dict[tuple[str, str], list[dict[str, str]]] = {}
    ended: set[tuple[str, str]] = set()
    for rec in ctx.store.records(LogFilter(occurrence=occurrence, run=run)):
        if rec.group != group or rec.run == ctx.run_id:
            continue
        if rec.action == f"{kind}.batch":
            packages = rec.details.get(key)
            for h, todo in (packages.items() if isinstance(packages, dict) else []):
                if isinstance(todo, list):
                    started[(rec.run, str(h))] = [
                        {f: str(p.get(f)) for f in fields if p.get(f) is not None}
                        for p in todo if isinstance(p, dict)]
        elif rec.host and (rec.action == f"{kind}.apply" or (
                # a skip ends only its own kind's work (firmware skips say step: firmware)
                rec.action == "skip" and rec.details.get("step", "patch") == kind)):
            ended.add((rec.run, rec.host))
    return {h: todo for (r, h), todo in started.items()
            if (r, h) not in ended and h not in finished}


def planned_rollout(ctx: RunContext, ps: PolicySet, group: str, hosts: list[str]
                    ) -> dict[str, Any]:
    """What a rollout of `group` would do, from each host's last recorded scan (no host is
    contacted, nothing is recorded): the approved patches per host and the batches."""
    from orchestrator.changelog.store import LogFilter

    policy = ps.patch_policies[ps.groups[group].patch_policy]  # type: ignore[index]
    last: dict[str, tuple[str, list[str]]] = {}
    for rec in ctx.store.records(LogFilter(action="patch.scan")):
        if rec.group == group and rec.host in hosts:
            approved = [f"{p.get('name')} {p.get('available')}"
                        for p in rec.details.get("patches") or []
                        if isinstance(p, dict) and p.get("state") == "missing"]
            last[rec.host] = (rec.time, approved)
    todo = [h for h in hosts if last.get(h, ("", []))[1]]
    first = [h for h in deferred_last_time(ctx, group) if h in todo]
    order = first + [h for h in todo if h not in first]
    return {"policy": policy.name,
            "approved": {h: last[h][1] for h in todo},
            "scannedAt": {h: last[h][0] for h in hosts if h in last},
            "notScanned": [h for h in hosts if h not in last],
            "batches": batches(order, policy.rollout.serial) if order else [],
            "maxFailures": policy.rollout.max_failures}
