"""`orchestrator schedule export`: cron or systemd entries that call `run-window`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from orchestrator.cli.output import app, emit_json, info
from orchestrator.windows.export import ExportError


def _prefix(config_source: Path | None) -> list[str]:
    """The exact command to run: the installed `orchestrator` script, else this Python."""
    exe = shutil.which("orchestrator")
    prefix = [os.path.abspath(exe)] if exe else [sys.executable, "-m", "orchestrator.cli.main"]
    if config_source is not None:
        prefix += ["--config", str(Path(config_source).resolve())]
    return prefix


@click.group("schedule")
def schedule() -> None:
    """Scheduler entries for the maintenance windows."""


@schedule.command("export")
@click.option("--format", "fmt", type=click.Choice(["cron", "systemd"]), required=True)
@click.option("--output", type=click.Path(file_okay=False), help="Write files into DIR.")
@click.option("--days", default=400, show_default=True, type=click.IntRange(1, 3660),
              help="Horizon: occurrences in the next DAYS days.")
@click.option("--from", "from_", help="ISO 8601 instant to start from (default: now).")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: str | None, days: int, from_: str | None
           ) -> None:
    """Entries that call `orchestrator run-window NAME` at each occurrence's start."""
    from orchestrator.cli.windows import _instant
    from orchestrator.windows.export import export_cron, export_systemd

    a = app(ctx)
    now = _instant("--from", from_)
    prefix = _prefix(a.config.source)
    workdir = str(Path.cwd())
    make = export_cron if fmt == "cron" else export_systemd
    files = make(a.policies, now, prefix, workdir, days)
    if output:
        out = Path(output)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (out / name).write_text(text)
        except OSError as exc:
            raise ExportError(f"{out}: cannot write scheduler files: {exc.strerror}") from None
        info(a, f"wrote {len(files)} file(s) to {out}")
    if a.output_format == "json":
        emit_json([{"file": name, "content": text} for name, text in files.items()])
    elif not output:
        for name, text in files.items():
            click.echo(f"# ==> {name} <==")
            click.echo(text)
