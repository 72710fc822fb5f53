"""What a policy change would do to hosts, judged from results the store already has.

No host is contacted. For each host with a recent audit (its record keeps every check's
actual value, audit/run.py), the checks of its baselines under each revision are judged
again from those actuals (audit/rejudge.py), waivers of that revision applied; a host
*newly drifts* when it drifts under the head and not under the base. For each host with a
recent patch scan, its pending updates are decided again under each revision's patch
policy, as of today; it *newly falls out of compliance* when an update is overdue under the
head and none is under the base. A host whose checks the stored actuals cannot settle (a
check never run, an error, a baseline's Ansible playbook) is counted as undetermined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from orchestrator.audit.checks import baseline_checks
from orchestrator.audit.host import HostJob
from orchestrator.audit.plan import host_jobs
from orchestrator.audit.rejudge import rejudge
from orchestrator.audit.result import CheckResult
from orchestrator.audit.waivers import apply_waivers
from orchestrator.changelog.record import Record
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.errors import OrchestratorError
from orchestrator.facts.updates import PendingUpdate
from orchestrator.inventory.model import Inventory
from orchestrator.patching.approval import decide
from orchestrator.patching.model import CanaryEvidence
from orchestrator.patching.scan import scan_jobs
from orchestrator.policy.model import PatchPolicy, PolicySet

RECENT_DAYS = 30
Evidence = Callable[[PatchPolicy, PendingUpdate], CanaryEvidence | None]
_NEEDS_FILE = ("file.owner:", "file.group:", "file.mode:", "file.contains:", "file.sha256:")


@dataclass
class Impact:
    since: str  # results newer than this were used
    audited: int = 0  # hosts with a recent audit, governed by a baseline under either
    drift_before: int = 0
    drift_after: int = 0
    newly_drifting: list[str] = field(default_factory=list)
    undetermined: list[str] = field(default_factory=list)  # audit: cannot tell under head
    scanned: int = 0  # hosts with a recent patch scan
    overdue_before: int = 0
    overdue_after: int = 0
    newly_overdue: list[str] = field(default_factory=list)
    note: str | None = None  # why part of it could not be judged

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since,
                "audit": {"hosts": self.audited, "driftBefore": self.drift_before,
                          "driftAfter": self.drift_after,
                          "newlyDrifting": self.newly_drifting,
                          "undetermined": self.undetermined},
                "patches": {"hosts": self.scanned, "overdueBefore": self.overdue_before,
                            "overdueAfter": self.overdue_after,
                            "newlyOverdue": self.newly_overdue},
                "note": self.note}


def latest(store: ChangeLogStore, action: str, since: str) -> dict[str, Record]:
    """host -> its most recent record of `action` since `since`."""
    out: dict[str, Record] = {}
    for rec in store.records(LogFilter(action=action, since=since)):
        if rec.host:
            out[rec.host] = rec
    return out


def stored_impact(base: PolicySet, head: PolicySet, inv: Inventory, store: ChangeLogStore,
                  now: datetime, evidence: Evidence | None = None) -> Impact:
    since = (now - timedelta(days=RECENT_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    today = now.date()
    impact = Impact(since=since)
    audits = {h: r for h, r in latest(store, "audit", since).items()
              if r.status != "unreachable" and isinstance(r.details.get("passed"), dict)}
    if audits:
        _audit_impact(base, head, inv, audits, today, impact)
    scans = {h: r for h, r in latest(store, "patch.scan", since).items()
             if r.status in ("compliant", "overdue")}
    if scans:
        try:
            _patch_impact(base, head, inv, scans, today, impact, evidence)
        except OrchestratorError as exc:  # e.g. a host under two patch policies
            impact.note = f"patch compliance not judged: {exc.message}"
    return impact


# ------------------------------------------------------------------------------ audits
def _stored_checks(rec: Record) -> dict[str, tuple[str, Any]]:
    stored: dict[str, tuple[str, Any]] = {
        str(i): ("pass", a) for i, a in rec.details["passed"].items()}
    for f in rec.details.get("findings") or []:
        if isinstance(f, dict) and "id" in f:
            stored[str(f["id"])] = (str(f.get("status")), f.get("actual"))
    return stored


def host_verdict(job: HostJob, stored: dict[str, tuple[str, Any]], today: date) -> str:
    """drift | compliant | unknown under the job's baselines and waivers."""
    unknown = False
    seen: set[tuple[str, str]] = set()
    for b in job.baselines:
        if b.ansible_playbook:
            unknown = True
        for c in baseline_checks(b):
            if (c.id, repr(c.expected)) in seen:
                continue
            seen.add((c.id, repr(c.expected)))
            found = stored.get(c.id)
            if found is None:
                path = c.id.split(":", 1)[1] if c.id.startswith(_NEEDS_FILE) else None
                if path is not None and stored.get(f"file.exists:{path}", ("", ""))[1] == \
                        "absent":
                    continue  # not applicable: the file is missing (file.exists says so)
                unknown = True
                continue
            status, actual = found
            ok = rejudge(c.id, c.expected, actual) if status != "error" else None
            if ok is None:
                unknown = True
            elif not ok:
                res = apply_waivers(CheckResult(c.id, "drift", c.expected, actual, None,
                                                c.baseline), job.waivers, job.host,
                                    job.groups, today)
                if res.status == "drift":
                    return "drift"
    return "unknown" if unknown else "compliant"


