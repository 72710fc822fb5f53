"""`firmware apply`: bring each component to its policy version, in batches, inside the window.

For one asset group, as `patch apply` does (patching/guard.py): the window guard (real clock;
an override is recorded first), the group's lease (`firmware-apply:GROUP`), a scan (which
components are outdated per host), then the rollout: batches from the policy's `serial`, the
window checked again before each batch and each playbook run (no new host work after the
cutoff; `onEnd: cancel` ends work in flight), the failure budget over the whole rollout, and per
batch one run of the shipped playbook of the policy's method through ansible-runner. A host
whose BMC said its power state is not the one `requirePowerState` asks for fails its
precondition in the playbook (nothing flashed). Components already at the wanted version are
never flashed; a run that resumes an occurrence (or takes over a dead run's lease) follows the
BMC tasks the dead run started instead of flashing again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError
from orchestrator.firmware.history import open_tasks
from orchestrator.firmware.outcomes import FirmwareEvents, FirmwareOutcome
from orchestrator.firmware.scan import DEFAULT_TIMEOUT, run_scan, scan_jobs
from orchestrator.inventory.model import Inventory
from orchestrator.patching.guard import (
    canceller,
    group_lease,
    open_for_work,
    rollout_groups,
    stop_reason,
)
from orchestrator.patching.history import deferred_last_time, finished_in, interrupted_in
from orchestrator.patching.outcomes import NOT_STARTED, ApplyRun, stop_status
from orchestrator.patching.playbook_run import run_batch_playbook
from orchestrator.patching.rollout import FailureBudget, batches
from orchestrator.policy.model import FirmwarePolicy, PolicySet
from orchestrator.redact import redact

PLAYBOOKS = {"redfish": "firmware-redfish.yml", "fwupd": "firmware-fwupd.yml"}
PLAYBOOK_TIMEOUT = 6 * 3600
# host or group inventory variables the firmware playbooks read: seconds, at most this many
INVENTORY_TIMEOUTS = {"orchestrator_firmware_timeout": 4 * 3600,
                      "orchestrator_firmware_poll": 600,
                      "orchestrator_bmc_timeout": 3600,
                      "orchestrator_reboot_timeout": 3600}


def utc_now() -> datetime:
    return datetime.now(UTC)


def apply_group(ctx: RunContext, ps: PolicySet, inv: Inventory, group: str, *,
                check: bool = False, override: str | None = None, occurrence: Any = None,
                clock: Callable[[], datetime] | None = None,
                scan_timeout: float = DEFAULT_TIMEOUT, resume: str | None = None) -> ApplyRun:
    """Update `group`'s firmware now (see the module's text). `resume`: the occurrence whose
    lease this run holds (run-window): hosts an earlier run of it finished are skipped."""
    now = clock or utc_now
    run = ApplyRun(ctx.run_id, group)
    g = ps.groups.get(group)
    if g is None or g.firmware_policy is None:
        raise OrchestratorError(f"{ps.root}: group {group!r} has no firmware policy; name a "
                                "group whose AssetGroup sets firmwarePolicy")
    policy = ps.firmware_policies[g.firmware_policy]
    occurrence, closed = open_for_work(ctx, ps, group, override=override,
                                       occurrence=occurrence, check=check, now=now,
                                       command="firmware apply")
    if closed is not None:
        run.status, run.reason = "closed", closed
        return run
    if check:
        return _check(ctx, ps, inv, run, policy, scan_timeout)
    with group_lease(ctx, rollout_groups(ps, inv, group), group, "updated",
                     PLAYBOOK_TIMEOUT) as (beat, dead_run):
        return _rollout(ctx, ps, inv, run, policy, occurrence=occurrence, override=override,
                        now=now, scan_timeout=scan_timeout, resume=resume, lease=beat,
                        dead_run=dead_run)


def _check(ctx: RunContext, ps: PolicySet, inv: Inventory, run: ApplyRun,
           policy: FirmwarePolicy, scan_timeout: float) -> ApplyRun:
    """What would be flashed per host, from a scan; nothing is changed."""
    scan = run_scan(ctx, ps, scan_jobs(ps, inv, run.group), timeout=scan_timeout)
    run.status = "check"
    todo = []
    for h in scan.hosts:
        if h.status in ("unreachable", "error"):
            run.hosts[h.host] = FirmwareOutcome(h.host, "failed", f"scan: {h.error}")
            continue
        comps = [{"id": c.id, "match": c.match, "wanted": c.wanted, "before": c.installed,
                  "after": None, "status": "would-update", "reason": ""} for c in h.outdated()]
        if not comps:
            run.hosts[h.host] = _nothing_to_do(h)
            continue
        why = _power_problem(policy, h.power_state)
        run.hosts[h.host] = FirmwareOutcome(h.host, "failed" if why else "would-update",
                                            why or "", components=comps)
        todo.append(h.host)
    run.batches = batches(todo, policy.rollout.serial) if todo else []
    return run


def _settle(ctx: RunContext, group: str, hosts: list[Any],
            handles: dict[tuple[str, str], tuple[str, str]]) -> None:
    """An earlier run's task whose component the scan now finds at its version (or ahead) is
    settled with a `firmware.update current` record, so that no later run follows that task
    monitor again (BMCs reuse task ids after a reset)."""
    entries = [ctx.entry("firmware.update", "current", host=h.host, group=group,
                         component=c.id, match=c.match, wanted=c.wanted, before=c.installed,
                         after=c.installed, handle=handles[(h.host, c.id)][0],
                         reason="the scan found the version the earlier task was after; "
                                "that task is settled")
               for h in hosts for c in h.components
               if (h.host, c.id) in handles and c.status in ("current", "ahead")]
    if entries:
        ctx.record_all(entries)


def _nothing_to_do(h: Any) -> FirmwareOutcome:
    """A host with no outdated component: up to date, or `unknown` naming what the scan could
    not find or read (a mistyped match, a member without a version); neither is a failure."""
    unknown = sorted({c.match for c in h.components if c.status == "unknown"})
    if unknown:
        return FirmwareOutcome(h.host, "unknown", "nothing to flash; not found or without a "
                               "version: " + ", ".join(unknown))
    return FirmwareOutcome(h.host, "up-to-date", "every component is at its version or ahead")


def _power_problem(policy: FirmwarePolicy, power: str | None) -> str | None:
    """fwupd works from inside the host: a host that answered is On."""
    if policy.require_power_state == "any" or power == policy.require_power_state \
            or policy.method == "fwupd":
        return None
    return (f"power state is {power or 'unknown'}; the firmware policy requires "
            f"{policy.require_power_state}, so nothing would be flashed")


def _rollout(ctx: RunContext, ps: PolicySet, inv: Inventory, run: ApplyRun,
             policy: FirmwarePolicy, *, occurrence: Any, override: str | None,
             now: Callable[[], datetime], scan_timeout: float, resume: str | None,
             lease: Any, dead_run: str | None) -> ApplyRun:
    group = run.group
    on_end = ps.windows[occurrence.window].on_end if occurrence is not None else "finish"
    earlier = finished_in(ctx, group, resume, kind="firmware") if resume else {}
    interrupted = interrupted_in(ctx, group, earlier, occurrence=resume,
                                 kind="firmware") if resume else {}
    if dead_run is not None:
        interrupted = {**interrupted_in(ctx, group, earlier, run=dead_run, kind="firmware"),
                       **interrupted}
    scan = run_scan(ctx, ps, [j for j in scan_jobs(ps, inv, group) if j.host not in earlier],
                    timeout=scan_timeout)
    handles = open_tasks(ctx, {h.host for h in scan.hosts})
    _settle(ctx, group, scan.hosts, handles)
    wanted: dict[str, list[dict[str, Any]]] = {}
    for h in scan.hosts:
        if h.status in ("unreachable", "error"):
            run.hosts[h.host] = FirmwareOutcome(h.host, "failed", f"scan: {h.error}")
            continue
        todo = [{"id": c.id, "match": c.match, "uri": c.uri, "version": c.wanted,
                 "image": c.image, "name": c.name} for c in h.outdated() if c.id is not None]
        if policy.method == "redfish":
            todo = [c for c in todo if c["uri"]]
        # a component whose update an earlier run started and never saw succeed: its task is
        # followed first (never a second flash beside it); one the scan finds current stays out
        for c in todo:
            handle, version = handles.get((h.host, c["id"]), (None, None))
            if handle is not None and version == c["version"]:
                c["handle"] = handle  # a task for another version is not this one's to follow
        if not todo:
            run.hosts[h.host] = _nothing_to_do(h)
            continue
        wanted[h.host] = todo
    first = [h for h in interrupted if h in wanted]
    first += [h for h in deferred_last_time(ctx, group, kind="firmware")
              if h in wanted and h not in first]
    order = first + [h for h in wanted if h not in first]
    run.batches = batches(order, policy.rollout.serial) if order else []
    budget = FailureBudget(policy.rollout.max_failures, len(scan.hosts) + len(earlier))
    for h, (st, reason, by) in earlier.items():
        if st == "failed":
            budget.spend(h, reason)
        run.hosts[h] = FirmwareOutcome(h, "already-done", f"{st} earlier in {resume} by {by}"
                                       + (f": {reason}" if reason else ""))
    if earlier:
        ctx.record_all([ctx.entry("skip", "already-done", host=h, group=group, earlier=st,
                                  by=by, step="firmware") for h, (st, _, by) in earlier.items()])
    for h, out in run.hosts.items():
        if out.status == "failed":
            budget.spend(h, out.reason)
    ctx.record("firmware.apply.start", "started", group=group, policy=policy.name,
               method=policy.method, batches=run.batches, budget=budget.describe(),
               deferredFirst=first, resumed=[h for h in interrupted if h in wanted])
    deferred: list[str] = []
    try:
        for n, batch in enumerate(run.batches, 1):
            events = FirmwareEvents(ctx, group, {h: wanted[h] for h in batch}, n)

            def may_start() -> str | None:
                if lease is not None and not lease.healthy:
                    return f"this run no longer holds the group's lease ({lease.problem})"
                why = stop_reason(ps, group, occurrence, override, budget, now())
                return why[1] if why is not None else None

            why = may_start()
            if why is not None:
                left = [h for b in run.batches[n - 1:] for h in b]
                st = stop_status(why) if not why.startswith("this run") else "deferred"
                for h in left:
                    run.hosts[h] = FirmwareOutcome(h, st, why)
                ctx.record_all([ctx.entry("skip", st, host=h, group=group, reason=why,
                                          step="firmware") for h in left])
                if st == "deferred":
                    deferred += left
                break
            ctx.record("firmware.batch", "started", group=group, batch=n, hosts=batch,
                       components={h: [{**c, "image": redact(c["image"])} for c in wanted[h]]
                                   for h in batch})
            _run_playbook(ctx, inv, policy, batch, events,
                          canceller(occurrence, on_end, now, lease))
            outcomes = [events.outcome(h) for h in batch]
            for out in outcomes:
                run.hosts[out.host] = out
                if out.status == "failed":
                    budget.spend(out.host, out.reason)
            done = [o for o in outcomes
                    if o.status not in NOT_STARTED and o.host not in events.recorded]
            waiting = [o for o in outcomes if o.status in NOT_STARTED]
            ctx.record_all([ctx.entry("firmware.apply", o.status, host=o.host, group=group,
                                      batch=n, reason=o.reason) for o in done]
                           + [ctx.entry("skip", o.status, host=o.host, group=group, batch=n,
                                        reason=o.reason, step="firmware") for o in waiting])
            deferred += [o.host for o in waiting if o.status == "deferred"]
    except BaseException:
        run.status = "aborted"  # Ctrl-C, a lost store: the end record says so
        raise
    finally:
        run.budget = budget.describe()
        if run.status != "aborted" and any(h.status == "failed" for h in run.hosts.values()):
            run.status = "failed"
        ctx.record("firmware.apply.end", run.status, group=group, deferred=deferred,
                   budget=run.budget, spentBy=budget.spent_by, hosts=run.summary())
    return run


def _extravars(policy: FirmwarePolicy, wanted: dict[str, list[dict[str, Any]]],
               ca_files: dict[str, str]) -> dict[str, Any]:
    return {"orchestrator_host_firmware": wanted,
            "orchestrator_power_state": policy.require_power_state,
            # each BMC's CA file as the scan resolved and checked it (absolute)
            "orchestrator_bmc_ca_files": ca_files}


def _ca_files(inv: Inventory, hosts: list[str]) -> dict[str, str]:
    from orchestrator.firmware.bmc import bmc_of

    out = {}
    for h in hosts:
        try:
            ca = bmc_of(h, inv.hosts[h].vars).ca_file
        except OrchestratorError:
            continue  # the scan said why; such a host is not handed to the playbook
        if ca:
            out[h] = ca
    return out


def _run_playbook(ctx: RunContext, inv: Inventory, policy: FirmwarePolicy, hosts: list[str],
                  events: FirmwareEvents, cancel: Any) -> None:
    redfish = policy.method == "redfish"
    run_batch_playbook(
        ctx, inv, ctx.playbooks / PLAYBOOKS[policy.method], hosts, events,
        limits=INVENTORY_TIMEOUTS, cancel=cancel, timeout=PLAYBOOK_TIMEOUT,
        extravars=lambda ok: _extravars(policy, {h: events.wanted[h] for h in ok},
                                        _ca_files(inv, ok) if redfish else {}),
        controller=redfish)
