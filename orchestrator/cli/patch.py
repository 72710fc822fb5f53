"""`orchestrator patch scan`: pending patches, approval and due dates (read-only on hosts)."""

from __future__ import annotations

import click

from orchestrator.cli.output import app, emit_json, warn


@click.group()
def patch() -> None:
    """Patches: scan (pending, approved, due, overdue); apply comes with the rollout."""


@patch.command()
@click.option("--group", help="Only this asset group.")
@click.option("--limit", help="Only hosts matching these patterns (comma-separated, fnmatch).")
@click.option("--no-refresh", is_flag=True,
              help="List from the hosts' package caches as they are (no apt-get update, "
                   "dnf makecache, zypper refresh, online search).")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds for one host's refresh and listing.")
@click.pass_context
def scan(ctx: click.Context, group: str | None, limit: str | None, no_refresh: bool,
         timeout: float) -> None:
    """Pending patches per host, their approval and due dates: exit 0 compliant,
    2 overdue, 4 incomplete."""
    from orchestrator.cli.progress import host_progress
    from orchestrator.patching.scan import run_scan, scan_jobs
    from orchestrator.reporting.patch_text import scan_text

    a = app(ctx)
    inventory = a.inventory()
    policies = a.policies
    jobs = scan_jobs(policies, inventory, group, limit, refresh=not no_refresh)
    if not jobs:
        warn(f"no host of {inventory.source} is in "
             + (f"group {group}" if group else "an asset group with a patch policy")
             + (f" and matches --limit {limit}" if limit else "") + "; nothing scanned")
    rc = a.run_context()
    with host_progress(a, len(jobs), "patch scan") as progress:
        result = run_scan(rc, policies, jobs, timeout=timeout, progress=progress)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(scan_text(result))
    ctx.exit(result.exit_code())
