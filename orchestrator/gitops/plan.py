"""A plan: everything a policy change between two revisions does, as data.

The formats (reporting/plan_text.py, plan_markdown.py, and to_json here) only show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.changelog.store import ChangeLogStore
from orchestrator.gitops.diff import ObjectChange, changed_names, object_changes
from orchestrator.gitops.exemptions import (
    FreezeChange,
    WaiverChange,
    freeze_changes,
    waiver_changes,
)
from orchestrator.gitops.hosts import CATEGORIES, HostChange, Membership, host_changes
from orchestrator.gitops.impact import Evidence, Impact, stored_impact
from orchestrator.gitops.timing import HORIZON, OccurrenceChange, occurrence_changes
from orchestrator.inventory.model import Inventory
from orchestrator.policy.model import PolicySet


@dataclass(frozen=True)
class Side:
    """One revision: how it was named, its commit (None: the work tree) and any problems
    (only the base may have them: an invalid head is an error)."""

    label: str
    commit: str | None
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.label, "commit": self.commit, "problems": list(self.problems)}


@dataclass
class Plan:
    base: Side
    head: Side
    at: datetime
    objects: list[ObjectChange] = field(default_factory=list)
    hosts: list[HostChange] | None = None  # None: no inventory to resolve against
    occurrences: list[OccurrenceChange] = field(default_factory=list)
    freezes: list[FreezeChange] = field(default_factory=list)
    waivers: list[WaiverChange] = field(default_factory=list)
    impact: Impact | None = None  # None: no store, or nothing recent in it
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Objects differ (file renames and moves alone are no change)."""
        return bool(self.objects)

    def summary(self) -> dict[str, Any]:
        objs = {c: sum(o.change == c for o in self.objects)
                for c in ("added", "removed", "changed")}
        out: dict[str, Any] = {"objects": objs}
        if self.hosts is not None:
            out["hosts"] = {"affected": len(self.hosts),
                            **{c: sum(c in h.categories for h in self.hosts)
                               for c in CATEGORIES}}
        out["occurrences"] = {c: sum(o.change == c for o in self.occurrences)
                              for c in ("appears", "disappears", "blocked", "unblocked")}
        out["freezes"] = {c: sum(f.change == c for f in self.freezes)
                          for c in ("added", "lifted", "changed")}
        out["waivers"] = {c: sum(w.change == c for w in self.waivers)
                          for c in ("added", "removed", "extended", "shortened", "changed",
                                    "expiring")}
        if self.impact is not None:
            out["newlyDrifting"] = len(self.impact.newly_drifting)
            out["newlyOverdue"] = len(self.impact.newly_overdue)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base.to_json(), "head": self.head.to_json(),
            "at": self.at.isoformat(timespec="seconds"),
            "changed": self.changed, "summary": self.summary(),
            "objects": [o.to_json() for o in self.objects],
            "hosts": [h.to_json() for h in self.hosts] if self.hosts is not None else None,
            "occurrences": {"horizonDays": HORIZON.days,
                            "changes": [o.to_json() for o in self.occurrences]},
            "freezes": [f.to_json() for f in self.freezes],
            "waivers": [w.to_json() for w in self.waivers],
            "impact": self.impact.to_json() if self.impact is not None else None,
            "notes": self.notes,
        }


def make_plan(base: PolicySet, head: PolicySet, *, base_side: Side, head_side: Side,
              now: datetime, inventory: Inventory | None = None,
              store: ChangeLogStore | None = None, evidence: Evidence | None = None,
              shown: Any = str) -> Plan:
    """Compare two loaded revisions. `now` (aware) anchors the occurrence horizon and the
    waiver and patch dates; `shown` names files in the output."""
    plan = Plan(base_side, head_side, now)
    plan.objects = object_changes(base, head, shown)
    changed = changed_names(plan.objects)
    members = Membership(inventory) if inventory is not None else None
    if inventory is not None:
        plan.hosts = host_changes(base, head, inventory, changed, members)
    else:
        plan.notes.append("no inventory configured: hosts affected not resolved")
    plan.occurrences = occurrence_changes(base, head, changed, now)
    plan.freezes = freeze_changes(base, head)
    plan.waivers = waiver_changes(base, head, now.date())
    if store is not None and inventory is not None and plan.changed:
        impact = stored_impact(base, head, inventory, store, now, changed, evidence, members)
        if impact.audited or impact.scanned:
            plan.impact = impact
        else:
            plan.notes.append(
                f"stored results since {impact.since[:10]}: no audited or scanned host whose "
                "baselines, waivers or patch policy change" if impact.records else
                f"no audit or patch scan results since {impact.since[:10]} in the store: "
                "newly drifting and overdue hosts not judged")
    return plan
