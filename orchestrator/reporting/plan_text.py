"""A plan for a person at a terminal. Every line is cleaned: names and values come from
policy files under review."""

from __future__ import annotations

from orchestrator.gitops.plan import Plan
from orchestrator.gitops.timing import HORIZON
from orchestrator.reporting.plan_common import field_line, host_groups, names
from orchestrator.textsafe import clean

SIGN = {"added": "+", "removed": "-", "changed": "~"}
OCC_SIGN = {"appears": "+", "disappears": "-", "blocked": "x", "unblocked": "o"}
MOST_HOSTS = 20


def _side(label: str, commit: str | None) -> str:
    return f"{label} ({commit[:12]})" if commit and commit[:12] != label else label


def plan_text(plan: Plan) -> str:
    s = plan.summary()
    out = [f"plan: {_side(plan.base.label, plan.base.commit)} -> "
           f"{_side(plan.head.label, plan.head.commit)}"]
    if plan.base.problems:
        out.append(f"warning: the base has {len(plan.base.problems)} policy problem(s); "
                   "compared as far as it loads (first: "
                   f"{plan.base.problems[0]})")
    o = s["objects"]
    out.append(f"objects: {o['added']} added, {o['removed']} removed, {o['changed']} changed")
    for c in plan.objects:
        out.append(f"  {SIGN[c.change]} {c.kind}/{c.name}  ({c.file})")
        out.extend(f"      {field_line(f)}" for f in c.fields)
    if plan.hosts is not None:
        h = s["hosts"]
        out.append(f"hosts: {h['affected']} affected (baselines {h['baselines']}, patch policy "
                   f"{h['patchPolicy']}, firmware policy {h['firmwarePolicy']}, windows "
                   f"{h['windows']})")
        for what, hosts in host_groups(plan.hosts):
            out.append(f"  {len(hosts)} host(s): {what}: {names(hosts, MOST_HOSTS)}")
    oc = s["occurrences"]
    out.append(f"window occurrences in the next {HORIZON.days} days: {oc['appears']} appear, "
               f"{oc['disappears']} disappear, {oc['blocked']} newly blocked, "
               f"{oc['unblocked']} unblocked")
    for c in plan.occurrences:
        j = c.to_json()
        extra = f"  blocked by {', '.join(c.blocked_by)}" if c.blocked_by else ""
        extra += f"  DST: {c.dst}" if c.dst else ""
        out.append(f"  {OCC_SIGN[c.change]} {c.change:<10} {j['occurrence']} until "
                   f"{j['end']}{extra}")
    for f in plan.freezes:
        was = (f" (was {f.was.start.isoformat()} to {f.was.until.isoformat()})"
               if f.was else "")
        groups = ", ".join(f.freeze.groups) if f.freeze.groups is not None else "every group"
        out.append(f"freeze {f.change}: {f.name} {f.freeze.start.isoformat()} to "
                   f"{f.freeze.until.isoformat()} {f.freeze.timezone} ({groups}){was}")
    for w in plan.waivers:
        was = f" (was {w.was.expires})" if w.was and w.was.expires != w.waiver.expires else ""
        out.append(f"waiver {w.change}: {w.name} expires {w.waiver.expires}{was}: "
                   f"{', '.join(w.waiver.checks)}")
    if plan.impact is not None:
        i = plan.impact
        out.append(f"from stored results since {i.since[:10]} (no host contacted):")
        out.append(f"  audit: {len(i.newly_drifting)} of {i.audited} audited host(s) would "
                   f"newly drift ({i.drift_before} -> {i.drift_after} drifting)"
                   + (f": {names(i.newly_drifting, MOST_HOSTS)}" if i.newly_drifting else "")
                   + (f"; {len(i.undetermined)} undetermined until their next audit"
                      if i.undetermined else ""))
        out.append(f"  patches: {len(i.newly_overdue)} of {i.scanned} scanned host(s) would "
                   f"newly have overdue patches ({i.overdue_before} -> {i.overdue_after})"
                   + (f": {names(i.newly_overdue, MOST_HOSTS)}" if i.newly_overdue else ""))
    out.extend(f"note: {n}" for n in plan.notes)
    out.append("changes: yes (exit 2)" if plan.changed else "no change (exit 0)")
    return "\n".join(clean(line) for line in out)
