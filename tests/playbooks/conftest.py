"""Fixtures of the playbook tests."""

from __future__ import annotations

import pytest
from playbook_helpers import playbook_runner, ssh_masters


@pytest.fixture
def ssh_control():
    """A private ssh ControlPath folder; its masters end with the test."""
    with ssh_masters() as folder:
        yield folder


@pytest.fixture
def run_playbook(lab_fleet, tmp_path, ssh_control):
    """run(playbook, host, variables, *args, vars_text=None) -> PlayRun (playbook_helpers)."""
    return playbook_runner(lab_fleet, tmp_path, ssh_control)
