"""Firmware scan and apply results for a person at a terminal. Every line is cleaned: names,
versions and error text come from hosts and BMCs."""

from __future__ import annotations

from typing import Any

from orchestrator.firmware.scan import FirmwareScan
from orchestrator.textsafe import clean

SYMBOL = {"compliant": "OK      ", "outdated": "OUTDATED", "unknown": "UNKNOWN ",
          "unreachable": "UNREACHABLE", "error": "ERROR   "}


def scan_text(run: FirmwareScan) -> str:
    lines = [clean(f"firmware scan {run.run}")]
    for h in run.hosts:
        power = f", power {h.power_state}" if h.power_state else ""
        head = h.error if h.error else f"{h.method}{power}"
        lines.append(clean(f"{SYMBOL[h.status]} {h.host} [{h.group}] {head}"))
        for c in h.components:
            what = f"{c.id} ({c.name})" if c.id and c.name and c.name != c.id else (c.id or "-")
            lines.append(clean(f"    {c.status:<8} {c.match}: {what} {c.installed or '-'} "
                               f"-> {c.wanted}"))
    s = run.summary()
    lines.append(f"{s['hosts']} hosts: {s['compliant']} compliant, {s['outdated']} outdated, "
                 f"{s['unknown']} unknown, {s['unreachable']} unreachable, {s['error']} error; "
                 f"components: {s['componentsCurrent']} current, {s['componentsOutdated']} "
                 f"outdated, {s['componentsAhead']} ahead, {s['componentsUnknown']} unknown")
    return "\n".join(lines)


def apply_text(run: Any) -> str:
    head = {"check": "firmware apply --check (nothing changed)",
            "closed": "firmware apply: closed"}
    lines = [clean(f"{head.get(run.status, 'firmware apply')} {run.group} (run {run.run})")]
    if run.reason:
        lines.append(clean(f"  {run.reason}"))
    if run.batches and run.status != "check":
        lines.append(clean("  batches: " + " | ".join(", ".join(b) for b in run.batches)))
    for h in run.hosts.values():
        lines.append(clean(f"  {h.status:<16} {h.host}" + (f": {h.reason}" if h.reason else "")))
        for c in h.components:
            before, after = c.get("before") or "-", c.get("after") or "-"
            why = f": {c['reason']}" if c.get("reason") else ""
            lines.append(clean(f"      {c.get('status', '?'):<10} {c.get('id')} {before} -> "
                               f"{after} (wanted {c.get('wanted')}){why}"))
    if run.budget:
        lines.append(clean(f"  failure budget: {run.budget}"))
    return "\n".join(lines)
