"""`patch scan`: pending updates per host, approval, due dates, overdue; read-only on hosts.

Per host: one connection, the metadata refresh and the listing in one round trip (the
`updates.pending` / `win.updates.pending` fact), then, at the hub, pure judging: first-seen
dates from the state store, `approval.decide` per update, `threshold.pendingPatchAgeDays` from
the host's baselines. Every scan is new change-log records (`patch.scan.start`, one
`patch.scan` per host as it finishes, `patch.scan.end`); nothing is overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import (
    EXIT_CHANGES,
    EXIT_INCOMPLETE,
    EXIT_OK,
    OrchestratorError,
)
from orchestrator.hostfacts import chosen_members
from orchestrator.inventory.model import Inventory
from orchestrator.patching.approval import decide
from orchestrator.patching.model import CanaryEvidence, Decision, PendingUpdate
from orchestrator.policy.model import PatchPolicy, PolicySet

# a refresh (apt-get update, dnf makecache, Windows Update online search) takes minutes
DEFAULT_TIMEOUT = 600.0
# SPEC patch states a scan can tell: approved and still missing, or held
SCAN_STATE = {"approved": "missing", "not_approved": "not_approved", "rejected": "rejected"}


@dataclass(frozen=True)
class ScanJob:
    """One host to scan: plain, picklable data (site workers get the same)."""

    host: str
    group: str
    platform: str
    vars: dict[str, Any] = field(compare=False)
    refresh: bool = True


@dataclass(frozen=True)
class HostListing:
    """What one host said: its pending updates, or why it could not say."""

    host: str
    status: str  # ok | unreachable | error
    error: str | None = None
    manager: str | None = None
    refreshed: bool = False
    updates: tuple[PendingUpdate, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class PatchFinding:
    update: PendingUpdate
    first_seen: date
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        u, d = self.update, self.decision
        return {
            "name": u.name,
            "current": u.current,
            "available": u.available,
            "classification": u.classification,
            "severity": u.severity,
            "released": u.released.isoformat() if u.released else None,
            "firstSeen": self.first_seen.isoformat(),
            "state": SCAN_STATE[d.state],
            "approvedOn": d.approved_on.isoformat() if d.approved_on else None,
            "dueOn": d.due_on.isoformat() if d.due_on else None,
            "overdue": d.overdue,
            "ageDays": d.age_days,
            "advisory": u.advisory,
            "rebootSuggested": u.reboot_suggested,
            "reason": d.reason,
        }


@dataclass
class HostScan:
    host: str
    group: str
    platform: str
    policy: str
    status: str  # compliant | overdue | unreachable | error
    error: str | None = None
    manager: str | None = None
    patches: list[PatchFinding] = field(default_factory=list)
    thresholds: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "groups": [self.group],
            "platform": self.platform,
            "patchPolicy": self.policy,
            "status": self.status,
            "error": self.error,
            "manager": self.manager,
            "patches": [p.to_json() for p in self.patches],
            "thresholds": self.thresholds,
        }

    def record_details(self) -> dict[str, Any]:
        """What the change log keeps of this host's scan (every pending update, compactly)."""
        return {
            "manager": self.manager,
            "error": self.error,
            "patchPolicy": self.policy,
            "patches": [{k: p.to_json()[k] for k in
                         ("name", "current", "available", "classification", "severity",
                          "released", "firstSeen", "state", "dueOn", "overdue")}
                        for p in self.patches],
            "thresholds": self.thresholds,
        }


@dataclass
class ScanRun:
    run: str
    hosts: list[HostScan] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out = {"hosts": len(self.hosts), "compliant": 0, "overdue": 0, "unreachable": 0,
               "error": 0}
        for h in self.hosts:
            out[h.status] += 1
        states = [p.to_json()["state"] for h in self.hosts for p in h.patches]
        out.update(pending=len(states), missing=states.count("missing"),
                   notApproved=states.count("not_approved"), rejected=states.count("rejected"),
                   overduePatches=sum(p.decision.overdue for h in self.hosts
                                      for p in h.patches))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "hosts": [h.to_json() for h in self.hosts],
                "summary": self.summary()}

    def exit_code(self) -> int:
        """SPEC: 0 compliant, 2 overdue patches (anywhere), 4 incomplete."""
        s = self.summary()
        if s["overdue"]:
            return EXIT_CHANGES
        if s["unreachable"] or s["error"] or not self.hosts:
            return EXIT_INCOMPLETE
        return EXIT_OK


