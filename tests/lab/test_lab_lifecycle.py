"""A second lab in its own folder: up, CLI, down leaves nothing behind, timings."""

from __future__ import annotations

import os
import time

import click
import pytest
from click.testing import CliRunner

from orchestrator.cli.lab import lab as lab_group
from orchestrator.config import Config
from orchestrator.context import AppContext

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("ORCHESTRATOR_LAB_REQUIRED") != "1",
    reason="the lab needs root")


def _cli():
    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = AppContext(config=Config(base_dir=os.getcwd(), policies="p", inventory=None,
                                           playbooks="pb", state="sqlite:///x"))
    root.add_command(lab_group)
    return root


def test_up_status_down_leaves_nothing(tmp_path, monkeypatch):
    from orchestrator.lab.fleet import Lab

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    t0 = time.monotonic()
    res = runner.invoke(_cli(), ["lab", "up", "--hosts", "2", "--windows", "1", "--rpm", "1",
                                 "--zypper", "1"])
    warm = time.monotonic() - t0
    assert res.exit_code == 0, res.output
    lab = Lab(tmp_path / ".orchestrator" / "lab")
    assert str(lab.inventory_path) in res.output
    assert warm < 10, f"warm lab up took {warm:.1f} s"
    res = runner.invoke(_cli(), ["lab", "status"])
    assert "lab-02" in res.output and "lab-win-01" in res.output and "running" in res.output
    assert "lab-rpm-01" in res.output and "lab-zypper-01" in res.output
    res = runner.invoke(_cli(), ["lab", "inventory"])
    assert res.output.strip() == str(lab.inventory_path)
    assert lab.leftovers()["listeners"]  # it really listens
    t0 = time.monotonic()
    res = runner.invoke(_cli(), ["lab", "down"])
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 5
    assert lab.leftovers() == {"processes": [], "mounts": [], "listeners": []}
    res = runner.invoke(_cli(), ["lab", "down", "--wipe"])
    assert res.exit_code == 0 and not lab.root.exists()
    res = runner.invoke(_cli(), ["lab", "inventory"])
    assert res.exit_code != 0
