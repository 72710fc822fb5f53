"""Judging a host's components against its firmware policy, reading Redfish members, and the
BMC's inventory variables (pure: no lab)."""

from __future__ import annotations

import os
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


def test_a_member_is_judged_once_and_rollback_copies_not_at_all() -> None:
    """Two components matching one member: the first claims it (one flash, one version);
    a member the BMC says is not updateable (a rollback copy) is not judged."""
    comps = (Installed("NIC1", "NIC", "22.31.6", f"{FW}/NIC1", True),
             Installed("Previous-NIC1", "NIC", "22.20.0", f"{FW}/Previous-NIC1", False))
    got = judge(policy(("NIC*", "22.40.0"), ("nic1", "22.41.0")), "web",
                Reading("h1", "ok", components=comps))
    assert [(c.match, c.id, c.wanted) for c in got.components] == [
        ("NIC*", "NIC1", "22.40.0"), ("nic1", None, "22.41.0")]
    assert [c.status for c in got.components] == ["outdated", "unknown"]


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
    ({"bmc_validate_certs": []}, "is a list, not true or false"),
    ({"bmc_validate_certs": {}}, "is a dict, not true or false"),
    ({"bmc_validate_certs": ["no"]}, "is a list, not true or false"),
    ({"bmc_validate_certs": 2}, "is a int, not true or false"),
    ({"bmc_user": "admin:x"}, "bmc_user holds ':'"),
    ({"bmc_password": "s3cret-canary\ud800"}, "bmc_password cannot be encoded as UTF-8"),
])
def test_bad_bmc_variables_are_one_line_naming_host_and_variable(change: dict,
                                                                 words: str) -> None:
    with pytest.raises(InventoryError) as err:
        bmc_of("web-01", {**GOOD, **change})
    msg = str(err.value)
    assert msg.startswith("web-01: inventory variable") and words in msg and "\n" not in msg
    assert "s3cret-canary" not in msg


@pytest.mark.parametrize(("value", "verify"), [
    (None, True), (True, True), (False, False), ("YES", True), (" no ", False), ("1", True),
    ("0", False), (1, True), (0, False)])
def test_validate_certs_is_a_boolean_and_empty_means_on(value: object, verify: bool) -> None:
    assert bmc_of("web-01", {**GOOD, "bmc_validate_certs": value}).verify is verify


CA_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUUm9VD6yCmjbA3dm2y3rDHzAPwJgwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLdGVzdCBCTUMgQ0EwHhcNMjUwMTAxMDAwMDAwWhcNMzUwMTAx
MDAwMDAwWjAWMRQwEgYDVQQDDAt0ZXN0IEJNQyBDQTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABP1N5KQ0Kk0V2x1ZJ4pQH0Hq7Zt0h1sC4nJd8n5u3j7b4N0p5S1l
0gq0v6x3rJ5m2z4o3mU6Q2Jc2m8n2d1qN6yjUzBRMB0GA1UdDgQWBBTm0Sx9n1Xk
-----END CERTIFICATE-----
"""


@pytest.fixture
def ca_pem(tmp_path: Path) -> bytes:
    """A real CA certificate, made now (a made-up one would not load)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test BMC CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_error(value: str) -> str:
    with pytest.raises(InventoryError) as err:
        bmc_of("web-01", {**GOOD, "bmc_ca_file": value})
    msg = str(err.value)
    assert msg.startswith("web-01: inventory variable bmc_ca_file: ") and "\n" not in msg
    assert "s3cret-canary" not in msg
    return msg


def test_ca_file_is_resolved_to_an_absolute_path_and_read_once(
        tmp_path: Path, ca_pem: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pki"
    folder.mkdir(mode=0o700)
    (folder / "ca.pem").write_bytes(b"# the BMC's CA\n" + ca_pem)
    (folder / "ca.pem").chmod(0o644)
    (tmp_path / "link.pem").symlink_to(folder / "ca.pem")
    monkeypatch.chdir(tmp_path)
    for given in ("pki/ca.pem", "./pki/../pki/ca.pem", "link.pem", str(folder / "ca.pem")):
        b = bmc_of("web-01", {**GOOD, "bmc_ca_file": given})
        assert b.ca_file == str((folder / "ca.pem").resolve()), given
        assert b.ca_pem == ca_pem.decode().strip()
    assert "ca_pem" not in repr(b)


def test_a_ca_file_others_can_write_or_swap_is_refused(tmp_path: Path, ca_pem: bytes) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(ca_pem)
    ca.chmod(0o664)
    assert "writable by group or others (mode 0664)" in _ca_error(str(ca))
    assert "chmod go-w it" in _ca_error(str(ca))
    ca.chmod(0o644)
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # anyone can replace what is in it (not sticky)
    (open_folder / "ca.pem").write_bytes(ca_pem)
    assert "writable by group or others" in _ca_error(str(open_folder / "ca.pem"))
    if os.geteuid() == 0:
        os.chown(ca, 65534, 65534)
        assert "owned by uid 65534" in _ca_error(str(ca))


def test_a_ca_file_that_is_no_certificate_is_refused_without_hanging(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("hello\n")
    assert "holds no PEM certificate" in _ca_error(str(bad))
    bad.write_bytes(CA_PEM)  # PEM armour around garbage
    assert "holds a certificate that cannot be read" in _ca_error(str(bad))
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    assert "is not a regular file" in _ca_error(str(fifo))
    assert "is not a regular file" in _ca_error(str(tmp_path))
    assert "is not a readable file" in _ca_error(str(tmp_path / "missing.pem"))
