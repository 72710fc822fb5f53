"""The list of command modules. Each module defines click commands and imports heavy
libraries only inside its functions, so that light commands start fast.

Commands are registered by name only (see COMMANDS); `orchestrator --help` lists them from
the table.
"""

from __future__ import annotations

import importlib

import click

# command name -> (module, attribute, first paragraph of its help, for `--help`).
# A command's module is imported only when that command runs (or shows its own help), so
# `orchestrator windows check` does not pay for importing the others.
# tests/cli/test_startup.py checks this table against the real commands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("orchestrator.cli.validate", "validate",
                 "Check every policy document (schema first, then cross-references)."),
    "schema": ("orchestrator.cli.schema", "schema",
               "Print the policy JSON Schema (draft 2020-12) that `validate` checks first."),
    "plan": ("orchestrator.cli.plan", "plan",
             "What a policy change between two git revisions does: exit 0 no change, 2 changes."),
    "apply": ("orchestrator.cli.apply", "apply",
              "Mark a revision applied: validate, record, export the schedule. Exit 0, 1 error."),
    "log": ("orchestrator.cli.log", "log", "Show the change log."),
    "report": ("orchestrator.cli.report", "report",
               "The compliance report of a period (html, markdown or json), figures traced to "
               "records."),
    "windows": ("orchestrator.cli.windows", "windows",
                "Maintenance windows, freezes and whether a group is open."),
    "schedule": ("orchestrator.cli.schedule", "schedule",
                 "Scheduler entries for the maintenance windows."),
    "audit": ("orchestrator.cli.audit", "audit",
              "Compare hosts with their baselines: exit 0 compliant, 2 drift, 4 incomplete."),
    "patch": ("orchestrator.cli.patch", "patch",
              "Patches: scan (pending, approved, due, overdue) and apply (rollout in the window)."),
    "firmware": ("orchestrator.cli.firmware", "firmware",
                 "Firmware: scan (installed against wanted) and apply (rollout in the window)."),
    "run-window": ("orchestrator.cli.run_window", "run_window_cmd",
                   "What a scheduler calls at a window: guard, lease, then the work."),
    "lab": ("orchestrator.cli.lab", "lab",
            "A lab fleet on this machine (root; state in .orchestrator/lab/)."),
}


class LazyGroup(click.Group):
    """A click group whose commands in `lazy` are imported only when used."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, attr, _ = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module_name), attr), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click.Group.format_commands, with the short help of lazy commands taken from
        the table instead of importing them."""
        from gettext import gettext as _

        entries = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                entries.append((name, None))
            elif not cmd.hidden:
                entries.append((name, cmd))
        if not entries:
            return
        limit = formatter.width - 6 - max(len(name) for name, _cmd in entries)
        rows = [(name, (cmd or click.Command(name, help=self.lazy[name][2]))
                 .get_short_help_str(limit)) for name, cmd in entries]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)


def register(group: LazyGroup) -> None:
    group.lazy.update(COMMANDS)
