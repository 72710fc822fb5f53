"""`run-window`: what a scheduler triggers at each window start.

Guard first (is an occurrence of the window open now, within its misfire grace?), then a
lease on the occurrence in the state store so that a second trigger (or two at once) does
nothing, then each group of the window that no freeze closes: audit, the patch rollout (with a
patch policy), the firmware rollout (with a firmware policy), and an audit of the hosts they
changed. Every step and every skip is a change-log record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import (
    EXIT_CHANGES,
    EXIT_CLOSED,
    EXIT_OK,
    ConfigError,
    OrchestratorError,
)
from orchestrator.inventory.model import Inventory
from orchestrator.patching.guard import LeaseBusy
from orchestrator.policy.model import PolicySet


@dataclass
class GroupOutcome:
    group: str
    status: str  # done | failed | busy | frozen | cutoff | no-hosts | would-run
    reason: str
    hosts: list[str] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    audit_after: dict[str, Any] | None = None
    firmware: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "status": self.status,
            "reason": self.reason,
            "hosts": self.hosts,
            "audit": self.audit,
            "patch": self.patch,
            "firmware": self.firmware,
            "auditAfter": self.audit_after,
        }


@dataclass
class WindowRun:
    window: str
    run: str
    status: str  # done | failed | error | already-done | closed | misfire | dry-run
    reason: str
    occurrence: str | None = None
    groups: list[GroupOutcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "run": self.run,
            "status": self.status,
            "reason": self.reason,
            "occurrence": self.occurrence,
            "groups": [g.to_json() for g in self.groups],
        }

    def exit_code(self) -> int:
        """SPEC: 0 done or already done, 2 failures, 3 closed."""
        if self.status in ("closed", "misfire"):
            return EXIT_CLOSED
        if self.status == "failed":
            return EXIT_CHANGES
        return EXIT_OK


def utc_now() -> datetime:
    """The real clock. Host work is judged against it and nothing else."""
    return datetime.now(UTC)


def run_window(
    ctx: RunContext,
    ps: PolicySet,
    name: str,
    inventory: Callable[[], Inventory],
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    override: str | None = None,
    audit_timeout: float = 60.0,
    clock: Callable[[], datetime] | None = None,
) -> WindowRun:
    """Run window `name` now, as the real clock says (`clock`, default `utc_now`, lets tests
    move time; no flag or variable reaches it).

    `at` judges another instant and is accepted only with `dry_run`: host work happens only
    while the real clock is inside an open occurrence, or under an override. `override` is the
    operator's reason for acting outside the window (--ignore-window --reason): it is
    recorded before anything else, takes no lease, and every override runs."""
    from orchestrator.windows.check import check_group, get_window, trigger_guard

    if at is not None and not dry_run:
        raise ConfigError(
            f"run-window {name}: --at judges another instant only with --dry-run; host work is "
            "judged by the real clock (a missed trigger is replayed by running it now, within "
            "misfireGrace, or with --ignore-window --reason TEXT)"
        )
    now = (lambda: at) if at is not None else (clock or utc_now)
    trigger = now()
    window = get_window(ps, name)
    decision = trigger_guard(window, trigger)
    occ = decision.occurrence
    # records carry the occurrence the trigger belongs to (also a closed or misfired one)
    known = occ is not None and (decision.run or override is None)
    ctx = replace(ctx, occurrence=occ.id if known else None)
    result = WindowRun(name, ctx.run_id, "done", decision.reason, ctx.occurrence)
    groups = ps.groups_using_window(name)

    if override is not None and not dry_run:
        # first, whatever happens next: who overrode the window, why, and what the guard said
        ctx.record("override", "ignore-window", window=name, reason=override,
                   guard=decision.reason, trigger=trigger.isoformat())
    if not decision.run and override is None:
        result.status = "misfire" if decision.reason.startswith("misfire") else "closed"
        if not dry_run:
            ctx.record("skip", result.status, window=name, reason=decision.reason,
                       trigger=trigger.isoformat())
        return result
    if dry_run:
        result.status = "dry-run"
        inv = inventory()
        for g in groups:
            check = check_group(ps, g, trigger)
            hosts = [h.name for h in inv.members(ps.groups[g])]
            outcome = GroupOutcome(
                g, "would-run" if check.open or override else "frozen", check.reason, hosts
            )
            if ps.groups[g].patch_policy is not None:
                from orchestrator.patching.apply import planned_rollout

                outcome.patch = planned_rollout(ctx, ps, g, hosts)
            if ps.groups[g].firmware_policy is not None:
                from orchestrator.firmware.history import planned_firmware

                outcome.firmware = planned_firmware(ctx, ps, g, hosts)
            result.groups.append(outcome)
        return result

    inv = inventory()  # before the lease: a broken inventory must not use up the occurrence
    leased = occ is not None and override is None
    takeover = None
    if leased:
        from orchestrator.changelog.lease import claim

        got = claim(ctx.store, occ.id, ctx.run_id, occ.end, now=trigger)
        if not got.taken:
            holder = got.held.holder if got.held is not None else None
            result.status = "already-done"
            result.reason = (
                f"{occ.id} is being run by {holder}; nothing done"
                if got.held is not None and got.held.state == "running"
                else f"{occ.id} was already run by {holder}; nothing done")
            ctx.record("skip", "already-done", window=name, holder=holder)
            return result
        if got.held is not None:
            takeover = (got.held, got.gone)
            # the dead run's hosts that finished in this occurrence are skipped below
            ctx.record("lease.takeover", "done", window=name, previous=got.held.holder,
                       reason=got.gone, lastHeartbeat=got.held.heartbeat)
            result.reason = f"took over from {got.held.holder}: {got.gone}"
    ctx.record("run.start", "started", window=name, groups=groups, trigger=trigger.isoformat(),
               kind="run-window", override=override is not None,
               takeover=takeover[0].holder if takeover else None)
    error: str | None = None
    beat = None
    if leased:
        from orchestrator.changelog.lease import Heartbeat

        beat = Heartbeat(ctx.store.url, occ.id, ctx.run_id).start()
    try:
        for g in groups:
            outcome = _run_group(ctx, ps, g, inv, clock=now,
                                 occurrence=occ if decision.run else None, override=override,
                                 audit_timeout=audit_timeout,
                                 resume=occ.id if leased else None)
            result.groups.append(outcome)
    except OrchestratorError as exc:
        error = exc.message
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if beat is not None:
            beat.stop()
        statuses = [g.status for g in result.groups]
        if leased:
            try:
                if error is not None:
                    # the run did not finish: give the occurrence back so that a retry
                    # inside the window can run it (hosts this run finished are skipped)
                    ctx.store.release_lease(occ.id, ctx.run_id)
                else:
                    ctx.store.finish_lease(occ.id, ctx.run_id)
            except OrchestratorError as exc:  # run.end is written all the same
                error = f"{error}; {exc.message}" if error else exc.message
        if error is not None:
            result.status, result.reason = "error", error
        else:
            if "failed" in statuses or "busy" in statuses:
                result.status = "failed"
            elif statuses and all(s in ("frozen", "cutoff") for s in statuses):
                result.status = "closed"
                result.reason = "; ".join(g.reason for g in result.groups)
        ctx.record("run.end", result.status, window=name, error=error,
                   groups={g.group: g.status for g in result.groups})
    return result


def _busy(ctx: RunContext, outcome: GroupOutcome, step: str, exc: OrchestratorError
          ) -> GroupOutcome:
    """Another run holds a rollout lease this group's `step` needs (a person's `patch apply`,
    a group sharing hosts): recorded, the group is `busy` (the window run fails, exit 2, so
    that someone looks), and the window's other groups go on."""
    ctx.record("skip", "busy", group=outcome.group, step=step, reason=exc.message)
    outcome.status = "busy"
    outcome.reason += f"; {step}: busy: {exc.message}"
    return outcome


