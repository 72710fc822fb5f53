"""`orchestrator log` and `orchestrator log verify`."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime

import click

from orchestrator.cli.output import app, emit_json
from orchestrator.errors import ChainBroken, ConfigError

CSV_FIELDS = ("seq", "time", "run", "occurrence", "policyRevision", "actor", "host", "group",
              "action", "status", "details", "prevHash", "hash")


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {value!r}: not an ISO 8601 date or time") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # local time of this machine
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@click.group(invoke_without_command=True)
@click.option("--host", help="Only records about this host.")
@click.option("--run", "run_id", help="Only records of this run.")
@click.option("--since", help="Only records at or after this ISO 8601 time.")
@click.option("--action", help="Only records of this action (audit, install, skip, ...).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default=None,
              help="text (default), json (JSON Lines) or csv.")
@click.pass_context
def log(ctx: click.Context, host: str | None, run_id: str | None, since: str | None,
        action: str | None, fmt: str | None) -> None:
    """Show the change log."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.changelog.store import LogFilter

    a = app(ctx)
    fmt = fmt or a.output_format
    flt = LogFilter(host=host, run=run_id, since=_since(since), action=action)
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
    for rec in a.store.records(flt):
        data = rec.to_json()
        if fmt == "json":
            out.write(json.dumps(data, ensure_ascii=False, sort_keys=False) + "\n")
        elif fmt == "csv":
            writer.writerow([json.dumps(data[f], sort_keys=True) if f == "details" else
                             ("" if data[f] is None else data[f]) for f in CSV_FIELDS])
        else:
            where = " ".join(x for x in (rec.host, f"[{rec.group}]" if rec.group else None)
                             if x)
            extra = f" {json.dumps(rec.details, sort_keys=True)}" if rec.details else ""
            out.write(f"{rec.seq:>6} {rec.time} {rec.run} {rec.action} {rec.status}"
                      f"{' ' + where if where else ''} by {rec.actor}{extra}\n")


@log.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check the change log's hash chain: exit 0 intact, 1 broken (says where)."""
    a = app(ctx)
    result = a.store.verify()
    if a.output_format == "json":
        emit_json({"intact": result.ok, "records": result.checked,
                   "brokenAt": result.broken_seq, "reason": result.reason,
                   "store": a.store.url})
        if not result.ok:
            ctx.exit(1)
        return
    if not result.ok:
        raise ChainBroken(f"{a.store.url}: change log broken at record {result.broken_seq}: "
                          f"{result.reason}")
    if not a.quiet:
        click.echo(f"change log intact: {result.checked} records")
