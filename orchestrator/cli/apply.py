"""`orchestrator apply [--revision REF]`: what a pipeline runs on merge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from orchestrator.cli.output import app, emit_json, emit_line


@click.command("apply")
@click.option("--revision", "ref", default="HEAD", show_default=True,
              help="The commit to apply (branch, tag or commit).")
@click.pass_context
def apply(ctx: click.Context, ref: str) -> None:
    """Mark a revision applied: validate, record, export the schedule. Exit 0, 1 error.

    What a pipeline runs on merge: the revision's policies are read from git and validated,
    a `policy.apply` record carries the commit, and the scheduler export is written to the
    configured folder (schedule.output)."""
    from orchestrator.cli.schedule import _prefix
    from orchestrator.gitops.apply import apply_revision

    a = app(ctx)
    done = apply_revision(a.run_context(), a.config, ref, datetime.now(UTC),
                          _prefix(a.config.source), str(Path.cwd()))
    if a.output_format == "json":
        emit_json(done.to_json())
        return
    o = done.summary["objects"]
    emit_line(f"applied {done.commit[:12]} ({ref})"
              + (f", after {done.previous[:12]}" if done.previous else ", the first applied"))
    emit_line(f"  objects: {o['added']} added, {o['removed']} removed, {o['changed']} changed")
    emit_line(f"  schedule: {len(done.files)} file(s) in {done.output} "
              f"({a.config.schedule.format})")
