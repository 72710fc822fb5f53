"""`patch apply`: install what the patch policy approves, in batches, inside the window.

For one asset group: the window guard (real clock; an override is recorded first), the
group's lease (one run patches a group at a time; a dead run's lease is taken over), a scan
(what is approved and still missing per host), then the rollout: batches from `serial`, the
window checked again before each batch (no new host work after the cutoff; `onEnd: cancel`
ends work in flight at the window's end), the failure budget over the whole rollout, and per
batch the shipped playbook of each Linux package manager through ansible-runner (Windows
hosts: windows_apply, over WinRM), each host's packages pinned to the approved versions.
Records are written as each host's results arrive: per package `patch.install`, `reboot`,
`health`, then per host `patch.apply`; hosts not reached are `skip deferred` (they go first
next time) or `skip budget-exhausted`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError
from orchestrator.inventory.model import Inventory
from orchestrator.patching.dependencies import rejected_vars
from orchestrator.patching.guard import (
    canceller,
    group_lease,
    open_for_work,
    rollout_groups,
    stop_reason,
)
from orchestrator.patching.history import (
    deferred_last_time,
    finished_in,
    interrupted_in,
    planned_rollout,
)
from orchestrator.patching.outcomes import (
    NOT_STARTED,
    REBOOT_TASK,
    RESULT_TASK,
    ApplyEvents,
    ApplyRun,
    HostOutcome,
    stop_status,
)
from orchestrator.patching.playbook_run import run_batch_playbook, timeout_vars_problem
from orchestrator.patching.rollout import FailureBudget, batches
from orchestrator.patching.scan import DEFAULT_TIMEOUT, ScanRun, run_scan, scan_jobs
from orchestrator.policy.model import PatchPolicy, PolicySet

PLAYBOOKS = {"apt": "patch-apt.yml", "dnf": "patch-dnf.yml", "zypper": "patch-zypper.yml",
             "windows": "patch-windows.yml"}
PLAYBOOK_TIMEOUT = 4 * 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


def _extravars(policy: PatchPolicy, packages: dict[str, list[dict[str, str]]]
               ) -> dict[str, Any]:
    """The playbook contract's extra variables; `packages`: each host's own pinned list
    (`orchestrator_host_packages`, so that one playbook run serves a whole batch)."""
    hc = policy.health_checks
    return {
        "orchestrator_host_packages": packages,
        "orchestrator_reboot": policy.reboot,
        # orchestrator_reboot_timeout is not passed: extra vars beat the inventory, and it is a
        # host or group inventory variable (INVENTORY_TIMEOUTS)
        "orchestrator_disk_free_min": policy.disk_free_percent_min,
        "orchestrator_health_services": list(hc.services),
        "orchestrator_health_command": hc.command or "",
        "orchestrator_health_timeout": int(hc.timeout.total_seconds()),
        **rejected_vars(policy),
    }


# Host or group inventory variables the patch playbooks read (extra vars would beat the
# inventory, so the orchestrator does not pass them): seconds, at most this many.
INVENTORY_TIMEOUTS = {
    "orchestrator_reboot_timeout": 3600,  # for the boot, then as long for a first command
    "orchestrator_lock_timeout": 3600,  # apt: wait for dpkg/apt locks held by another process
}


def inventory_timeout_problem(host_vars: dict[str, Any]) -> str | None:
    """What is wrong with a host's `orchestrator_reboot_timeout` (default 600 s, in the
    playbooks) or `orchestrator_lock_timeout` (default 120 s), or None when each is unset or a
    whole number of seconds in range (twice the largest stays below PLAYBOOK_TIMEOUT)."""
    return timeout_vars_problem(host_vars, INVENTORY_TIMEOUTS)


def apply_group(ctx: RunContext, ps: PolicySet, inv: Inventory, group: str, *,
                check: bool = False, override: str | None = None, occurrence: Any = None,
                clock: Callable[[], datetime] | None = None,
                scan_timeout: float = DEFAULT_TIMEOUT, today: date | None = None,
                resume: str | None = None) -> ApplyRun:
    """Patch `group` now. `occurrence`: the window occurrence a run-window is working in
    (else the group's open occurrence is found here). `clock` is for tests; the real clock
    decides otherwise. `resume`: the id of the occurrence whose lease this run holds; hosts
    an earlier run of it finished (a run that died or failed) are skipped, and its failed
    hosts still count against the budget: one rollout per occurrence, no host twice."""
    now = clock or utc_now
    run = ApplyRun(ctx.run_id, group)
    g = ps.groups.get(group)
    if g is None or g.patch_policy is None:
        raise OrchestratorError(f"{ps.root}: group {group!r} has no patch policy; name a group "
                                "whose AssetGroup sets patchPolicy")
    policy = ps.patch_policies[g.patch_policy]
    occurrence, closed = open_for_work(ctx, ps, group, override=override,
                                       occurrence=occurrence, check=check, now=now,
                                       command="patch apply")
    if closed is not None:
        run.status, run.reason = "closed", closed
        return run
    if check:
        return _rollout(ctx, ps, inv, run, policy, check=True, occurrence=occurrence,
                        override=override, now=now, scan_timeout=scan_timeout, today=today,
                        resume=resume, lease=None)
    with group_lease(ctx, rollout_groups(ps, inv, group), group, "patched",
                     PLAYBOOK_TIMEOUT) as (beat, dead_run):
        return _rollout(ctx, ps, inv, run, policy, check=False, occurrence=occurrence,
                        override=override, now=now, scan_timeout=scan_timeout, today=today,
                        resume=resume, lease=beat, dead_run=dead_run)


def _rollout(ctx: RunContext, ps: PolicySet, inv: Inventory, run: ApplyRun,
             policy: PatchPolicy, *, check: bool, occurrence: Any, override: str | None,
             now: Callable[[], datetime], scan_timeout: float, today: date | None,
             resume: str | None, lease: Any, dead_run: str | None = None) -> ApplyRun:
    """The scan, the batches and the failure budget of one group's rollout."""
    group = run.group
    on_end = ps.windows[occurrence.window].on_end if occurrence is not None else "finish"
    earlier = finished_in(ctx, group, resume) if resume else {}
    interrupted = interrupted_in(ctx, group, earlier, occurrence=resume) if resume else {}
    if dead_run is not None:  # the run whose group lease this one took over
        interrupted = {**interrupted_in(ctx, group, earlier, run=dead_run), **interrupted}
    scan: ScanRun = run_scan(ctx, ps, [j for j in scan_jobs(ps, inv, group)
                                       if j.host not in earlier],
                             timeout=scan_timeout, today=today)
    wanted: dict[str, list[dict[str, str]]] = {}
    about: dict[str, dict[str, dict[str, Any]]] = {}  # what the scan knew of each package
    managers: dict[str, str] = {}
    for h in scan.hosts:
        if h.status in ("unreachable", "error"):
            run.hosts[h.host] = HostOutcome(h.host, "failed", f"scan: {h.error}")
            continue
        todo = [{"name": p.update.name, "version": p.update.available}
                for p in h.patches if p.decision.state == "approved"]
        about[h.host] = {p.update.name: {
            "classification": p.update.classification,
            "released": p.update.released.isoformat() if p.update.released else None,
            "firstSeen": p.first_seen.isoformat()} for p in h.patches
            if p.decision.state == "approved"}
        if h.host in interrupted:
            # a dead run was working on it: what it installed is in, but its reboot, health
            # check and records may not be; its pinned list again (what is in stays as it is)
            # with whatever the scan finds missing now
            names = {p["name"] for p in todo}
            todo = todo + [p for p in interrupted[h.host] if p["name"] not in names]
        if not todo:
            run.hosts[h.host] = HostOutcome(h.host, "up-to-date", "nothing approved is missing")
            continue
        wanted[h.host] = todo
        managers[h.host] = h.manager or ""
    first = [h for h in interrupted if h in wanted]
    first += [h for h in deferred_last_time(ctx, group) if h in wanted and h not in first]
    order = first + [h for h in wanted if h not in first]
    run.batches = batches(order, policy.rollout.serial) if order else []
    budget = FailureBudget(policy.rollout.max_failures, len(scan.hosts) + len(earlier))
    for h, (status, reason, by) in earlier.items():
        if status == "failed":
            budget.spend(h, reason)
        run.hosts[h] = HostOutcome(h, "already-done", f"{status} earlier in {resume} by {by}"
                                   + (f": {reason}" if reason else ""))
    if earlier and not check:
        ctx.record_all([ctx.entry("skip", "already-done", host=h, group=group, earlier=st,
                                  by=by) for h, (st, _, by) in earlier.items()])
    for h, out in run.hosts.items():
        if out.status == "failed":
            budget.spend(h, out.reason)
    if not check:
        ctx.record("patch.apply.start", "started", group=group, policy=policy.name,
                   batches=run.batches, budget=budget.describe(), deferredFirst=first,
                   resumed=[h for h in interrupted if h in wanted])
    deferred: list[str] = []
    try:
        for n, batch in enumerate(run.batches if not check else [order], 1):
            stop = None if check else stop_reason(ps, group, occurrence, override, budget,
                                                   now())
            if stop is not None:
                status, reason = stop
                left = [h for b in run.batches[n - 1:] for h in b]
                for h in left:
                    run.hosts[h] = HostOutcome(h, status, reason)
                ctx.record_all([ctx.entry("skip", status, host=h, group=group, reason=reason)
                                for h in left])
                if status == "deferred":
                    deferred += left
                break
            events = ApplyEvents(ctx, group, {h: wanted[h] for h in batch}, check, n,
                                 about=about)
            cancel = canceller(occurrence, on_end, now, lease) if not check else None

            def may_start() -> str | None:
                """Why no new host work may start now (checked again before every playbook
                run and every Windows host: a batch is not one instant), or None."""
                if check:
                    return None
                if lease is not None and not lease.healthy:
                    return f"this run no longer holds the group's lease ({lease.problem})"
                why = stop_reason(ps, group, occurrence, override, budget, now())
                return why[1] if why is not None else None

            for manager, hosts in _by_manager(batch, managers).items():
                why = may_start()
                if why is not None:
                    for h in hosts:
                        events.not_started(h, why, stop_status(why))
                    continue
                if not check:  # in flight from here: a resumed run finishes these first
                    ctx.record("patch.batch", "started", group=group, batch=n,
                               manager=manager, hosts=hosts,
                               packages={h: wanted[h] for h in hosts})
                _run_one(ctx, inv, manager, hosts, policy, events, check, cancel, may_start)
            outcomes = [events.outcome(h) for h in batch]
            for out in outcomes:
                run.hosts[out.host] = out
                if out.status == "failed":
                    budget.spend(out.host, out.reason)
            if not check:
                done = [o for o in outcomes
                        if o.status not in NOT_STARTED and o.host not in events.recorded]
                waiting = [o for o in outcomes if o.status in NOT_STARTED]
                ctx.record_all([ctx.entry("patch.apply", o.status, host=o.host, group=group,
                                          batch=n, reason=o.reason, rebooted=o.rebooted)
                                for o in done]
                               + [ctx.entry("skip", o.status, host=o.host, group=group,
                                            batch=n, reason=o.reason) for o in waiting])
                deferred += [o.host for o in waiting if o.status == "deferred"]
    except BaseException:
        run.status = "aborted"  # Ctrl-C, a lost store: the end record says so
        raise
    finally:
        run.budget = budget.describe()
        if check:
            run.status = "check"
        elif run.status != "aborted" and any(h.status == "failed" for h in run.hosts.values()):
            run.status = "failed"
        if not check:
            ctx.record("patch.apply.end", run.status, group=group, deferred=deferred,
                       budget=run.budget, spentBy=budget.spent_by, hosts=run.summary())
    return run


def _by_manager(batch: list[str], managers: dict[str, str]) -> dict[str, list[str]]:
    """Hosts of a batch by package manager: one playbook run (one parallel pool on Windows)
    per manager, each host with its own pinned packages."""
    out: dict[str, list[str]] = {}
    for h in batch:
        out.setdefault(managers[h], []).append(h)
    return out


def _run_one(ctx: RunContext, inv: Inventory, manager: str, hosts: list[str],
             policy: PatchPolicy, events: ApplyEvents, check: bool,
             cancel: Callable[[], bool] | None,
             may_start: Callable[[], str | None] | None = None) -> None:
    if manager == "windows":  # over our WinRM transport, each host its own KBs (events.wanted)
        from orchestrator.patching.windows_apply import apply_windows

        apply_windows(ctx, inv, hosts, policy, events, events.wanted, check, cancel,
                      may_start=may_start)
        return
    name = PLAYBOOKS.get(manager)
    if name is None:
        for h in hosts:
            events.failures[h] = f"no patch playbook for package manager {manager!r}"
        return
    run_batch_playbook(
        ctx, inv, ctx.playbooks / name, hosts, events, limits=INVENTORY_TIMEOUTS,
        extravars=lambda ok: _extravars(policy, {h: events.wanted[h] for h in ok}),
        cancel=cancel, timeout=PLAYBOOK_TIMEOUT, check=check)


__all__ = ["PLAYBOOK_TIMEOUT", "REBOOT_TASK", "RESULT_TASK", "ApplyEvents", "ApplyRun",
           "HostOutcome", "apply_group", "inventory_timeout_problem", "planned_rollout"]