# ---------------------------------------------------------------- which hosts, which policy
def scan_jobs(ps: PolicySet, inv: Inventory, group: str | None = None,
              limit: str | None = None, *, refresh: bool = True) -> list[ScanJob]:
    """One job per host of the chosen groups that have a patch policy. A host in two such
    groups with different patch policies is an error (validate --inventory says so too)."""
    by_host: dict[str, str] = {}
    for g, h in chosen_members(ps, inv, group, limit):
        if g.patch_policy is not None:
            other = by_host.get(h.name)
            if other is not None and ps.groups[other].patch_policy != g.patch_policy:
                raise OrchestratorError(
                    f"{inv.source}: host {h.name} is in groups {other} and {g.name}, whose "
                    f"patch policies differ ({ps.groups[other].patch_policy}, "
                    f"{g.patch_policy}); run `orchestrator validate --inventory`")
            by_host.setdefault(h.name, g.name)
    return [ScanJob(name, by_host[name], inv.hosts[name].platform, dict(inv.hosts[name].vars),
                    refresh) for name in sorted(by_host)]


# ---------------------------------------------------------------- on the host
def list_host(job: ScanJob, settings: Any, timeout: float) -> HostListing:
    """Connect, refresh and list in one round trip, close. Never raises for host trouble."""
    from orchestrator.facts import FactRequest
    from orchestrator.hostfacts import gather_host

    started = time.monotonic()

    def done(status: str, error: str | None = None, **kw: Any) -> HostListing:
        return HostListing(job.host, status, error, seconds=round(time.monotonic() - started, 3),
                           **kw)

    fact = "win.updates.pending" if job.platform == "windows" else "updates.pending"
    request = FactRequest(fact, () if job.refresh else ("norefresh",))
    got = gather_host(job.host, job.vars, settings, [request], timeout)
    if got.status != "ok":
        return done(got.status, got.error)
    result = got.facts[request]
    if not result.ok:
        return done("error", f"{job.host}: {fact}: {result.error}")
    listing = result.value
    return done("ok", manager=listing.manager, refreshed=listing.refreshed,
                updates=tuple(listing.updates))


# ---------------------------------------------------------------- at the hub
def judge_host(ctx: RunContext, ps: PolicySet, job: ScanJob, listing: HostListing, today: date,
               canary: Callable[[PatchPolicy, PendingUpdate], CanaryEvidence | None]
               ) -> HostScan:
    policy = ps.patch_policies[ps.groups[job.group].patch_policy]  # type: ignore[index]
    scan = HostScan(job.host, job.group, job.platform, policy.name, "compliant",
                    listing.error, listing.manager)
    if listing.status != "ok":
        scan.status = listing.status
        return scan
    seen = ctx.store.first_seen(job.group, job.host,
                                [(u.name, u.available) for u in listing.updates], today)
    for u in listing.updates:
        first = seen[(u.name, u.available)]
        evidence = canary(policy, u) if policy.promotion is not None else None
        scan.patches.append(PatchFinding(u, first, decide(policy, u, first_seen=first,
                                                          today=today, promotion=evidence)))
    scan.thresholds = age_thresholds(ps, job, scan.patches)
    overdue = any(p.decision.overdue for p in scan.patches)
    if overdue or any(t["status"] == "drift" for t in scan.thresholds):
        scan.status = "overdue"
    return scan


