"""Errors of the lab, all LabError subclasses (one line, says what to do)."""

from __future__ import annotations

from orchestrator.errors import LabError


class LabSetupError(LabError):
    """A tool, the cache or the base rootfs is missing or broken."""


class LabStartError(LabError):
    """A lab component did not come up."""