def _jobs(ps: PolicySet, inv: Inventory, hosts: Iterable[str]) -> dict[str, HostJob]:
    wanted = set(hosts)
    return {j.host: j for j in host_jobs(ps, inv) if j.host in wanted}


def _audit_impact(base: PolicySet, head: PolicySet, inv: Inventory,
                  audits: dict[str, Record], today: date, impact: Impact) -> None:
    before, after = _jobs(base, inv, audits), _jobs(head, inv, audits)
    for host in sorted(set(before) | set(after)):
        stored = _stored_checks(audits[host])
        was = host_verdict(before[host], stored, today) if host in before else "compliant"
        now = host_verdict(after[host], stored, today) if host in after else "compliant"
        impact.audited += 1
        impact.drift_before += was == "drift"
        impact.drift_after += now == "drift"
        if now == "drift" and was != "drift":
            impact.newly_drifting.append(host)
        elif now == "unknown":
            impact.undetermined.append(host)


# ------------------------------------------------------------------------------ patches
def _update(p: dict[str, Any]) -> tuple[PendingUpdate, date]:
    released = p.get("released")
    update = PendingUpdate(
        name=str(p["name"]), current=p.get("current"), available=str(p.get("available")),
        classification=str(p.get("classification") or "other"), severity=p.get("severity"),
        released=date.fromisoformat(released) if released else None, source="")
    return update, date.fromisoformat(str(p["firstSeen"]))


def _overdue(ps: PolicySet, inv: Inventory, scans: dict[str, Record], today: date,
             evidence: Evidence | None) -> dict[str, bool]:
    """host -> any update overdue, for scanned hosts governed by a patch policy in `ps`."""
    out: dict[str, bool] = {}
    for job in scan_jobs(ps, inv):
        rec = scans.get(job.host)
        if rec is None:
            continue
        policy = ps.patch_policies[ps.groups[job.group].patch_policy or ""]
        late = False
        for p in rec.details.get("patches") or []:
            try:
                update, first_seen = _update(p)
            except (KeyError, TypeError, ValueError):
                continue  # a record this version cannot read: skipped, not guessed
            gate = evidence(policy, update) if evidence and policy.promotion else None
            if decide(policy, update, first_seen=first_seen, today=today,
                      promotion=gate).overdue:
                late = True
                break
        out[job.host] = late
    return out


def _patch_impact(base: PolicySet, head: PolicySet, inv: Inventory, scans: dict[str, Record],
                  today: date, impact: Impact, evidence: Evidence | None) -> None:
    before = _overdue(base, inv, scans, today, evidence)
    after = _overdue(head, inv, scans, today, evidence)
    for host in sorted(set(before) | set(after)):
        was, now = before.get(host, False), after.get(host, False)
        impact.scanned += 1
        impact.overdue_before += was
        impact.overdue_after += now
        if now and not was:
            impact.newly_overdue.append(host)
