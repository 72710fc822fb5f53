"""Firmware version comparison: one loop over the golden cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.firmware.versions import status

CASES = yaml.safe_load((Path(__file__).parent / "golden" / "versions.yml").read_text())


@pytest.mark.parametrize(("installed", "wanted", "expected"), CASES,
                         ids=[f"{c[0]}-vs-{c[1]}" for c in CASES])
def test_version_status(installed: str | None, wanted: str, expected: str) -> None:
    assert status(None if installed is None else str(installed), str(wanted)) == expected
