"""`orchestrator log` and `orchestrator log verify`."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.output import app, emit_json, emit_line, warn
from orchestrator.errors import ChainBroken, ConfigError
from orchestrator.redact import redact
from orchestrator.textsafe import clean, json_text

CSV_FIELDS = ("seq", "time", "run", "occurrence", "policyRevision", "actor", "host", "group",
              "action", "status", "details", "prevHash", "hash")
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@")


def _since(value: str | None) -> str | None:
    """--since: a time, or a date alone (the start of that day); local time without zone."""
    if value is None:
        return None
    from orchestrator.cli.timebounds import parse_bound

    dt = parse_bound(value, "--since", end=False)
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _until(value: str | None) -> str | None:
    """--until: a time, or a date alone, which includes that day (as for `report`)."""
    if value is None:
        return None
    from orchestrator.cli.timebounds import parse_bound

    dt = parse_bound(value, "--until", end=True)
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def csv_cell(value: Any) -> str:
    """One CSV cell: control characters escaped, and a leading ' before = + - @ so that a
    spreadsheet shows the text instead of running it as a formula."""
    text = clean("" if value is None else value)
    return "'" + text if text.startswith(FORMULA_START) else text


def text_line(data: dict[str, Any]) -> str:
    """One record as a line for a person; every field cleaned, so a value cannot forge a
    line or send terminal control sequences."""
    where = " ".join(x for x in (data["host"], f"[{data['group']}]" if data["group"] else None)
                     if x)
    extra = f" {json.dumps(data['details'], sort_keys=True)}" if data["details"] else ""
    return clean(f"{data['seq']:>6} {data['time']} {data['run']} {data['action']} "
                 f"{data['status']}{' ' + where if where else ''} by {data['actor']}{extra}")


@click.group(invoke_without_command=True)
@click.option("--host", help="Only records about this host.")
@click.option("--run", "run_id", help="Only records of this run.")
@click.option("--since", help="Only records at or after this ISO 8601 time.")
@click.option("--until", help="Only records before this ISO 8601 time.")
@click.option("--action", help="Only records of this action (audit, install, skip, ...).")
@click.option("--status", help="Only records with this status (drift, failed, frozen, ...).")
@click.option("--group", help="Only records about this asset group.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default=None,
              help="text (default), json (JSON Lines) or csv.")
@click.pass_context
def log(ctx: click.Context, host: str | None, run_id: str | None, since: str | None,
        until: str | None, action: str | None, status: str | None, group: str | None,
        fmt: str | None) -> None:
    """Show the change log."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.changelog.store import LogFilter

    a = app(ctx)
    fmt = fmt or a.output_format
    flt = LogFilter(host=host, run=run_id, since=_since(since), action=action,
                    until=_until(until), status=status, group=group)
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
    for rec in a.store.records(flt):
        data = rec.to_json()
        if fmt == "json":
            out.write(json_text(json.dumps(data, ensure_ascii=False, sort_keys=False)) + "\n")
        elif fmt == "csv":
            writer.writerow([csv_cell(json.dumps(data[f], sort_keys=True)) if f == "details"
                             else csv_cell(data[f]) for f in CSV_FIELDS])
        else:
            out.write(text_line(data) + "\n")


def _missing_sqlite_file(state: str) -> Path | None:
    """The SQLite file of `state` if it does not exist (opening it would create it)."""
    if not state.startswith("sqlite:///"):
        return None
    path = Path(state[len("sqlite:///"):])
    return None if path.exists() else path


@log.command()
@click.option("--expect", metavar="SEQ:HASH",
              help="An anchor printed by an earlier 'log verify': the record at SEQ must "
                   "still have HASH.")
@click.pass_context
def verify(ctx: click.Context, expect: str | None) -> None:
    """Check the change log's hash chain: exit 0 intact, 1 broken (says where).

    Prints the last record's SEQ:HASH, an anchor to keep elsewhere; `--expect SEQ:HASH`
    later shows a rebuilt chain or removed last records. A missing or empty log is not
    intact."""
    from orchestrator.changelog.record import Anchor, VerifyResult

    a = app(ctx)
    anchor = None
    if expect is not None:
        try:
            anchor = Anchor.parse(expect)
        except ValueError as exc:
            raise ConfigError(f"--expect {clean(expect)!r}: {exc}") from None
    missing = _missing_sqlite_file(a.config.state)
    if missing is not None:
        result = VerifyResult(False, 0, None, "no change log: the state database does not "
                              "exist; check --state or the working directory")
        store_url = redact(a.config.state)
    else:
        result = a.store.verify(anchor)
        store_url = redact(a.store.url)
    if a.output_format == "json":
        emit_json({"intact": result.ok, "records": result.checked,
                   "lastSeq": result.last_seq, "lastHash": result.last_hash,
                   "anchor": result.anchor, "expected": str(anchor) if anchor else None,
                   "brokenAt": result.broken_seq, "reason": result.reason,
                   "store": store_url})
        if not result.ok:
            ctx.exit(1)
        return
    if not result.ok:
        state = (f"broken at record {result.broken_seq}" if result.broken_seq is not None
                 else "not intact")
        raise ChainBroken(f"{store_url}: change log {state}: {result.reason}")
    if a.quiet:
        emit_line(result.anchor or "")
        return
    emit_line(f"change log intact: {result.checked} records"
              + (f", record {anchor.seq} matches the expected hash" if anchor else "")
              + f"; anchor {result.anchor} (keep it elsewhere; check later with "
                "'log verify --expect SEQ:HASH')")


@log.command()
@click.option("--to", "to", required=True, metavar="URL",
              help="The store to copy into, empty: postgresql://... or sqlite:///PATH.")
@click.pass_context
def migrate(ctx: click.Context, to: str) -> None:
    """Copy the change log into another store, hashes verified on both sides. Exit 0, 1.

    The source is the configured state; the target must hold no records. Records keep
    their sequence numbers, times and hashes; first-seen dates of pending patches follow."""
    from orchestrator.changelog.migrate import migrate as copy_log
    from orchestrator.changelog.open import open_store

    a = app(ctx)
    missing = _missing_sqlite_file(a.config.state)
    if missing is not None:
        raise ConfigError(f"{missing}: no change log to migrate; check --state")
    target = open_store(to)
    try:
        done = copy_log(a.store, target)
    finally:
        target.close()
    if a.output_format == "json":
        emit_json({"records": done.records, "firstSeen": done.first_seen,
                   "anchor": done.anchor, "leftBehind": done.left_behind, "to": redact(to)})
        return
    if done.left_behind:
        warn(f"{done.left_behind} record(s) were appended to the source during the copy and "
             "were not copied; stop the schedulers, empty the target and migrate again")
    emit_line(f"migrated {done.records} records and {done.first_seen} first-seen dates to "
              f"{redact(to)}; both chains verified, anchor {done.anchor}")
