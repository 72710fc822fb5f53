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

from orchestrator.audit.checks import Check, baseline_checks
from orchestrator.audit.host import HostJob
from orchestrator.audit.rejudge import Judge, judge_for, judge_with
from orchestrator.audit.result import CheckResult
from orchestrator.audit.waivers import apply_waivers
from orchestrator.changelog.record import Record
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.facts.updates import PendingUpdate
from orchestrator.gitops.hosts import Membership, host_groups
from orchestrator.inventory.model import Inventory
from orchestrator.patching.approval import decide
from orchestrator.patching.model import CanaryEvidence
from orchestrator.patching.scan import PatchFinding, ScanJob, age_thresholds
from orchestrator.policy.model import Baseline, PatchPolicy, PolicySet, Waiver

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
    records: int = 0  # recent audit and scan records found (hosts of the inventory)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since,
                "audit": {"hosts": self.audited, "driftBefore": self.drift_before,
                          "driftAfter": self.drift_after,
                          "newlyDrifting": self.newly_drifting,
                          "undetermined": self.undetermined},
                "patches": {"hosts": self.scanned, "overdueBefore": self.overdue_before,
                            "overdueAfter": self.overdue_after,
                            "newlyOverdue": self.newly_overdue}}


def latest(store: ChangeLogStore, action: str, since: str) -> dict[str, Record]:
    """host -> its most recent record of `action` since `since`."""
    out: dict[str, Record] = {}
    for rec in store.records(LogFilter(action=action, since=since)):
        if rec.host:
            out[rec.host] = rec
    return out


