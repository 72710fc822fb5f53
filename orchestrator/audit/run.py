"""An audit run: hosts in parallel (the run's host pool, bounded by forks), each recorded as
it finishes.

Hosts that finish together share one change-log transaction (one sync to disk): the pool hands
back the hosts that finish within its group window (hostpool.GROUP_WINDOW) of each other, and
they are written at once. So no record is written later than that window (plus the write
itself) after its host finished, and a crash loses at most the hosts of that last window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from orchestrator.audit.host import HostJob, audit_host
from orchestrator.audit.result import AuditRun, CheckResult, HostAudit, host_status
from orchestrator.audit.waivers import apply_waivers
from orchestrator.changelog.record import Entry
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.execution.checkmode import CheckModeResult

Progress = Callable[[HostAudit, int, int], None]


def _host_entry(ctx: RunContext, res: HostAudit, action: str = "audit") -> Entry:
    """The host's record: its findings, and the actual of every check that passed (so that
    `plan` can judge a changed baseline from stored results, audit/rejudge.py)."""
    return ctx.entry(action, res.status, host=res.host, group=",".join(res.groups),
                     error=res.error, checks=len(res.checks),
                     findings=[c.to_json() for c in res.findings],
                     passed={c.id: c.actual for c in res.checks if c.status == "pass"})


def run_audit(ctx: RunContext, jobs: list[HostJob], *, timeout: float = 60.0,
              today: date | None = None, progress: Progress | None = None) -> AuditRun:
    """Each host's record is written as soon as that host is done, grouped with the hosts
    that finish within the pool's group window of it (a crash loses nothing audited before);
    hosts with an `ansible:` baseline get a second record, `audit.ansible`, once their playbook
    has run in check mode."""
    today = today or date.today()
    run = AuditRun(ctx.run_id)
    ctx.record("audit.start", "started", hosts=len(jobs))
    results: dict[str, HostAudit] = {}
    work = partial(audit_host, settings=ctx.settings, timeout=timeout, today=today)
    try:
        n = 0
        for finished in ctx.host_pool().run(work, jobs):
            batch: list[HostAudit] = []
            for f in finished:
                job = f.job
                res = f.result if f.error is None else HostAudit(
                    job.host, job.groups, job.platform, "error",
                    f"internal error: {type(f.error).__name__}: {f.error}")
                results[job.host] = res
                batch.append(res)
            ctx.record_all([_host_entry(ctx, res) for res in batch])
            for res in batch:
                n += 1
                if progress:
                    progress(res, n, len(jobs))
        touched = _ansible_baselines(ctx, jobs, results, today)
        if touched:
            ctx.record_all([_host_entry(ctx, results[h], "audit.ansible") for h in touched])
        run.hosts.extend(results[job.host] for job in jobs)
    finally:
        ctx.record("audit.end", "finished" if len(run.hosts) == len(jobs) else "aborted",
                   **run.summary())
    return run


def _ansible_baselines(ctx: RunContext, jobs: list[HostJob], results: dict[str, HostAudit],
                       today: date) -> list[str]:
    """Baselines with `ansible.playbook`: one check-mode run per playbook over its hosts.
    Returns the hosts whose results it extended."""
    from orchestrator.execution.checkmode import CheckModeResult, run_check_mode
    from orchestrator.execution.playbook import known_hosts_files

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
    strict = getattr(ctx.settings, "host_keys", "strict") == "strict"
    for playbook, pjobs in by_playbook.items():
        hosts = {j.host: j.vars for j in pjobs}  # the connection decides the plugin
        try:
            outcome = run_check_mode(ctx.playbooks / playbook, ctx.inventory_path, hosts,
                                     known_hosts=known_hosts_files(
                                         ctx.settings, {j.host: j.vars for j in pjobs}),
                                     forks=ctx.forks, strict=strict)
        except OrchestratorError as exc:  # the playbook is missing: an error on each host
            outcome = CheckModeResult(broken=exc.message)
        except Exception as exc:  # ansible-runner itself failed
            outcome = CheckModeResult(broken=f"ansible-runner failed: {type(exc).__name__}: "
                                             f"{exc}")
        for job in pjobs:
            extra = _playbook_findings(outcome, job.host, playbook)
            extra = [apply_waivers(c, job.waivers, job.host, job.groups, today) for c in extra]
            old = results[job.host]
            checks = old.checks + tuple(extra)
            status = old.status if old.status in ("unreachable", "error") else host_status(checks)
            results[job.host] = replace(old, checks=checks, status=status)
            if job.host not in touched:
                touched.append(job.host)
    return touched


def _playbook_findings(outcome: CheckModeResult, host: str, playbook: str) -> list[CheckResult]:
    """Changed tasks are drift; failed tasks, unreachable hosts, and hosts the playbook never
    reached (it did not parse, its `hosts:` missed them) are errors."""
    out = [CheckResult(f"ansible:{c['task']}", "drift", "unchanged", c["diff"] or "changed",
                       None, playbook) for c in outcome.changed.get(host, [])]
    out += [CheckResult(f"ansible:{f.split(':', 1)[0]}", "error", "unchanged", f, None, playbook)
            for f in outcome.failed.get(host, [])]
    if host in outcome.unreachable:
        out.append(CheckResult(f"ansible:{playbook}", "error", "reachable",
                               outcome.unreachable[host], None, playbook))
    elif outcome.broken or not outcome.reached(host):
        reason = outcome.broken or (f"the playbook did not run on {host} "
                                    f"(ansible-playbook exit status {outcome.rc})")
        out.append(CheckResult(f"ansible:{playbook}", "error", "playbook ran", reason, None,
                               playbook))
    return out


__all__ = ["RunContext", "run_audit"]
