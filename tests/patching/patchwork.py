"""Shared pieces of the patching tests: an always-open window (a `str.format` template, like
the policies around it), the work folder's orchestrator.yml, and the change log as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.cli.main import main

REPO = Path(__file__).resolve().parents[2]

# open now, whenever the test runs: an occurrence every hour for an hour, no cutoff margin
ALWAYS_WINDOW = """
apiVersion: orchestrator/v1
kind: Window
metadata: {{name: always}}
spec:
  schedule: {{cron: "0 * * * *"}}
  timezone: UTC
  duration: 1h
  cutoff: 0m
"""


def write_config(folder: Path, inventory: Path | str, *, lab=None,
                 playbooks: bool = True) -> None:
    """orchestrator.yml for `folder`: policies/, `inventory`, state.db, the shipped playbooks,
    and with `lab` its known_hosts with strict host keys."""
    lines = ["policies: policies/", f"inventory: {inventory}"]
    if playbooks:
        lines.append(f"playbooks: {REPO / 'playbooks'}")
    lines.append("state: sqlite:///state.db")
    if lab is not None:
        lines.append(f"ssh: {{knownHosts: {lab.known_hosts_path}, hostKeys: strict}}")
    (folder / "orchestrator.yml").write_text("\n".join(lines) + "\n")


def log_records(capsys) -> list[dict]:
    """Every change-log record, as `orchestrator log --format json` prints them."""
    capsys.readouterr()
    assert main(["log", "--format", "json"]) == 0
    return [json.loads(x) for x in capsys.readouterr()[0].splitlines()]
