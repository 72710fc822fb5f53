"""Fixtures of the firmware tests against the lab."""

from __future__ import annotations

import pytest


@pytest.fixture
def bmcs(lab_fleet):
    """The lab's apt hosts (three) with their BMCs restored before and after."""
    names = [h.name for h in lab_fleet.linux_hosts if h.flavour == "apt"][:3]
    for n in names:
        lab_fleet.restore_bmc(n)
    yield names
    for n in names:
        lab_fleet.restore_bmc(n)