def stored_impact(base: PolicySet, head: PolicySet, inv: Inventory, store: ChangeLogStore,
                  now: datetime, changed: dict[str, set[str]], evidence: Evidence | None = None,
                  members: Membership | None = None) -> Impact:
    since = (now - timedelta(days=RECENT_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    today = now.date()
    impact = Impact(since=since)
    members = members or Membership(inv)
    audits = {h: r for h, r in latest(store, "audit", since).items()
              if r.status != "unreachable" and isinstance(r.details.get("passed"), dict)
              and h in inv.hosts}
    if audits:
        _audit_impact(base, head, inv, members, audits, today, impact, changed)
    scans = {h: r for h, r in latest(store, "patch.scan", since).items()
             if r.status in ("compliant", "overdue") and h in inv.hosts}
    impact.records = len(audits) + len(scans)
    if scans:
        _patch_impact(base, head, inv, members, scans, today, impact, evidence)
    return impact


# ------------------------------------------------------------------------------ audits
def _stored_checks(rec: Record) -> dict[str, tuple[str, Any]]:
    stored: dict[str, tuple[str, Any]] = {
        str(i): ("pass", a) for i, a in rec.details["passed"].items()}
    for f in rec.details.get("findings") or []:
        if isinstance(f, dict) and "id" in f:
            stored[str(f["id"])] = (str(f.get("status")), f.get("actual"))
    return stored


_Planned = tuple[Check, "str | None", "Judge | None"]  # a check, its file, its judge


class _Checks:
    """The checks of a set of baselines, deduplicated as the audit does, each with the file
    its attribute checks depend on: built once per distinct set (hosts share them)."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, ...], tuple[tuple[Baseline, ...], list[_Planned]]] = {}

    def __call__(self, baselines: tuple[Baseline, ...]) -> list[_Planned]:
        key = tuple(id(b) for b in baselines)
        found = self._memo.get(key)
        if found is None:
            out: list[_Planned] = []
            seen: set[tuple[str, str]] = set()
            for b in baselines:
                for c in baseline_checks(b):
                    if (c.id, repr(c.expected)) not in seen:
                        seen.add((c.id, repr(c.expected)))
                        out.append((c, c.id.split(":", 1)[1] if c.id.startswith(_NEEDS_FILE)
                                    else None, judge_for(c.id)))
            found = self._memo[key] = (baselines, out)  # the baselines keep their ids alive
        return found[1]


def host_verdict(job: HostJob, stored: dict[str, tuple[str, Any]], today: date,
                 checks_of: _Checks | None = None) -> str:
    """drift | compliant | unknown under the job's baselines and waivers."""
    unknown = any(b.ansible_playbook for b in job.baselines)
    for c, path, judge in (checks_of or _Checks())(job.baselines):
        found = stored.get(c.id)
        if found is None:
            if path is not None and stored.get(f"file.exists:{path}", ("", ""))[1] == "absent":
                continue  # not applicable: the file is missing (file.exists says so)
            unknown = True
            continue
        status, actual = found
        ok = judge_with(judge, c.expected, actual) if status != "error" else None
        if ok is None:
            unknown = True
        elif not ok:
            res = apply_waivers(CheckResult(c.id, "drift", c.expected, actual, None,
                                            c.baseline), job.waivers, job.host, job.groups,
                                today)
            if res.status == "drift":
                return "drift"
    return "unknown" if unknown else "compliant"


def _jobs(ps: PolicySet, inv: Inventory, members: Membership,
          hosts: Iterable[str]) -> dict[str, HostJob]:
    """As audit/plan.host_jobs, for `hosts` only, from the shared group memberships: the
    baselines of all the host's groups (for its platform), the waivers of its groups or
    naming it."""
    wanted = set(hosts)
    groups_of = host_groups(ps, members)
    by_group: dict[str, list[Waiver]] = {}
    by_host: dict[str, list[Waiver]] = {}
    order = {id(w): i for i, w in enumerate(ps.waivers.values())}
    for w in ps.waivers.values():
        for g in w.groups:
            by_group.setdefault(g, []).append(w)
        for h in members.matching(w.hosts):
            by_host.setdefault(h, []).append(w)
    out = {}
    for name in sorted(wanted & set(groups_of)):
        groups, platform = tuple(sorted(groups_of[name])), inv.hosts[name].platform
        baselines: dict[str, Baseline] = {}
        for g in groups:
            for bname in ps.groups[g].baselines:
                b = ps.baselines.get(bname)  # an invalid base may name a missing one
                if b is not None and b.platform == platform:
                    baselines.setdefault(bname, b)
        found = {id(w): w for g in groups for w in by_group.get(g, ())}
        found.update((id(w), w) for w in by_host.get(name, ()))
        waivers = tuple(sorted(found.values(), key=lambda w: order[id(w)]))  # policy order
        out[name] = HostJob(name, groups, platform, {}, tuple(baselines.values()), waivers)
    return out


def _same(before: HostJob, after: HostJob, changed: dict[str, set[str]]) -> bool:
    """The host is governed by the same baselines and waivers, none of them changed: its
    verdict cannot differ."""
    names = [b.name for b in after.baselines]
    waivers = [w.name for w in after.waivers]
    return (names == [b.name for b in before.baselines]
            and waivers == [w.name for w in before.waivers]
            and not set(names) & changed["Baseline"] and not set(waivers) & changed["Waiver"])


def _audit_impact(base: PolicySet, head: PolicySet, inv: Inventory, members: Membership,
                  audits: dict[str, Record], today: date, impact: Impact,
                  changed: dict[str, set[str]]) -> None:
    """Hosts whose baselines or waivers change are judged under both revisions; the others
    cannot change their verdict and are not counted."""
    before, after = _jobs(base, inv, members, audits), _jobs(head, inv, members, audits)
    checks_of = _Checks()
    for host in sorted(set(before) | set(after)):
        if host in before and host in after and _same(before[host], after[host], changed):
            continue
        stored = _stored_checks(audits[host])
        was = host_verdict(before[host], stored, today, checks_of) if host in before \
            else "compliant"
        now = host_verdict(after[host], stored, today, checks_of) if host in after \
            else "compliant"
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


def _overdue(ps: PolicySet, inv: Inventory, members: Membership, scans: dict[str, Record],
             today: date, evidence: Evidence | None) -> dict[str, bool]:
    """host -> out of patch compliance as `patch scan` would judge it from the stored
    pending updates: an update overdue under the group's patch policy, or one older than the
    group's baselines allow (threshold.pendingPatchAgeDays). Scanned hosts governed by a
    patch policy in `ps` only; a host under two groups takes the first by name."""
    out: dict[str, bool] = {}
    groups_of = host_groups(ps, members)
    for name, rec in scans.items():
        mine = groups_of.get(name, frozenset())
        group = next((g for g in ps.groups if g in mine and ps.groups[g].patch_policy),
                     None)  # the policy files' order, as `patch scan` takes the first
        if group is None:
            continue
        policy = ps.patch_policies.get(ps.groups[group].patch_policy or "")
        if policy is None:  # an invalid base may name a missing one
            continue
        findings = []
        for p in rec.details.get("patches") or []:
            try:
                update, first_seen = _update(p)
            except (KeyError, TypeError, ValueError):
                continue  # a record this version cannot read: skipped, not guessed
            gate = evidence(policy, update) if evidence and policy.promotion else None
            findings.append(PatchFinding(update, first_seen, decide(
                policy, update, first_seen=first_seen, today=today, promotion=gate)))
        job = ScanJob(name, group, inv.hosts[name].platform, {})
        late = any(f.decision.overdue for f in findings) or any(
            t["status"] == "drift" for t in age_thresholds(ps, job, findings))
        out[name] = late
    return out


def _patch_impact(base: PolicySet, head: PolicySet, inv: Inventory, members: Membership,
                  scans: dict[str, Record], today: date, impact: Impact,
                  evidence: Evidence | None) -> None:
    before = _overdue(base, inv, members, scans, today, evidence)
    after = _overdue(head, inv, members, scans, today, evidence)
    for host in sorted(set(before) | set(after)):
        was, now = before.get(host, False), after.get(host, False)
        impact.scanned += 1
        impact.overdue_before += was
        impact.overdue_after += now
        if now and not was:
            impact.newly_overdue.append(host)
