"""`patch apply`: install what the patch policy approves, in batches, inside the window.

For one asset group: the window guard (real clock; an override is recorded first), a scan
(what is approved and still missing per host), then the rollout: batches from `serial`, the
window checked again before each batch (no new host work after the cutoff; `onEnd: cancel`
ends work in flight at the window's end), the failure budget over the whole rollout, and per
batch the shipped playbook of each package manager through ansible-runner, each host's
packages pinned to the approved versions. Records are written as ansible-runner's events
arrive: per package `patch.install`, `reboot`, `health`, then per host `patch.apply`; hosts
not reached are `skip deferred` (they go first next time) or `skip budget-exhausted`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import EXIT_CHANGES, EXIT_CLOSED, EXIT_OK, OrchestratorError
from orchestrator.inventory.model import Inventory
from orchestrator.patching.rollout import FailureBudget, batches
from orchestrator.patching.scan import DEFAULT_TIMEOUT, ScanRun, run_scan, scan_jobs
from orchestrator.policy.model import PatchPolicy, PolicySet

PLAYBOOKS = {"apt": "patch-apt.yml", "dnf": "patch-dnf.yml", "zypper": "patch-zypper.yml",
             "windows": "patch-windows.yml"}
RESULT_TASK = "orchestrator: result"
REBOOT_TASK = "orchestrator: reboot"
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
                 check: bool) -> None:
        self.ctx, self.group, self.wanted, self.check = ctx, group, wanted, check
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.unreachable: dict[str, str] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host, kind = data.get("host"), event.get("event")
        task = str(data.get("task") or "")
        res = data.get("res") or {}
        if not host or host not in self.wanted:
            return False
        if kind == "runner_on_unreachable":
            self.unreachable[host] = _line(res.get("msg") or "unreachable")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.setdefault(host, f"{task}: {_line(res.get('msg') or 'failed')}")
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
        entries = [self.ctx.entry("patch.install", str(p.get("status")), host=host,
                                  group=self.group, package=p.get("name"),
                                  version=p.get("wanted"), before=p.get("before"),
                                  after=p.get("after"))
                   for p in result.get("packages") or [] if isinstance(p, dict)]
        health = result.get("health")
        if isinstance(health, dict):
            entries.append(self.ctx.entry("health", "ok" if _healthy(health) else "failed",
                                          host=host, group=self.group, **health))
        self.ctx.record_all(entries)

    def outcome(self, host: str) -> HostOutcome:
        result = self.results.get(host)
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
            return HostOutcome(host, "would-install", "", packages, False)
        if failed:
            reason = f"install failed: {', '.join(str(n) for n in failed)}"
        elif not _healthy(health or {}):
            reason = f"health check failed: {health}"
        elif host in self.failures:
            reason = self.failures[host]
        else:
            return HostOutcome(host, "done", "", packages, rebooted)
        return HostOutcome(host, "failed", reason, packages, rebooted)


def _healthy(health: dict[str, Any]) -> bool:
    services = health.get("services") or {}
    return all(v == "ok" for v in services.values()) and health.get("command_rc") in (None, 0)


def _line(value: Any) -> str:
    text = str(value).strip()
    return (text.splitlines() or [""])[0][:300]


def _extravars(policy: PatchPolicy, packages: list[dict[str, str]]) -> dict[str, Any]:
    hc = policy.health_checks
    return {
        "orchestrator_packages": packages,
        "orchestrator_reboot": policy.reboot,
        "orchestrator_reboot_timeout": 600,
        "orchestrator_disk_free_min": policy.disk_free_percent_min,
        "orchestrator_health_services": list(hc.services),
        "orchestrator_health_command": hc.command or "",
        "orchestrator_health_timeout": int(hc.timeout.total_seconds()),
    }


def _deferred_last_time(ctx: RunContext, group: str) -> list[str]:
    """Hosts the group's last rollout deferred (they go first this time)."""
    from orchestrator.changelog.store import LogFilter

    last: list[str] = []
    for rec in ctx.store.records(LogFilter(action="patch.apply.end")):
        if rec.group == group:
            last = [str(h) for h in rec.details.get("deferred") or []]
    return last


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
                scan_timeout: float = DEFAULT_TIMEOUT, today: date | None = None) -> ApplyRun:
    """Patch `group` now. `occurrence`: the window occurrence a run-window is working in
    (else the group's open occurrence is found here). `clock` is for tests; the real clock
    decides otherwise."""
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
    on_end = ps.windows[occurrence.window].on_end if occurrence is not None else "finish"

    scan: ScanRun = run_scan(ctx, ps, scan_jobs(ps, inv, group), timeout=scan_timeout,
                             today=today)
    wanted: dict[str, list[dict[str, str]]] = {}
    managers: dict[str, str] = {}
    for h in scan.hosts:
        if h.status in ("unreachable", "error"):
            run.hosts[h.host] = HostOutcome(h.host, "failed", f"scan: {h.error}")
            continue
        todo = [{"name": p.update.name, "version": p.update.available}
                for p in h.patches if p.decision.state == "approved"]
        if not todo:
            run.hosts[h.host] = HostOutcome(h.host, "up-to-date", "nothing approved is missing")
            continue
        wanted[h.host] = todo
        managers[h.host] = h.manager or ""
    first = [h for h in _deferred_last_time(ctx, group) if h in wanted]
    order = first + [h for h in wanted if h not in first]
    run.batches = batches(order, policy.rollout.serial) if order else []
    budget = FailureBudget(policy.rollout.max_failures, len(scan.hosts))
    for h, out in run.hosts.items():
        if out.status == "failed":
            budget.spend(h, out.reason)
    if not check:
        ctx.record("patch.apply.start", "started", group=group, policy=policy.name,
                   batches=run.batches, budget=budget.describe(), deferredFirst=first)
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
                    deferred = left
                break
            events = ApplyEvents(ctx, group, {h: wanted[h] for h in batch}, check)
            cancel = _canceller(occurrence, on_end, now) if not check else None
            for (manager, packages), hosts in _by_playbook(batch, managers, wanted).items():
                _run_one(ctx, inv, manager, hosts, policy, list(packages), events, check,
                         cancel)
            outcomes = [events.outcome(h) for h in batch]
            for out in outcomes:
                run.hosts[out.host] = out
                if out.status == "failed":
                    budget.spend(out.host, out.reason)
            if not check:
                ctx.record_all([ctx.entry("patch.apply", o.status, host=o.host, group=group,
                                          batch=n, reason=o.reason, rebooted=o.rebooted)
                                for o in outcomes])
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