def _run_group(
    ctx: RunContext,
    ps: PolicySet,
    group: str,
    inv: Inventory,
    *,
    clock: Callable[[], datetime],
    occurrence: Any,
    override: str | None,
    audit_timeout: float,
    resume: str | None = None,
) -> GroupOutcome:
    """One group of the window: audit, then (with a patch policy) the patch rollout, then (with
    a firmware policy) the firmware rollout, then an audit of the hosts they changed. The
    clock is read again before each step and by each rollout before each batch."""
    from orchestrator.audit.plan import host_jobs
    from orchestrator.audit.run import run_audit
    from orchestrator.windows.check import check_group

    at = clock()
    if override is None:
        if occurrence is not None and at >= occurrence.cutoff:
            reason = (
                f"the cutoff of {occurrence.id} passed at "
                f"{occurrence.local_iso(occurrence.cutoff)}; no new work starts"
            )
            ctx.record("skip", "cutoff", group=group, reason=reason)
            return GroupOutcome(group, "cutoff", reason)
        check = check_group(ps, group, at)
        if not check.open:
            ctx.record("skip", "frozen", group=group, reason=check.reason)
            return GroupOutcome(group, "frozen", check.reason)
    jobs = host_jobs(ps, inv, group)
    if not jobs:
        reason = f"group {group} matches no host of {inv.source}"
        ctx.record("skip", "no-hosts", group=group, reason=reason)
        return GroupOutcome(group, "no-hosts", reason)
    audit = run_audit(ctx, jobs, timeout=audit_timeout)
    summary = audit.summary()
    bad = summary["unreachable"] + summary["error"]
    reason = (
        f"audit: {summary['compliant']} compliant, {summary['drift']} drift, "
        f"{summary['unreachable']} unreachable, {summary['error']} error"
    )
    outcome = GroupOutcome(group, "failed" if bad else "done", reason, [j.host for j in jobs],
                           audit.to_json())
    changed: list[str] = []
    if ps.groups[group].patch_policy is not None:
        from orchestrator.patching.apply import apply_group

        try:
            patched = apply_group(ctx, ps, inv, group, override=override,
                                  occurrence=occurrence, clock=clock, resume=resume)
        except LeaseBusy as exc:
            return _busy(ctx, outcome, "patch", exc)
        outcome.patch = patched.to_json()
        counts = patched.summary()
        outcome.reason += "; patch: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                                         or "no hosts")
        if patched.status == "failed":
            outcome.status = "failed"
        changed += [h for h, o in patched.hosts.items() if o.status in ("done", "failed")
                    and o.packages]
    if ps.groups[group].firmware_policy is not None:
        from orchestrator.firmware.apply import apply_group as apply_firmware

        try:
            flashed = apply_firmware(ctx, ps, inv, group, override=override,
                                     occurrence=occurrence, clock=clock, resume=resume)
        except LeaseBusy as exc:  # the hosts patched above are still audited again
            _busy(ctx, outcome, "firmware", exc)
            flashed = None
        if flashed is not None:
            outcome.firmware = flashed.to_json()
            counts = flashed.summary()
            outcome.reason += "; firmware: " + (", ".join(f"{n} {k}" for k, n in
                                                          sorted(counts.items())) or "no hosts")
            if flashed.status == "failed":
                outcome.status = "failed"
            # hosts the playbook worked on (not those whose BMC the scan could not read)
            changed += [h for h, o in flashed.hosts.items() if o.status in ("done", "failed")
                        and getattr(o, "components", None) and h not in changed]
    if changed:
        after = run_audit(ctx, [j for j in jobs if j.host in changed], timeout=audit_timeout)
        outcome.audit_after = after.to_json()
        s2 = after.summary()
        outcome.reason += (f"; audit after: {s2['compliant']} compliant, {s2['drift']} drift, "
                           f"{s2['unreachable']} unreachable, {s2['error']} error")
        if s2["unreachable"] + s2["error"]:
            outcome.status = "failed"
    return outcome
