"""Audit one host: connect, gather every fact in one round trip, judge, close.

Takes and returns plain, picklable data so that hosts can later be spread over processes
or site workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orchestrator.audit.checks import (
    Check,
    CheckNotApplicable,
    CheckUndetermined,
    baseline_checks,
    merge_needs,
)
from orchestrator.audit.result import CheckResult, HostAudit, host_status
from orchestrator.audit.waivers import apply_waivers
from orchestrator.policy.model import Baseline, Waiver


@dataclass(frozen=True)
class HostJob:
    host: str
    groups: tuple[str, ...]
    platform: str
    vars: dict[str, Any] = field(compare=False)
    baselines: tuple[Baseline, ...] = ()
    waivers: tuple[Waiver, ...] = ()


def judge(checks: list[Check], facts: dict, job: HostJob, today: date) -> list[CheckResult]:
    """Facts in, findings out; waivers applied to drift (expired waivers do not apply)."""
    out: list[CheckResult] = []
    seen: set[tuple[str, str]] = set()
    for c in checks:
        key = (c.id, repr(c.expected))
        if key in seen:  # two baselines asking for the same thing
            continue
        seen.add(key)
        try:
            passed, actual = c.judge(facts)
        except CheckUndetermined as exc:
            out.append(CheckResult(c.id, "error", c.expected, str(exc), None, c.baseline))
            continue
        except CheckNotApplicable:
            continue
        result = CheckResult(c.id, "pass" if passed else "drift", c.expected, actual, None,
                             c.baseline)
        out.append(apply_waivers(result, job.waivers, job.host, job.groups, today))
    return out


def audit_host(job: HostJob, settings: Any, timeout: float, today: date) -> HostAudit:
    """Never raises for host trouble: unreachable and error hosts come back as results."""
    from orchestrator.hostfacts import gather_host

    started = time.monotonic()
    checks = [c for b in job.baselines for c in baseline_checks(b)]

    def done(status: str, error: str | None = None, results: tuple = ()) -> HostAudit:
        return HostAudit(job.host, job.groups, job.platform, status, error, results,  # type: ignore[arg-type]
                         round(time.monotonic() - started, 3))

    if not checks:
        return done("compliant")
    got = gather_host(job.host, job.vars, settings, merge_needs(checks), timeout)
    if got.status != "ok":
        return done(got.status, got.error)
    facts = got.facts
    results = tuple(judge(checks, facts, job, today))
    return done(host_status(results), None, results)
