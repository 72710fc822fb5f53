"""Playbooks run with Ansible's pipelining on (modules over the ssh session's stdin, not a
temporary file per task), unless the site's environment says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.execution.workspace import ansible_env


def test_pipelining_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_PIPELINING", raising=False)
    assert ansible_env([Path("/k")])["ANSIBLE_PIPELINING"] == "True"


def test_the_sites_own_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_PIPELINING", "False")
    assert "ANSIBLE_PIPELINING" not in ansible_env([Path("/k")])  # the inherited value rules
