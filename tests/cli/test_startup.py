"""Startup of light commands: lazy command registration lists every command as before, and
`windows check` imports no heavy library (jsonschema, dateutil, croniter, ansible)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from orchestrator.cli import commands
from orchestrator.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_lazy_table_matches_the_commands():
    for name, (module, attr, short) in commands.COMMANDS.items():
        cmd = getattr(importlib.import_module(module), attr)
        assert cmd.name == name
        assert (cmd.help or "").split("\n\n")[0].strip() == short


def test_help_lists_every_command_as_eager_registration_did():
    eager = click.Group("orchestrator", params=cli.params, help=cli.help,
                        context_settings=cli.context_settings)
    for module, attr, _short in commands.COMMANDS.values():
        eager.add_command(getattr(importlib.import_module(module), attr))
    runner = CliRunner()
    lazy_help = runner.invoke(cli, ["--help"], prog_name="orchestrator").output
    eager_help = runner.invoke(eager, ["--help"], prog_name="orchestrator").output
    assert lazy_help == eager_help
    for module, attr, _short in commands.COMMANDS.values():
        assert getattr(importlib.import_module(module), attr).name in lazy_help


def test_windows_check_imports_no_heavy_library(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "w.yml").write_text(_POLICY)
    probe = ("import sys\n"
             "sys.argv = ['orchestrator', '--policies', 'policies', 'windows', 'check', "
             "'--group', 'web', '--at', '2026-11-14T23:00:00+01:00']\n"
             "try:\n"
             "    from orchestrator.cli.main import main\n"
             "    code = main()\n"
             "finally:\n"
             "    heavy = sorted(m for m in ('jsonschema', 'dateutil', 'croniter', 'ansible',\n"
             "                   'paramiko', 'orchestrator.cli.validate', 'orchestrator.cli.lab')\n"
             "                   if m in sys.modules)\n"
             "    print('HEAVY', heavy)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert "web: OPEN" in proc.stdout


_POLICY = """\
apiVersion: orchestrator/v1
kind: Window
metadata: {name: patch-saturday}
spec:
  schedule: {rrule: "DTSTART;TZID=Europe/Berlin:20260113T220000\\nRRULE:FREQ=MONTHLY;BYDAY=2TU"}
  timezone: Europe/Berlin
  offsetDays: 4
  duration: 4h
  cutoff: 30m
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: web}
spec:
  hosts: {patterns: ["web-*"]}
  windows: [patch-saturday]
"""
