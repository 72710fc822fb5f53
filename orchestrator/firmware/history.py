"""What the change log says about BMC tasks earlier runs started: a run killed (or canceled,
or timed out) while a BMC was flashing leaves a `firmware.task` record (its task monitor) and
no `updated` record after it; the next run follows that task instead of flashing the
component a second time beside it. And the plan a dry run shows."""

from __future__ import annotations

from typing import Any

from orchestrator.context import RunContext
from orchestrator.policy.model import PolicySet


def open_tasks(ctx: RunContext, hosts: set[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(host, component id) -> (task monitor, the version it was flashing), for the BMC tasks
    any earlier run (of any group: a host may be in several) started on `hosts` (killed,
    canceled, timed out while the BMC worked) whose component never got an `updated` or
    `current` record after: the playbook follows such a task to its end before it flashes
    anything (a finished or forgotten one ends at once)."""
    from orchestrator.changelog.store import LogFilter
    from orchestrator.firmware.outcomes import valid_handle

    if not hosts:
        return {}
    latest: dict[tuple[str, str], tuple[int, str, str]] = {}
    settled: dict[tuple[str, str], int] = {}
    for action in ("firmware.task", "firmware.update"):
        for rec in ctx.store.records(LogFilter(action=action)):
            if rec.host not in hosts:
                continue
            key = (rec.host, str(rec.details.get("component") or ""))
            if action == "firmware.task":
                handle = valid_handle(rec.details.get("handle"))
                if handle is not None:
                    latest[key] = (rec.seq, handle, str(rec.details.get("version") or ""))
            elif rec.status in ("updated", "current"):
                settled[key] = max(settled.get(key, 0), rec.seq)
    return {k: (handle, version) for k, (seq, handle, version) in latest.items()
            if settled.get(k, 0) < seq}


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