def _canceller(occurrence: Any, on_end: str, now: Callable[[], datetime]
               ) -> Callable[[], bool] | None:
    if occurrence is None or on_end != "cancel":
        return None
    return lambda: now() >= occurrence.end


def _by_playbook(batch: list[str], managers: dict[str, str],
                 wanted: dict[str, list[dict[str, str]]]
                 ) -> dict[tuple[str, tuple], list[str]]:
    """Hosts of a batch that run the same playbook with the same pinned packages."""
    out: dict[tuple[str, tuple], list[str]] = {}
    for h in batch:
        key = (managers[h], tuple((p["name"], p["version"]) for p in wanted[h]))
        out.setdefault(key, []).append(h)
    return out


def _run_one(ctx: RunContext, inv: Inventory, manager: str, hosts: list[str],
             policy: PatchPolicy, packages: list[tuple[str, str]], events: ApplyEvents,
             check: bool, cancel: Callable[[], bool] | None) -> None:
    from orchestrator.execution.playbook import known_hosts_files, run_playbook

    name = PLAYBOOKS.get(manager)
    if name is None or ctx.inventory_path is None:
        for h in hosts:
            events.failures[h] = f"no patch playbook for package manager {manager!r}"
        return
    host_vars = {h: inv.hosts[h].vars for h in hosts}
    known = known_hosts_files(ctx.settings, host_vars)
    strict = getattr(ctx.settings, "host_keys", "strict") == "strict"
    try:
        outcome = run_playbook(
            ctx.playbooks / name, ctx.inventory_path, host_vars,
            event_handler=events, known_hosts=known, forks=ctx.forks, strict=strict,
            check=check, timeout=PLAYBOOK_TIMEOUT,
            extravars=_extravars(policy, [{"name": n, "version": v} for n, v in packages]),
            cancel=cancel)
    except OrchestratorError as exc:
        for h in hosts:
            events.failures[h] = exc.message
        return
    for h, why in outcome.refused.items():
        events.failures[h] = why
    if outcome.canceled:
        for h in hosts:
            events.failures.setdefault(h, "canceled at the end of the window (onEnd: cancel)")
    if outcome.timed_out:
        for h in hosts:
            events.failures.setdefault(h, f"the playbook did not finish in {PLAYBOOK_TIMEOUT} s")
