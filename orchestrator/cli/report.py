"""`orchestrator report`: the compliance report of a period (compliance/build.py), as HTML,
Markdown or JSON."""

from __future__ import annotations

import json
import os
import secrets
import stat
from datetime import datetime, timedelta
from pathlib import Path

import click

from orchestrator.cli.output import app, warn
from orchestrator.cli.timebounds import parse_bound
from orchestrator.config import Config
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.redact import redact
from orchestrator.textsafe import clean, json_text


def write_file(path: Path, text: str, protected: list[Path]) -> None:
    """All or nothing: a new private file (0600) beside the target, then renamed over it; a
    link at the target is replaced, never followed. Only a regular file (or a link) is
    replaced: not a device, a pipe or a folder, and never one of `protected` (the state
    database and its journal files, the configuration, the policies)."""
    folder = path.parent if str(path.parent) else Path(".")
    shown = clean(str(path))
    if not folder.is_dir():
        raise ConfigError(f"--output {shown}: folder {clean(str(folder))} does not exist; "
                          "create it or write elsewhere")
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(f"--output {shown}: cannot look at it ({exc.strerror})") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:  # a link to a device (/dev/stdout) is not replaced either
            st = path.stat()
        except OSError:
            st = None  # dangling: the link itself is replaced
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"--output {shown}: not a regular file (a folder, device or pipe); "
                          "name a file")
    real_folder = Path(os.path.realpath(folder))
    if real_folder.parts[:2] in (("/", "dev"), ("/", "proc"), ("/", "sys")):
        raise ConfigError(f"--output {shown}: in {real_folder}; write the report to a file "
                          "elsewhere")
    real = Path(os.path.realpath(folder)) / path.name
    for p in protected:
        try:
            mine = Path(os.path.realpath(p))
        except OSError:
            continue
        if real == mine or mine in real.parents:
            raise ConfigError(f"--output {shown}: that is {clean(str(p))}, which the "
                              "orchestrator reads; write the report elsewhere")
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"--output {clean(str(path))}: cannot write it ({exc.strerror}); "
                          "check the folder's permissions") from None


@click.command()
@click.option("--from", "since", metavar="ISO",
              help="Start of the period (default: 30 days before --until).")
@click.option("--until", metavar="ISO", help="End of the period, excluded (default: now; a "
              "date alone includes that day).")
@click.option("--group", help="Only this asset group's records.")
@click.option("--format", "fmt", type=click.Choice(["html", "markdown", "json"]), default=None,
              help="html (one self-contained file), markdown (for a ticket) or json; default "
                   "markdown, json with the global --format json.")
@click.option("--output", type=click.Path(path_type=Path),
              help="Write the report to this file (private, 0600) instead of stdout.")
@click.pass_context
def report(ctx: click.Context, since: str | None, until: str | None, group: str | None,
           fmt: str | None, output: Path | None) -> None:
    """The compliance report of a period (html, markdown or json), figures traced to records.

    Computed in the store; each figure names the records it came from. Its first line says
    whether the change log verifies."""
    from orchestrator.changelog.open import open_store
    from orchestrator.changelog.record import VerifyResult
    from orchestrator.compliance.build import DEFAULT_DAYS, build_report

    a = app(ctx)
    fmt = fmt or ("json" if a.output_format == "json" else "markdown")
    from orchestrator.cli.log import _missing_sqlite_file

    missing = _missing_sqlite_file(a.config.state)
    if missing is not None:  # opening it would create an empty log to report on
        raise ConfigError(f"{clean(str(missing))}: no change log (the state database does "
                          "not exist); check --state or the working directory")
    hi = parse_bound(until, "--until", end=True) if until else datetime.now().astimezone()
    try:
        lo = parse_bound(since, "--from", end=False) if since else \
            hi - timedelta(days=DEFAULT_DAYS)
    except OverflowError:
        raise ConfigError("--until is too early for a 30-day period; give --from") from None
    if lo >= hi:
        raise ConfigError(f"--from {lo.isoformat()} is not before --until {hi.isoformat()}; "
                          "give a period that ends after it starts")
    notes: list[str] = []
    policies = None
    try:
        policies = a.policies
    except OrchestratorError as exc:
        from orchestrator.policy.loader import load_policies

        first = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
        try:
            policies = load_policies(a.config.policies, strict=False)
            notes.append(f"The policies do not validate ({first}); expiring waivers are "
                         "listed from the documents that loaded.")
        except OrchestratorError:
            notes.append(f"Expiring waivers are not listed: {first}")
    if policies is not None:
        notes.append(f"Waivers are today's, from {a.config.policies} at revision "
                     f"{a.policy_revision}.")
    if group is not None and policies is not None and group not in policies.groups:
        notes.append(f"Group {group!r} is not in today's policies; its records are reported.")
    def verifier(upto: int) -> VerifyResult:
        """log verify on a connection of its own, while the figures are computed."""
        second = open_store(a.config.state)
        try:
            return second.verify(upto=upto)
        finally:
            second.close()

    rep = build_report(a.store, since=lo, until=hi, group=group, policies=policies,
                       store_name=redact(a.config.state), notes=notes, verifier=verifier)
    if fmt == "json":
        text = json_text(json.dumps(rep.to_json(), ensure_ascii=False, indent=2)) + "\n"
    elif fmt == "markdown":
        from orchestrator.reporting.report_markdown import report_markdown

        text = report_markdown(rep)
    else:
        from orchestrator.reporting.report_html import report_html

        text = report_html(rep)
    if not rep.intact:
        warn(rep.headline())
    if output is None:
        click.echo(text, nl=False)
    else:
        write_file(output, text, _protected(a.config))
        if not a.quiet:
            click.echo(f"report written to {clean(str(output))}", err=True)


def _protected(cfg: Config) -> list[Path]:
    """What --output must never replace: the SQLite state database and its journal files,
    the configuration file and the policy folder."""
    out: list[Path] = [Path(cfg.policies)]
    state = cfg.state
    if state.startswith("sqlite:///"):
        db = Path(state[len("sqlite:///"):])
        out += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
                db.with_name(db.name + "-journal")]
    if cfg.source is not None:
        out.append(Path(cfg.source))
    return out
