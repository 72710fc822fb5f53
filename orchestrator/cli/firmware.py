"""`orchestrator firmware scan|apply`: components against the firmware policy, and the rollout
that brings them there inside the group's window."""

from __future__ import annotations

import click

from orchestrator.cli.output import acting_policies, app, emit_json, override_reason, warn_no_hosts


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value != value:  # NaN passes every range check
        raise click.BadParameter("is not a number of seconds", ctx, param)
    return value


@click.group()
def firmware() -> None:
    """Firmware: scan (installed against wanted) and apply (rollout in the window)."""


@firmware.command()
@click.option("--group", help="Only this asset group.")
@click.option("--limit", help="Only hosts matching these patterns (comma-separated, fnmatch).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=86400),
              default=60.0, show_default=True, callback=_finite,
              help="Seconds for one BMC request (a BMC's whole scan: 10 times this), or "
                   "one host's fwupd listing.")
@click.pass_context
def scan(ctx: click.Context, group: str | None, limit: str | None, timeout: float) -> None:
    """Installed and wanted version of each component per host: exit 0 compliant,
    2 outdated, 4 incomplete."""
    from orchestrator.cli.progress import host_progress
    from orchestrator.firmware.scan import run_scan, scan_jobs
    from orchestrator.reporting.firmware_text import scan_text

    a = app(ctx)
    inventory = a.inventory()
    policies = a.policies
    jobs = scan_jobs(policies, inventory, group, limit)
    if not jobs:
        warn_no_hosts(inventory, group, limit, "an asset group with a firmware policy",
                      "scanned")
    rc = a.run_context()
    with host_progress(a, len(jobs), "firmware scan") as progress:
        result = run_scan(rc, policies, jobs, timeout=timeout, progress=progress)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(scan_text(result))
    ctx.exit(result.exit_code())


@firmware.command()
@click.option("--group", required=True, help="The asset group to update.")
@click.option("--check", is_flag=True,
              help="Show what would be flashed per host; change nothing (any time).")
@click.option("--ignore-window", is_flag=True, help="Act even if the group's window is closed.")
@click.option("--reason", help="Why the window is ignored (required with --ignore-window).")
@click.pass_context
def apply(ctx: click.Context, group: str, check: bool, ignore_window: bool,
          reason: str | None) -> None:
    """Bring each component to its policy version now, if the group is open: exit 0 done,
    2 some hosts failed, 3 closed."""
    from orchestrator.firmware.apply import apply_group
    from orchestrator.reporting.firmware_text import apply_text

    override = override_reason(ignore_window, reason)
    a = app(ctx)
    inventory = a.inventory()
    rc = a.run_context()
    policies = acting_policies(a, rc, "firmware apply", acting=not check, group=group)
    result = apply_group(rc, policies, inventory, group, check=check,
                         override=override)
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        click.echo(apply_text(result))
    ctx.exit(result.exit_code())
