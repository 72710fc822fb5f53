"""Audit results for a person at a terminal.

Every line is cleaned (orchestrator.textsafe): fact values, versions and error text come
from the hosts and must not reach the terminal as control sequences or extra lines.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.audit.result import AuditRun, HostAudit
from orchestrator.textsafe import clean

SYMBOL = {"compliant": "OK   ", "drift": "DRIFT", "unreachable": "UNREACHABLE", "error": "ERROR"}


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def host_line(h: HostAudit) -> str:
    counts = {
        s: sum(1 for c in h.checks if c.status == s) for s in ("pass", "drift", "waived", "error")
    }
    detail = h.error or (
        f"{counts['pass']} pass, {counts['drift']} drift, "
        f"{counts['waived']} waived, {counts['error']} error"
    )
    return clean(f"{SYMBOL[h.status]} {h.host} [{', '.join(h.groups)}] {detail}")


def audit_text(run: AuditRun) -> str:
    lines = [clean(f"audit {run.run}")]
    for h in run.hosts:
        lines.append(host_line(h))
        for c in h.findings:
            expected, actual = _value(c.expected), _value(c.actual)
            text = f"    {c.status:<6} {c.id}: expected {expected}, actual {actual}"
            if c.waiver:
                text += f" (waiver {c.waiver['name']}"
                text += ", EXPIRED" if c.waiver.get("expired") else ""
                text += f", expires {c.waiver['expires']})"
            lines.append(clean(text))
    s = run.summary()
    lines.append(
        f"{s['hosts']} hosts: {s['compliant']} compliant, {s['drift']} drift, "
        f"{s['unreachable']} unreachable, {s['error']} error"
    )
    both = run.also_drifting()
    if both:  # counted under drift and error alike: say so, the sum exceeds the hosts
        lines[-1] += f" ({both} of the error hosts also drifted)"
    return "\n".join(lines)