def age_thresholds(ps: PolicySet, job: ScanJob, patches: list[PatchFinding]
                    ) -> list[dict[str, Any]]:
    """threshold.pendingPatchAgeDays of the group's baselines (for this platform): no pending
    update that is not rejected may be older than max days (age from release, else first
    seen)."""
    limits = [b.thresholds.pending_patch_age_days
              for name in ps.groups[job.group].baselines
              if (b := ps.baselines.get(name)) is not None and b.platform == job.platform
              and b.thresholds.pending_patch_age_days is not None]
    if not limits:
        return []
    limit = min(limits)  # type: ignore[type-var]
    aged = [p for p in patches if p.decision.state != "rejected"]
    oldest = max(aged, key=lambda p: p.decision.age_days, default=None)
    actual = (f"{oldest.decision.age_days} days ({oldest.update.name} {oldest.update.available})"
              if oldest else "no pending update")
    drift = oldest is not None and oldest.decision.age_days > limit
    return [{"id": "threshold.pendingPatchAgeDays", "status": "drift" if drift else "pass",
             "expected": f"<= {limit} days", "actual": actual}]


def canary_evidence(ctx: RunContext
                    ) -> Callable[[PatchPolicy, PendingUpdate], CanaryEvidence | None]:
    """Evidence for the promotion gate, proven from the change log's `patch.install` records of
    the afterGroup: when that package version was first installed there, and the share of the
    group's hosts whose install of it failed. Read once per scan."""
    installs: dict[tuple[str, str, str], tuple[date | None, set[str], set[str]]] = {}
    loaded = False

    def lookup(policy: PatchPolicy, update: PendingUpdate) -> CanaryEvidence | None:
        nonlocal loaded
        if not loaded:
            from orchestrator.changelog.store import LogFilter

            for rec in ctx.store.records(LogFilter(action="patch.install")):
                d = rec.details
                key = (rec.group or "", str(d.get("package")), str(d.get("version")))
                first, ok, failed = installs.get(key, (None, set(), set()))
                if rec.status in ("installed", "installed_pending_reboot"):
                    day = date.fromisoformat(rec.time[:10])
                    first = day if first is None or day < first else first
                    ok.add(rec.host or "")
                elif rec.status == "failed":
                    failed.add(rec.host or "")
                installs[key] = (first, ok, failed)
            loaded = True
        assert policy.promotion is not None
        first, ok, failed = installs.get(
            (policy.promotion.after_group, update.name, update.available), (None, set(), set()))
        if first is None and not failed:
            return None
        tried = len(ok | failed)
        return CanaryEvidence(first, 100.0 * len(failed - ok) / tried if tried else 0.0)

    return lookup


def run_scan(ctx: RunContext, ps: PolicySet, jobs: list[ScanJob], *,
             timeout: float = DEFAULT_TIMEOUT, today: date | None = None,
             progress: Callable[[HostScan, int, int], None] | None = None) -> ScanRun:
    today = today or date.today()
    run = ScanRun(ctx.run_id)
    canary = canary_evidence(ctx)
    ctx.record("patch.scan.start", "started", hosts=len(jobs),
               refresh=all(j.refresh for j in jobs))
    results: dict[str, HostScan] = {}
    try:
        work = partial(list_host, settings=ctx.settings, timeout=timeout)
        n = 0
        for finished in ctx.host_pool().run(work, jobs):
            batch: list[HostScan] = []
            for f in finished:
                listing = f.result if f.error is None else HostListing(
                    f.job.host, "error", f"internal error: {type(f.error).__name__}: {f.error}")
                scan = judge_host(ctx, ps, f.job, listing, today, canary)
                results[f.job.host] = scan
                batch.append(scan)
            ctx.record_all([ctx.entry("patch.scan", s.status, host=s.host, group=s.group,
                                      **s.record_details()) for s in batch])
            for s in batch:
                n += 1
                if progress:
                    progress(s, n, len(jobs))
        run.hosts.extend(results[j.host] for j in jobs)
    finally:
        ctx.record("patch.scan.end", "finished" if len(run.hosts) == len(jobs) else "aborted",
                   **run.summary())
    return run
