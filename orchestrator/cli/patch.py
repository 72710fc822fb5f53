"""`orchestrator patch scan`: pending patches, approval and due dates (read-only on hosts)."""

from __future__ import annotations

import click

from orchestrator.cli.output import (
    acting_policies,
    app,
    emit_json,
    override_reason,
    warn_insecure_winrm,
    warn_no_hosts,
)


@click.group()
def patch() -> None:
    """Patches: scan (pending, approved, due, overdue) and apply (rollout in the window)."""


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
        warn_no_hosts(inventory, group, limit, "an asset group with a patch policy", "scanned")
    warn_insecure_winrm(inventory, [j.host for j in jobs])
    rc = a.run_context()
    with host_progress(a, len(jobs), "patch scan") as progress:
        result = run_scan(rc, policies, jobs, timeout=timeout, progress=progress)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(scan_text(result))
    ctx.exit(result.exit_code())


@patch.command()
@click.option("--group", required=True, help="The asset group to patch.")
@click.option("--check", is_flag=True,
              help="Show what would be installed per host; change nothing (any time).")
@click.option("--ignore-window", is_flag=True, help="Act even if the group's window is closed.")
@click.option("--reason", help="Why the window is ignored (required with --ignore-window).")
@click.pass_context
def apply(ctx: click.Context, group: str, check: bool, ignore_window: bool,
          reason: str | None) -> None:
    """Install approved patches now, if the group is open: exit 0 done, 2 some hosts
    failed, 3 closed."""
    from orchestrator.patching.apply import apply_group
    from orchestrator.reporting.patch_text import apply_text

    override = override_reason(ignore_window, reason)
    a = app(ctx)
    inventory = a.inventory()
    warn_insecure_winrm(inventory)
    rc = a.run_context()
    policies = acting_policies(a, rc, "patch apply", acting=not check, group=group)
    result = apply_group(rc, policies, inventory, group, check=check,
                         override=override)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(apply_text(result))
    ctx.exit(result.exit_code())
