"""Shared fixtures. Lab fixtures come from the lab's own pytest plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["orchestrator.lab.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def examples() -> Path:
    return REPO / "policies"
