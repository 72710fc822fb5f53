"""requirePowerState as people write it: YAML 1.1 reads an unquoted On/Off as a boolean."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy.loader import load_policies

DOC = """apiVersion: orchestrator/v1
kind: FirmwarePolicy
metadata: {{name: fw}}
spec:
  method: redfish
  components:
    - {{match: "NIC*", version: "1.0", image: "https://repo/nic-1.0.bin"}}
  requirePowerState: {value}
"""


@pytest.mark.parametrize(("value", "expected"), [("On", "On"), ("Off", "Off"), ('"On"', "On"),
                                                 ("any", "any")])
def test_on_and_off_quoted_or_not(tmp_path: Path, value: str, expected: str) -> None:
    (tmp_path / "fw.yml").write_text(DOC.format(value=value))
    assert load_policies(tmp_path).firmware_policies["fw"].require_power_state == expected


def test_anything_else_is_refused_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "fw.yml").write_text(DOC.format(value="Standby"))
    with pytest.raises(PolicyError) as err:
        load_policies(tmp_path)
    assert "fw.yml:8:" in str(err.value) and "requirePowerState" in str(err.value)


def test_fwupd_cannot_require_the_power_off(tmp_path: Path) -> None:
    (tmp_path / "fw.yml").write_text(DOC.format(value="Off").replace("redfish", "fwupd"))
    with pytest.raises(PolicyError) as err:
        load_policies(tmp_path)
    assert "requirePowerState Off can never hold" in str(err.value)
    assert "FirmwarePolicy" in str(err.value) and "fw.yml:" in str(err.value)
