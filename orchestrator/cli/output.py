"""Small helpers that commands share to print results.

Text for a terminal goes through orchestrator.textsafe.clean (control characters escaped):
values come from hosts, inventories and the environment.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from orchestrator.context import AppContext
from orchestrator.textsafe import clean, json_text


def app(ctx: click.Context) -> AppContext:
    obj = ctx.find_object(AppContext)
    assert obj is not None
    return obj


def emit_json(data: Any) -> None:
    """JSON to stdout alone (DEL, C1 controls and bidi marks written as \\u escapes)."""
    sys.stdout.write(json_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
                     + "\n")


def emit_line(line: str, err: bool = False) -> None:
    """One line of text output, control characters (a newline too) escaped."""
    click.echo(clean(line), err=err)


def info(ctx_app: AppContext, message: str) -> None:
    """A log line on stderr (never mixed into JSON output)."""
    if not ctx_app.quiet:
        click.echo(clean(message), err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {clean(message)}", err=True)


def warn_insecure_winrm(inventory: Any, names: Any = None) -> None:
    """One warning line naming the WinRM hosts (of `names`, default all) whose certificate
    validation the inventory turns off."""
    from orchestrator.inventory.check import cert_validation_ignored

    hosts = inventory.hosts.values() if names is None else (inventory.hosts[n] for n in names)
    insecure = cert_validation_ignored(hosts, inventory.source)
    if insecure:
        warn(insecure)


def warn_no_hosts(inventory: Any, group: str | None, limit: str | None, scope: str,
                  verb: str) -> None:
    """One warning line when a command's group and --limit match no host of the inventory."""
    warn(f"no host of {inventory.source} is in " + (f"group {group}" if group else scope)
         + (f" and matches --limit {limit}" if limit else "") + f"; nothing {verb}")


def override_reason(ignore_window: bool, reason: str | None) -> str | None:
    """--ignore-window --reason TEXT as the run's override (None without the flag); the flag
    without a reason is refused: the override and its reason go to the change log."""
    from orchestrator.errors import ConfigError

    if not ignore_window:
        return None
    if not (reason and reason.strip()):
        raise ConfigError(
            "--ignore-window needs --reason TEXT: the override and its reason go to the change log")
    return reason.strip()


def acting_policies(a: AppContext, rc: Any, doing: str, *, acting: bool,
                    group: str | None = None, window: str | None = None) -> Any:
    """The policies a host-changing command runs from: with requireApplied (and when it
    acts), the applied commit's, read from git after the guard passed; else the folder's."""
    if not (acting and a.config.require_applied):
        return a.policies
    from orchestrator.gitops.applied import require_applied

    return require_applied(rc, a.config.policies, doing=doing, group=group, window=window)
