"""What the change log says about BMC tasks earlier runs started: a run killed while a BMC was
flashing leaves a `firmware.task` record (its task monitor) with no `firmware.update` after
it; the run that resumes follows that task instead of flashing the component a second time."""

from __future__ import annotations

from typing import Any

from orchestrator.context import RunContext
from orchestrator.policy.model import PolicySet


def open_tasks(ctx: RunContext, group: str, hosts: set[str], occurrence: str | None,
               run: str | None) -> dict[tuple[str, str], str]:
    """(host, component id) -> task monitor, for the tasks another run (in `occurrence`, or the
    run `run`) started on `hosts` and never recorded an end of."""
    from orchestrator.changelog.store import LogFilter

    if not hosts or (occurrence is None and run is None):
        return {}
    started: dict[tuple[str, str, str], str] = {}
    ended: set[tuple[str, str, str]] = set()
    filters = [LogFilter(occurrence=occurrence)] if occurrence else []
    filters += [LogFilter(run=run)] if run else []
    for f in filters:
        for rec in ctx.store.records(f):
            if rec.group != group or rec.run == ctx.run_id or rec.host not in hosts:
                continue
            comp = str(rec.details.get("component") or "")
            key = (rec.run, rec.host, comp)
            if rec.action == "firmware.task" and rec.details.get("handle"):
                started[key] = str(rec.details["handle"])
            elif rec.action == "firmware.update":
                ended.add(key)
    return {(h, c): handle for (r, h, c), handle in started.items() if (r, h, c) not in ended}


def planned_firmware(ctx: RunContext, ps: PolicySet, group: str, hosts: list[str]
                     ) -> dict[str, Any]:
    """What a firmware rollout of `group` would do, from each host's last recorded scan (no
    host or BMC is contacted, nothing is recorded): the outdated components and the batches."""
    from orchestrator.changelog.store import LogFilter
    from orchestrator.patching.history import deferred_last_time
    from orchestrator.patching.rollout import batches

    policy = ps.firmware_policies[ps.groups[group].firmware_policy]  # type: ignore[index]
    last: dict[str, tuple[str, list[str]]] = {}
    for rec in ctx.store.records(LogFilter(action="firmware.scan")):
        if rec.group == group and rec.host in hosts:
            todo = [f"{c.get('id')} {c.get('installed')} -> {c.get('wanted')}"
                    for c in rec.details.get("components") or []
                    if isinstance(c, dict) and c.get("status") == "outdated"]
            last[rec.host] = (rec.time, todo)
    todo_hosts = [h for h in hosts if last.get(h, ("", []))[1]]
    first = [h for h in deferred_last_time(ctx, group, kind="firmware") if h in todo_hosts]
    order = first + [h for h in todo_hosts if h not in first]
    return {"policy": policy.name, "method": policy.method,
            "outdated": {h: last[h][1] for h in todo_hosts},
            "scannedAt": {h: last[h][0] for h in hosts if h in last},
            "notScanned": [h for h in hosts if h not in last],
            "batches": batches(order, policy.rollout.serial) if order else [],
            "maxFailures": policy.rollout.max_failures}
