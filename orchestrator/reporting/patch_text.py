"""Patch scan results for a person at a terminal. Every line is cleaned: package names,
versions and error text come from the hosts."""

from __future__ import annotations

from orchestrator.patching.apply import ApplyRun
from orchestrator.patching.scan import HostScan, ScanRun
from orchestrator.textsafe import clean

SYMBOL = {"compliant": "OK     ", "overdue": "OVERDUE", "unreachable": "UNREACHABLE",
          "error": "ERROR  "}
STATE = {"missing": "approved", "not_approved": "held", "rejected": "rejected"}


def host_line(h: HostScan) -> str:
    if h.error:
        return clean(f"{SYMBOL[h.status]} {h.host} [{h.group}] {h.error}")
    states = [p.to_json()["state"] for p in h.patches]
    detail = (f"{len(h.patches)} pending via {h.manager}: {states.count('missing')} approved, "
              f"{states.count('not_approved')} held, {states.count('rejected')} rejected, "
              f"{sum(p.decision.overdue for p in h.patches)} overdue")
    return clean(f"{SYMBOL[h.status]} {h.host} [{h.group}] {detail}")


def scan_text(run: ScanRun) -> str:
    lines = [clean(f"patch scan {run.run}")]
    for h in run.hosts:
        lines.append(host_line(h))
        for p in h.patches:
            j = p.to_json()
            due = f", due {j['dueOn']}" if j["dueOn"] else ""
            flag = " OVERDUE" if j["overdue"] else ""
            sev = f"/{j['severity']}" if j["severity"] else ""
            lines.append(clean(
                f"    {STATE[j['state']]:<8} {j['name']} {j['current'] or '-'} -> "
                f"{j['available']} ({j['classification']}{sev}){due}{flag}: {j['reason']}"))
        for t in h.thresholds:
            if t["status"] == "drift":
                lines.append(clean(f"    drift    {t['id']}: expected {t['expected']}, "
                                   f"actual {t['actual']}"))
    s = run.summary()
    lines.append(f"{s['hosts']} hosts: {s['compliant']} compliant, {s['overdue']} overdue, "
                 f"{s['unreachable']} unreachable, {s['error']} error; {s['pending']} pending "
                 f"updates: {s['missing']} approved, {s['notApproved']} held, "
                 f"{s['rejected']} rejected, {s['overduePatches']} overdue")
    return "\n".join(lines)


def apply_text(run: ApplyRun) -> str:
    head = {"check": "patch apply --check (nothing changed)", "closed": "patch apply: closed"}
    lines = [clean(f"{head.get(run.status, 'patch apply')} {run.group} (run {run.run})")]
    if run.reason:
        lines.append(clean(f"  {run.reason}"))
    if run.batches and run.status != "check":
        lines.append(clean("  batches: " + " | ".join(", ".join(b) for b in run.batches)))
    for h in run.hosts.values():
        lines.append(clean(f"  {h.status:<16} {h.host}" + (f": {h.reason}" if h.reason else "")
                           + (" (rebooted)" if h.rebooted else "")))
        for p in h.packages:
            lines.append(clean(f"      {p.get('status', '?'):<24} {p.get('name')} "
                               f"{p.get('before') or '-'} -> {p.get('wanted')}"
                               + (f" (now {p.get('after')})" if p.get("after") not in
                                  (None, p.get("wanted")) else "")
                               + (f": {p.get('reason')}" if p.get("reason") else "")))
            for d in p.get("dependencies") or []:
                if isinstance(d, dict):
                    lines.append(clean(
                        f"        + {d.get('name')} {d.get('version')} (dependency"
                        + (f"; rejected {d.get('pattern')}" if d.get("rejected") else "")
                        + ")"))
    if run.budget:
        lines.append(clean(f"  failure budget: {run.budget}"))
    s = run.summary()
    lines.append(", ".join(f"{n} {k}" for k, n in sorted(s.items())) or "no hosts")
    return "\n".join(lines)
