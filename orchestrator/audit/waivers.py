"""Which waiver covers a finding: by host or group, by check id (fnmatch), not expired."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from datetime import date
from typing import Any

from orchestrator.audit.result import CheckResult
from orchestrator.policy.model import Waiver


def matching_waiver(waivers: list[Waiver], host: str, groups: tuple[str, ...], check_id: str,
                    today: date) -> tuple[Waiver | None, bool]:
    """(waiver, expired): the first live waiver covering the check, else the first expired
    one (so that the output can say it no longer applies), else (None, False)."""
    expired: Waiver | None = None
    for w in waivers:
        if not (any(fnmatch.fnmatchcase(host, h) for h in w.hosts)
                or set(groups).intersection(w.groups)):
            continue
        if not any(c == check_id or fnmatch.fnmatchcase(check_id, c) for c in w.checks):
            continue
        if w.expired(today):
            expired = expired or w
            continue
        return w, False
    return (expired, True) if expired else (None, False)


def waiver_json(w: Waiver, expired: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"name": w.name, "expires": w.expires.isoformat(),
                            "justification": w.justification}
    if expired:
        data["expired"] = True
        data["note"] = f"waiver {w.name} expired on {w.expires.isoformat()}; it no longer applies"
    return data


def apply_waivers(result: CheckResult, waivers: tuple[Waiver, ...], host: str,
                  groups: tuple[str, ...], today: date) -> CheckResult:
    """A drift covered by a live waiver becomes `waived`; an expired one stays drift and
    names the waiver so that the output says it no longer applies."""
    if result.status != "drift":
        return result
    w, expired = matching_waiver(list(waivers), host, groups, result.id, today)
    if w is None:
        return result
    return replace(result, status="drift" if expired else "waived",
                   waiver=waiver_json(w, expired))
