"""`orchestrator run-window W [--dry-run]`: what a scheduler calls at each window."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from orchestrator.cli.output import (
    acting_policies,
    app,
    emit_json,
    emit_line,
    override_reason,
    warn_insecure_winrm,
)

if TYPE_CHECKING:
    from orchestrator.inventory.model import Inventory


@click.command("run-window")
@click.argument("window")
@click.option("--dry-run", is_flag=True, help="Say what would run; change nothing, record nothing.")
@click.option("--at", "at", help="With --dry-run: judge this ISO 8601 instant instead of now.")
@click.option("--ignore-window", is_flag=True, help="Act even if the window is closed.")
@click.option("--reason", help="Why the window is ignored (required with --ignore-window).")
@click.pass_context
def run_window_cmd(
    ctx: click.Context,
    window: str,
    dry_run: bool,
    at: str | None,
    ignore_window: bool,
    reason: str | None,
) -> None:
    """What a scheduler calls at a window: guard, lease, then the work.

    For each group of WINDOW that no freeze closes: audit, patch, firmware, audit again.
    Exit 0 done or already done, 2 failures, 3 closed, 1 error."""
    from orchestrator.cli.windows import _instant
    from orchestrator.maintenance.window_run import run_window

    override = override_reason(ignore_window, reason)
    a = app(ctx)
    instant = _instant("--at", at) if at else None
    rc = a.run_context()
    policies = acting_policies(a, rc, "run-window", acting=not dry_run, window=window)

    def inventory() -> Inventory:
        inv = a.inventory()
        warn_insecure_winrm(inv)  # on stderr, where a scheduler's log keeps it
        return inv

    result = run_window(
        rc,
        policies,
        window,
        inventory,
        at=instant,
        dry_run=dry_run,
        override=override,
    )
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        emit_line(
            f"{result.status}: {result.window} {result.occurrence or ''} "
            f"(run {result.run})".replace("  ", " ")
        )
        emit_line(f"  {result.reason}")
        for g in result.groups:
            hosts = f" [{', '.join(g.hosts)}]" if g.hosts else ""
            emit_line(f"  {g.group}: {g.status}{hosts}: {g.reason}")
            if g.status == "would-run" and g.patch is not None:
                plan = g.patch
                for host, patches in plan["approved"].items():
                    emit_line(f"    {host}: would install {', '.join(patches)}")
                if plan["batches"]:
                    emit_line("    batches: " + " | ".join(", ".join(b) for b in plan["batches"])
                              + f" (maxFailures {plan['maxFailures']})")
                if plan["notScanned"]:
                    emit_line(f"    not scanned yet: {', '.join(plan['notScanned'])} "
                              "(run `orchestrator patch scan`)")
    ctx.exit(result.exit_code())
