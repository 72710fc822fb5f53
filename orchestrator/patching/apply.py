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

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import EXIT_CHANGES, EXIT_CLOSED, EXIT_OK, OrchestratorError
from orchestrator.inventory.model import Inventory
from orchestrator.patching.dependencies import held_back, install_entries, rejected_vars
from orchestrator.patching.rollout import FailureBudget, batches
from orchestrator.patching.scan import DEFAULT_TIMEOUT, ScanRun, run_scan, scan_jobs
from orchestrator.policy.model import PatchPolicy, PolicySet

PLAYBOOKS = {"apt": "patch-apt.yml", "dnf": "patch-dnf.yml", "zypper": "patch-zypper.yml",
             "windows": "patch-windows.yml"}
RESULT_TASK = "orchestrator: result"
REBOOT_TASK = "orchestrator: reboot"
HOST_FAILED_TASK = "orchestrator: host failed"  # the last task, when anything failed
PLAYBOOK_TIMEOUT = 4 * 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HostOutcome:
    host: str
    status: str  # done | failed | up-to-date | deferred | budget-exhausted | would-install
    reason: str = ""
    packages: list[dict[str, Any]] = field(default_factory=list)
    rebooted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "reason": self.reason,
                "packages": self.packages, "rebooted": self.rebooted}


@dataclass
class ApplyRun:
    run: str
    group: str
    status: str = "done"  # done | failed | closed | check
    reason: str = ""
    batches: list[list[str]] = field(default_factory=list)
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    budget: str = ""

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hosts.values():
            out[h.status] = out.get(h.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "group": self.group, "status": self.status,
                "reason": self.reason, "batches": self.batches, "budget": self.budget,
                "hosts": [h.to_json() for h in self.hosts.values()],
                "summary": self.summary()}

    def exit_code(self) -> int:
        """SPEC: 0 done, 2 some hosts failed, 3 closed."""
        if self.status == "closed":
            return EXIT_CLOSED
        if any(h.status == "failed" for h in self.hosts.values()):
            return EXIT_CHANGES
        return EXIT_OK


