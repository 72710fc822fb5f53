"""`orchestrator validate [--inventory]`: schema, cross-reference and inventory checks."""

from __future__ import annotations

import click

from orchestrator.cli.output import app, emit_json, emit_line
from orchestrator.errors import EXIT_ERROR, InventoryError, PolicyError
from orchestrator.policy.model import KINDS


@click.command()
@click.option("--inventory", "check_inventory_flag", is_flag=True,
              help="Also resolve groups against the Ansible inventory.")
@click.pass_context
def validate(ctx: click.Context, check_inventory_flag: bool) -> None:
    """Check every policy document (schema first, then cross-references)."""
    a = app(ctx)
    errors: list[str] = []
    warnings: list[str] = []
    policies = None
    try:
        policies = a.policies
        warnings.extend(policies.warnings)
    except PolicyError as exc:
        errors.extend(exc.problems)
    if policies is not None:
        from orchestrator.policy.checks import extra_checks

        more_errors, more_warnings = extra_checks(policies, a.config)
        errors.extend(more_errors)
        warnings.extend(more_warnings)
    if policies is not None and check_inventory_flag:
        if a.config.inventory is None:
            errors.append("no inventory configured; set 'inventory' in orchestrator.yml "
                          "or pass --inventory PATH before the command")
        else:
            from orchestrator.inventory.check import check_inventory
            from orchestrator.inventory.loader import load_inventory

            try:
                inv = load_inventory(a.config.inventory)
            except InventoryError as exc:
                errors.append(exc.message)
            else:
                inv_errors, inv_warnings = check_inventory(policies, inv)
                errors.extend(inv_errors)
                warnings.extend(inv_warnings)
    if a.output_format == "json":
        counts = {}
        if policies is not None:
            counts = {k: len(policies.by_kind(k)) for k in KINDS}
        emit_json({"valid": not errors, "errors": errors, "warnings": warnings,
                   "objects": counts, "policies": str(a.config.policies)})
    else:
        for line in errors:
            emit_line(line, err=True)
        for line in warnings:
            emit_line(f"warning: {line}", err=True)
        if not errors and policies is not None:
            total = sum(len(objs) for objs in (policies.by_kind(k) for k in KINDS))
            if not a.quiet:
                emit_line(f"{a.config.policies}: {total} policy objects valid"
                           + (f", {len(warnings)} warning(s)" if warnings else ""))
        elif len(errors) > 1:
            emit_line(f"{len(errors)} errors", err=True)
    if errors:
        ctx.exit(EXIT_ERROR)
