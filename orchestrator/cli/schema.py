"""`orchestrator schema`: the policy JSON Schema (draft 2020-12), for editors."""

from __future__ import annotations

import click


@click.command()
def schema() -> None:
    """Print the policy JSON Schema (draft 2020-12) that `validate` checks first."""
    from orchestrator.policy.schema import schema_text

    click.echo(schema_text(), nl=False)