class ApplyEvents:
    """ansible-runner event_handler for the patch playbooks: records each host's packages,
    reboot and health as the events arrive (never a parse of stdout)."""

    def __init__(self, ctx: RunContext, group: str, wanted: dict[str, list[dict[str, str]]],
                 check: bool, batch: int = 0) -> None:
        self.ctx, self.group, self.wanted, self.check = ctx, group, wanted, check
        self.batch = batch
        self.recorded: dict[str, HostOutcome] = {}  # outcomes written (patch.apply): final
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.unreachable: dict[str, str] = {}
        self.seen: set[str] = set()  # hosts any work started on (an event arrived)
        self.waiting: dict[str, tuple[str, str]] = {}  # never started: host -> (status, why)

    def not_started(self, host: str, reason: str, status: str | None = None) -> None:
        """`host` was not touched: no new host work could start (cutoff, freeze, budget,
        canceled before it began). Its outcome is `status` (by default from the reason:
        budget-exhausted or deferred), not a failure."""
        self.waiting[host] = (status or _stop_status(reason), reason)

    def __call__(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host, kind = data.get("host"), event.get("event")
        task = str(data.get("task") or "")
        res = data.get("res") or {}
        if not host or host not in self.wanted:
            return False
        self.seen.add(host)
        if kind == "runner_on_unreachable":
            self.unreachable[host] = _line(res.get("msg") or "unreachable")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.setdefault(host, f"{task}: {_line(res.get('msg') or 'failed')}")
            if task == REBOOT_TASK and not self.check:
                self.ctx.record("reboot", "failed", host=host, group=self.group,
                                reason=_line(res.get("msg") or "failed"))
        elif kind == "runner_on_ok" and task == RESULT_TASK:
            result = res.get("orchestrator_result")
            if isinstance(result, dict):
                self.results[host] = result
                if not self.check:
                    self._record(host, result)
        elif kind == "runner_on_ok" and task == REBOOT_TASK and not self.check \
                and res.get("rebooted"):
            self.ctx.record("reboot", "done", host=host, group=self.group,
                            elapsed=res.get("elapsed"))
        return False  # ansible-runner: do not keep the event on disk

    def _record(self, host: str, result: dict[str, Any]) -> None:
        entries = install_entries(self.ctx, host, self.group,
                                  [p for p in result.get("packages") or [] if isinstance(p, dict)])
        health = result.get("health")
        if isinstance(health, dict):
            entries.append(self.ctx.entry("health", "ok" if _healthy(health) else "failed",
                                          host=host, group=self.group, **health))
        # the host's outcome in the same transaction as its installs: a run that dies later
        # leaves it finished (resumed runs skip it), never half-recorded
        if host in self.recorded:
            return  # one outcome per host (a repeated result event changes nothing)
        out = self.outcome(host)
        entries.append(self.ctx.entry("patch.apply", out.status, host=host, group=self.group,
                                      batch=self.batch, reason=out.reason,
                                      rebooted=out.rebooted))
        self.ctx.record_all(entries)
        self.recorded[host] = out

    def outcome(self, host: str) -> HostOutcome:
        if host in self.recorded:  # what the change log says stays what we say
            return self.recorded[host]
        result = self.results.get(host)
        if host in self.waiting and host not in self.seen and result is None:
            status, why = self.waiting[host]
            return HostOutcome(host, status, why)
        if host in self.unreachable:
            return HostOutcome(host, "failed", f"unreachable: {self.unreachable[host]}")
        if result is None:
            why = self.failures.get(host, "the playbook gave no result for this host")
            return HostOutcome(host, "failed", why)
        packages = [p for p in result.get("packages") or [] if isinstance(p, dict)]
        failed = [p["name"] for p in packages if p.get("status") == "failed"]
        health = result.get("health") if isinstance(result.get("health"), dict) else {}
        rebooted = bool(result.get("rebooted"))
        if self.check:
            return HostOutcome(host, "would-install", held_back(packages), packages, False)
        stage = self.failures.get(host, "")
        if stage and not stage.startswith(f"{HOST_FAILED_TASK}:"):
            reason = stage  # a stage stopped the host (pre-check, lock, refresh, reboot): why
        elif failed:
            reason = f"install failed: {', '.join(str(n) for n in failed)}"
        elif not _healthy(health or {}):
            reason = f"health check failed: {health}"
        elif host in self.failures:
            reason = self.failures[host]
        else:
            return HostOutcome(host, "done", held_back(packages), packages, rebooted)
        return HostOutcome(host, "failed", reason, packages, rebooted)


def _healthy(health: dict[str, Any]) -> bool:
    services = health.get("services") or {}
    return all(v == "ok" for v in services.values()) and health.get("command_rc") in (None, 0)


def _line(value: Any) -> str:
    text = str(value).strip()
    return (text.splitlines() or [""])[0][:300]


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
    for var, most in INVENTORY_TIMEOUTS.items():
        value = host_vars.get(var)
        if value is None:
            continue
        text = str(value).strip()
        if isinstance(value, bool) or not isinstance(value, int | str) \
                or not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= most:
            return (f"inventory variable {var} {_line(value)[:40]!r} is not a number of "
                    f"seconds 1..{most}; fix it in the host's or group's variables")
    return None


def _deferred_last_time(ctx: RunContext, group: str) -> list[str]:
    """Hosts the group's last rollout deferred (they go first this time)."""
    from orchestrator.changelog.store import LogFilter

    last: list[str] = []
    for rec in ctx.store.records(LogFilter(action="patch.apply.end")):
        if rec.group == group:
            last = [str(h) for h in rec.details.get("deferred") or []]
    return last


def _finished_in(ctx: RunContext, group: str, occurrence: str) -> dict[str, tuple[str, str, str]]:
    """Hosts of `group` with an outcome (`patch.apply`) recorded by another run in
    `occurrence`: host -> (status, reason, run)."""
    from orchestrator.changelog.store import LogFilter

    out: dict[str, tuple[str, str, str]] = {}
    for rec in ctx.store.records(LogFilter(action="patch.apply", occurrence=occurrence)):
        if rec.group == group and rec.host and rec.run != ctx.run_id:
            out[rec.host] = (rec.status, str(rec.details.get("reason") or ""), rec.run)
    return out


def _interrupted_in(ctx: RunContext, group: str, finished: dict[str, tuple[str, str, str]], *,
                    occurrence: str | None = None, run: str | None = None
                    ) -> dict[str, list[dict[str, str]]]:
    """Hosts of `group` that another run (in `occurrence`, or the run `run`) handed to a
    playbook (`patch.batch`) and never gave an outcome or a skip: it died while working on
    them. host -> the pinned packages it was installing."""
    from orchestrator.changelog.store import LogFilter

    started: dict[tuple[str, str], list[dict[str, str]]] = {}
    ended: set[tuple[str, str]] = set()
    for rec in ctx.store.records(LogFilter(occurrence=occurrence, run=run)):
        if rec.group != group or rec.run == ctx.run_id:
            continue
        if rec.action == "patch.batch":
            packages = rec.details.get("packages")
            for h, todo in (packages.items() if isinstance(packages, dict) else []):
                if isinstance(todo, list):
                    started[(rec.run, str(h))] = [
                        {"name": str(p.get("name")), "version": str(p.get("version"))}
                        for p in todo if isinstance(p, dict)]
        elif rec.action in ("patch.apply", "skip") and rec.host:
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
    first = [h for h in _deferred_last_time(ctx, group) if h in todo]
    order = first + [h for h in todo if h not in first]
    return {"policy": policy.name,
            "approved": {h: last[h][1] for h in todo},
            "scannedAt": {h: last[h][0] for h in hosts if h in last},
            "notScanned": [h for h in hosts if h not in last],
            "batches": batches(order, policy.rollout.serial) if order else [],
            "maxFailures": policy.rollout.max_failures}


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
    from orchestrator.windows.check import check_group

    now = clock or utc_now
    run = ApplyRun(ctx.run_id, group)
    g = ps.groups.get(group)
    if g is None or g.patch_policy is None:
        raise OrchestratorError(f"{ps.root}: group {group!r} has no patch policy; name a group "
                                "whose AssetGroup sets patchPolicy")
    policy = ps.patch_policies[g.patch_policy]
    if override is not None and not check:
        ctx.record("override", "ignore-window", group=group, reason=override,
                   command="patch apply")
    if occurrence is None and override is None and not check:
        state = check_group(ps, group, now())
        if not state.open:
            run.status, run.reason = "closed", state.reason
            ctx.record("skip", "closed", group=group, reason=state.reason)
            return run
        occurrence = state.occurrence
    if check:
        return _rollout(ctx, ps, inv, run, policy, check=True, occurrence=occurrence,
                        override=override, now=now, scan_timeout=scan_timeout, today=today,
                        resume=resume, lease=None)
    from orchestrator.changelog.lease import Heartbeat, claim

    key = f"patch-apply:{group}"
    got = claim(ctx.store, key, ctx.run_id, utc_now() + timedelta(seconds=2 * PLAYBOOK_TIMEOUT))
    if not got.taken:
        held = got.held
        raise OrchestratorError(
            f"group {group} is being patched by run {held.holder if held else '?'}"
            + (f" (process {held.owner.pid} on {held.owner.node})"
               if held is not None and held.owner is not None else "")
            + "; wait for it to finish (no host is patched by two runs at once)")
    if got.held is not None:
        ctx.record("lease.takeover", "done", group=group, lease=key,
                   previous=got.held.holder, reason=got.gone,
                   lastHeartbeat=got.held.heartbeat)
    beat = Heartbeat(ctx.store.url, key, ctx.run_id).start()
    try:
        return _rollout(ctx, ps, inv, run, policy, check=False, occurrence=occurrence,
                        override=override, now=now, scan_timeout=scan_timeout, today=today,
                        resume=resume, lease=beat,
                        dead_run=got.held.holder if got.held is not None else None)
    finally:
        beat.stop()
        if not beat.lost:
            try:
                ctx.store.release_lease(key, ctx.run_id)
            except OrchestratorError:
                pass  # left running: the next run judges this process gone and takes it over


def _rollout(ctx: RunContext, ps: PolicySet, inv: Inventory, run: ApplyRun,
             policy: PatchPolicy, *, check: bool, occurrence: Any, override: str | None,
             now: Callable[[], datetime], scan_timeout: float, today: date | None,
             resume: str | None, lease: Any, dead_run: str | None = None) -> ApplyRun:
    """The scan, the batches and the failure budget of one group's rollout."""
    group = run.group
    on_end = ps.windows[occurrence.window].on_end if occurrence is not None else "finish"
    earlier = _finished_in(ctx, group, resume) if resume else {}
    interrupted = _interrupted_in(ctx, group, earlier, occurrence=resume) if resume else {}
    if dead_run is not None:  # the run whose group lease this one took over
        interrupted = {**_interrupted_in(ctx, group, earlier, run=dead_run), **interrupted}
    scan: ScanRun = run_scan(ctx, ps, [j for j in scan_jobs(ps, inv, group)
                                       if j.host not in earlier],
                             timeout=scan_timeout, today=today)
    wanted: dict[str, list[dict[str, str]]] = {}
    managers: dict[str, str] = {}
    for h in scan.hosts:
        if h.status in ("unreachable", "error"):
            run.hosts[h.host] = HostOutcome(h.host, "failed", f"scan: {h.error}")
            continue
        todo = [{"name": p.update.name, "version": p.update.available}
                for p in h.patches if p.decision.state == "approved"]
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
    first += [h for h in _deferred_last_time(ctx, group) if h in wanted and h not in first]
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
            stop = None if check else _stop_reason(ps, group, occurrence, override, budget,
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
            events = ApplyEvents(ctx, group, {h: wanted[h] for h in batch}, check, n)
            cancel = _canceller(occurrence, on_end, now, lease) if not check else None

            def may_start() -> str | None:
                """Why no new host work may start now (checked again before every playbook
                run and every Windows host: a batch is not one instant), or None."""
                if check:
                    return None
                if lease is not None and not lease.healthy:
                    return f"this run no longer holds the group's lease ({lease.problem})"
                why = _stop_reason(ps, group, occurrence, override, budget, now())
                return why[1] if why is not None else None

            for manager, hosts in _by_manager(batch, managers).items():
                why = may_start()
                if why is not None:
                    for h in hosts:
                        events.not_started(h, why, _stop_status(why))
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
                        if o.status not in _NOT_STARTED and o.host not in events.recorded]
                waiting = [o for o in outcomes if o.status in _NOT_STARTED]
                ctx.record_all([ctx.entry("patch.apply", o.status, host=o.host, group=group,
                                          batch=n, reason=o.reason, rebooted=o.rebooted)
                                for o in done]
                               + [ctx.entry("skip", o.status, host=o.host, group=group,
                                            batch=n, reason=o.reason) for o in waiting])
                deferred += [o.host for o in waiting if o.status == "deferred"]
    finally:
        run.budget = budget.describe()
        if check:
            run.status = "check"
        elif any(h.status == "failed" for h in run.hosts.values()):
            run.status = "failed"
        if not check:
            ctx.record("patch.apply.end", run.status, group=group, deferred=deferred,
                       budget=run.budget, spentBy=budget.spent_by, hosts=run.summary())
    return run


def _stop_reason(ps: PolicySet, group: str, occurrence: Any, override: str | None,
                 budget: FailureBudget, at: datetime) -> tuple[str, str] | None:
    """Why no new host work may start now: the budget, the cutoff, a freeze (overrides only
    ignore the window, never the budget)."""
    from orchestrator.windows.check import check_group

    if budget.exhausted:
        return "budget-exhausted", f"failure budget exhausted: {budget.describe()}"
    if override is not None:
        return None
    if occurrence is not None and at >= occurrence.cutoff:
        return "deferred", (f"the cutoff of {occurrence.id} passed at "
                            f"{occurrence.local_iso(occurrence.cutoff)}; no new work starts")
    state = check_group(ps, group, at)
    if not state.open:
        return "deferred", state.reason
    return None


_NOT_STARTED = ("deferred", "budget-exhausted")


def _stop_status(reason: str) -> str:
    return "budget-exhausted" if reason.startswith("failure budget exhausted") else "deferred"


class _Cancel:
    """What ends work in flight (polled by ansible-runner and the Windows waits): the window's
    end with `onEnd: cancel`, and always the loss of the group's lease (another run took it
    over: two runs must not work on one host). `reason` says which."""

    def __init__(self, occurrence: Any, at_end: bool, now: Callable[[], datetime],
                 lease: Any) -> None:
        self.occurrence, self.at_end, self.now, self.lease = occurrence, at_end, now, lease

    def __call__(self) -> bool:
        return (self.lease is not None and self.lease.lost) or (
            self.at_end and self.now() >= self.occurrence.end)

    @property
    def reason(self) -> str:
        if self.lease is not None and self.lease.lost:
            return "canceled: another run took over the group's lease"
        return "canceled at the end of the window (onEnd: cancel)"


def _canceller(occurrence: Any, on_end: str, now: Callable[[], datetime], lease: Any = None
               ) -> _Cancel | None:
    at_end = occurrence is not None and on_end == "cancel"
    if not at_end and lease is None:
        return None
    return _Cancel(occurrence, at_end, now, lease)


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
    from orchestrator.execution.playbook import known_hosts_files, run_playbook

    name = PLAYBOOKS.get(manager)
    if name is None or ctx.inventory_path is None:
        for h in hosts:
            events.failures[h] = f"no patch playbook for package manager {manager!r}"
        return
    bad = {h: why for h in hosts if (why := inventory_timeout_problem(inv.hosts[h].vars))}
    for h, why in bad.items():
        events.failures[h] = f"{why}; nothing was done"
    hosts = [h for h in hosts if h not in bad]
    if not hosts:
        return
    host_vars = {h: inv.hosts[h].vars for h in hosts}
    known = known_hosts_files(ctx.settings, host_vars)
    strict = getattr(ctx.settings, "host_keys", "strict") == "strict"
    try:
        outcome = run_playbook(
            ctx.playbooks / name, ctx.inventory_path, host_vars,
            event_handler=events, known_hosts=known, forks=ctx.forks, strict=strict,
            check=check, timeout=PLAYBOOK_TIMEOUT,
            extravars=_extravars(policy, {h: events.wanted[h] for h in hosts}),
            cancel=cancel)
    except OrchestratorError as exc:
        for h in hosts:
            events.failures[h] = exc.message
        return
    for h, why in outcome.refused.items():
        events.failures[h] = why
    if outcome.canceled:
        for h in hosts:
            if h in events.seen:
                events.failures.setdefault(h, getattr(cancel, "reason", "canceled"))
            else:  # canceled before anything reached it: deferred, goes first next time
                events.not_started(h, f"{getattr(cancel, 'reason', 'canceled')} before "
                                      "its work started")
    if outcome.timed_out:
        for h in hosts:
            events.failures.setdefault(h, f"the playbook did not finish in {PLAYBOOK_TIMEOUT} s")
