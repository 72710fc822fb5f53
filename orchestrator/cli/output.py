"""Small helpers that commands share to print results."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from orchestrator.context import AppContext


def app(ctx: click.Context) -> AppContext:
    obj = ctx.find_object(AppContext)
    assert obj is not None
    return obj


def emit_json(data: Any) -> None:
    """JSON to stdout alone."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def info(ctx_app: AppContext, message: str) -> None:
    """A log line on stderr (never mixed into JSON output)."""
    if not ctx_app.quiet:
        click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
