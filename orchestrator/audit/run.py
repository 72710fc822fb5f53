"""An audit run: hosts in parallel (bounded by forks), each recorded as it finishes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import date
from pathlib import Path

from orchestrator.audit.host import HostJob, audit_host
from orchestrator.audit.result import AuditRun, CheckResult, HostAudit, host_status
from orchestrator.audit.waivers import apply_waivers
from orchestrator.context import RunContext

Progress = Callable[[HostAudit, int, int], None]


def _record_host(ctx: RunContext, res: HostAudit, action: str = "audit") -> None:
    ctx.record(action, res.status, host=res.host, group=",".join(res.groups), error=res.error,
               checks=len(res.checks), findings=[c.to_json() for c in res.findings])


def run_audit(ctx: RunContext, jobs: list[HostJob], *, timeout: float = 60.0,
              today: date | None = None, progress: Progress | None = None) -> AuditRun:
    """Each host's record is written as soon as that host is done (a crash loses nothing
    already audited); hosts with an `ansible:` baseline get a second record, `audit.ansible`,
    once their playbook has run in check mode."""
    today = today or date.today()
    run = AuditRun(ctx.run_id)
    ctx.record("audit.start", "started", hosts=len(jobs))
    results: dict[str, HostAudit] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(ctx.forks, len(jobs) or 1))) as pool:
            futures = {pool.submit(audit_host, job, ctx.settings, timeout, today): job
                       for job in jobs}
            for n, fut in enumerate(as_completed(futures), 1):
                job = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a bug must not cost the other hosts
                    res = HostAudit(job.host, job.groups, job.platform, "error",
                                    f"internal error: {type(exc).__name__}: {exc}")
                results[job.host] = res
                _record_host(ctx, res)
                if progress:
                    progress(res, n, len(jobs))
        for host in _ansible_baselines(ctx, jobs, results, today):
            _record_host(ctx, results[host], "audit.ansible")
        run.hosts.extend(results[job.host] for job in jobs)
    finally:
        ctx.record("audit.end", "finished" if len(run.hosts) == len(jobs) else "aborted",
                   **run.summary())
    return run


def _ansible_baselines(ctx: RunContext, jobs: list[HostJob], results: dict[str, HostAudit],
                       today: date) -> list[str]:
    """Baselines with `ansible.playbook`: one check-mode run per playbook over its hosts.
    Returns the hosts whose results it extended."""
    from orchestrator.execution.checkmode import run_check_mode

    by_playbook: dict[str, list[HostJob]] = {}
    for job in jobs:
        if results[job.host].status == "unreachable":
            continue
        for b in job.baselines:
            if b.ansible_playbook:
                by_playbook.setdefault(b.ansible_playbook, []).append(job)
    if not by_playbook or ctx.inventory_path is None:
        return []
    touched: list[str] = []
    known = getattr(ctx.settings, "known_hosts", None)
    strict = getattr(ctx.settings, "host_keys", "strict") == "strict"
    for playbook, pjobs in by_playbook.items():
        outcome = run_check_mode(ctx.playbooks / playbook, ctx.inventory_path,
                                 [j.host for j in pjobs], known_hosts=None if known is None
                                 else Path(known), forks=ctx.forks, strict=strict)
        for job in pjobs:
            extra: list[CheckResult] = []
            for change in outcome.changed.get(job.host, []):
                extra.append(CheckResult(f"ansible:{change['task']}", "drift", "unchanged",
                                         change["diff"] or "changed", None, playbook))
            for failure in outcome.failed.get(job.host, []):
                extra.append(CheckResult(f"ansible:{failure.split(':', 1)[0]}", "error",
                                         "unchanged", failure, None, playbook))
            if job.host in outcome.unreachable:
                extra.append(CheckResult(f"ansible:{playbook}", "error", "reachable",
                                         outcome.unreachable[job.host], None, playbook))
            extra = [apply_waivers(c, job.waivers, job.host, job.groups, today) for c in extra]
            old = results[job.host]
            checks = old.checks + tuple(extra)
            status = old.status if old.status in ("unreachable", "error") else host_status(checks)
            results[job.host] = replace(old, checks=checks, status=status)
            if job.host not in touched:
                touched.append(job.host)
    return touched


__all__ = ["RunContext", "run_audit"]
