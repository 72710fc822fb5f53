"""`orchestrator audit [--group G] [--limit PATTERN]`: drift audit, read-only."""

from __future__ import annotations

import click

from orchestrator.cli.output import app, emit_json, warn_insecure_winrm, warn_no_hosts


@click.command()
@click.option("--group", help="Only this asset group.")
@click.option("--limit", help="Only hosts matching these patterns (comma-separated, fnmatch).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds for one host's facts.")
@click.pass_context
def audit(ctx: click.Context, group: str | None, limit: str | None, timeout: float) -> None:
    """Compare hosts with their baselines: exit 0 compliant, 2 drift, 4 incomplete."""
    from orchestrator.audit.plan import host_jobs
    from orchestrator.audit.run import run_audit
    from orchestrator.cli.progress import host_progress
    from orchestrator.reporting.audit_text import audit_text

    a = app(ctx)
    inventory = a.inventory()
    jobs = host_jobs(a.policies, inventory, group, limit)
    if not jobs:
        warn_no_hosts(inventory, group, limit, "any asset group", "audited")
    warn_insecure_winrm(inventory, [j.host for j in jobs])
    rc = a.run_context()
    with host_progress(a, len(jobs), "audit") as progress:
        result = run_audit(rc, jobs, timeout=timeout, progress=progress)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(audit_text(result))
    ctx.exit(result.exit_code())
