"""The list of command modules. Each module defines click commands and imports heavy
libraries only inside its functions, so that light commands start fast."""

from __future__ import annotations

import importlib

import click

# module name -> attribute names of click commands/groups in it
COMMANDS: dict[str, tuple[str, ...]] = {
    "orchestrator.cli.validate": ("validate",),
    "orchestrator.cli.log": ("log",),
    "orchestrator.cli.windows": ("windows",),
    "orchestrator.cli.schedule": ("schedule",),
    "orchestrator.cli.audit": ("audit",),
    "orchestrator.cli.run_window": ("run_window_cmd",),
    "orchestrator.cli.lab": ("lab",),
}


def register(group: click.Group) -> None:
    for module_name, names in COMMANDS.items():
        module = importlib.import_module(module_name)
        for name in names:
            group.add_command(getattr(module, name))
