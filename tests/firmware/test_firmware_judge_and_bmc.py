"""Judging a host's components against its firmware policy, reading Redfish members, and the
BMC's inventory variables (pure: no lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.firmware.bmc import bmc_of
from orchestrator.firmware.judge import judge
from orchestrator.firmware.model import Installed, Reading
from orchestrator.firmware.redfish_read import member
from orchestrator.policy.model import FirmwareComponent, FirmwarePolicy, Location, Meta

FW = "/redfish/v1/UpdateService/FirmwareInventory"


def policy(*components: tuple[str, str]) -> FirmwarePolicy:
    return FirmwarePolicy(Meta("fw", None, Location(Path("fw.yml"), 1, 1)), "redfish", tuple(
        FirmwareComponent(m, v, f"http://repo/{m.lower().strip('*')}-{v}.bin")
        for m, v in components))


def reading(**versions: str | None) -> Reading:
    return Reading("h1", "ok", components=tuple(
        Installed(k, f"{k} firmware", v, f"{FW}/{k}") for k, v in versions.items()),
        power_state="On")


def test_each_matching_member_is_judged_and_a_missing_one_is_unknown() -> None:
    got = judge(policy(("BIOS", "2.19.1"), ("nic*", "22.41.0"), ("CPLD", "1.0")), "web",
                reading(BIOS="2.19.1", NIC1="22.31.6", NIC2="22.50.0", BMC="7.0"))
    assert [(c.match, c.id, c.status) for c in got.components] == [
        ("BIOS", "BIOS", "current"), ("nic*", "NIC1", "outdated"), ("nic*", "NIC2", "ahead"),
        ("CPLD", None, "unknown")]
    assert got.status == "outdated"
    assert [c.id for c in got.outdated()] == ["NIC1"]
    assert got.components[1].uri == f"{FW}/NIC1"


def test_host_status_unknown_then_compliant() -> None:
    assert judge(policy(("BIOS", "2.19.1"), ("CPLD", "1.0")), "web",
                 reading(BIOS="2.19.1")).status == "unknown"
    assert judge(policy(("BIOS", "2.19.1")), "web", reading(BIOS="2.20")).status == "compliant"
    # a member without a version cannot be judged current
    assert judge(policy(("BIOS", "2.19.1")), "web", reading(BIOS=None)).status == "unknown"


def test_name_matches_too_and_unreachable_passes_through() -> None:
    got = judge(policy(("System BIOS", "2.19.1")), "web",
                Reading("h1", "ok", components=(Installed("X1", "System BIOS", "2.18"),)))
    assert got.components[0].id == "X1" and got.status == "outdated"
    down = judge(policy(("BIOS", "1")), "web", Reading("h1", "unreachable", "h1: refused"))
    assert (down.status, down.error, down.components) == ("unreachable", "h1: refused", [])


def test_member_text_from_the_bmc_is_neutralised() -> None:
    item = member(f"{FW}/BIOS", {"Id": "BIOS", "Name": "\x1b[2JBIOS\nforged",
                                 "Version": "2.18\x1b]0;x\x07", "Updateable": True})
    assert "\x1b" not in item.name and "\n" not in item.name and "\x1b" not in (item.version or "")
    assert item.updateable is True and item.uri == f"{FW}/BIOS"
    assert member(f"{FW}/NIC", {"Version": {"odd": 1}}).version is None
    assert member(f"{FW}/NIC", {}).id == "NIC"


GOOD = {"bmc_address": "10.0.0.5", "bmc_user": "admin", "bmc_password": "s3cret-canary"}


def test_bmc_from_inventory_keeps_the_password_out_of_repr() -> None:
    b = bmc_of("web-01", {**GOOD, "bmc_address": "https://bmc.example:8443/",
                          "bmc_system_id": "System.Embedded.1"})
    assert (b.hostname, b.port, b.system_id, b.verify) == ("bmc.example", 8443,
                                                           "System.Embedded.1", True)
    assert "s3cret-canary" not in repr(b)
    assert bmc_of("web-01", {**GOOD, "bmc_address": "[fd00::5]:443"}).hostname == "fd00::5"
    assert bmc_of("web-01", {**GOOD, "bmc_validate_certs": "false"}).verify is False


@pytest.mark.parametrize(("change", "words"), [
    ({"bmc_address": None}, "bmc_address is not set"),
    ({"bmc_address": "http://10.0.0.5"}, "only https"),
    ({"bmc_address": "10.0.0.5:99999"}, "is not host[:port]"),
    ({"bmc_address": "10.0.0.5; rm -rf /"}, "is not host[:port]"),
    ({"bmc_user": ""}, "bmc_user is not set"),
    ({"bmc_password": ""}, "bmc_password is not set"),
    ({"bmc_system_id": "../../Managers/1"}, "not a Redfish resource id"),
    ({"bmc_ca_file": "/nonexistent/ca.pem"}, "not a readable file"),
    ({"bmc_validate_certs": "maybe"}, "not true or false"),
])
def test_bad_bmc_variables_are_one_line_naming_host_and_variable(change: dict,
                                                                 words: str) -> None:
    with pytest.raises(InventoryError) as err:
        bmc_of("web-01", {**GOOD, **change})
    msg = str(err.value)
    assert msg.startswith("web-01: inventory variable") and words in msg and "\n" not in msg
    assert "s3cret-canary" not in msg
