"""`firmware scan` against the lab's BMCs over Redfish: installed against wanted per component,
the exit codes, and the BMC faults a scan must name (credentials refused, BMC unreachable, a
certificate that does not verify), with the password never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fwlab import inventory_copy, policy_text, workdir

from orchestrator.cli.main import main

COMPONENTS = [{"match": "BIOS", "version": "2.19.1", "image": "http://repo/bios-2.19.1.bin"},
              {"match": "NIC*", "version": "22.31.6", "image": "http://repo/nic-22.31.6.bin"},
              {"match": "CPLD", "version": "1.0", "image": "http://repo/cpld-1.0.bin"}]


def scan(capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", "firmware", "scan", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out)


@pytest.fixture
def two(lab_fleet):
    return [h.name for h in lab_fleet.linux_hosts[:2]]


def test_scan_reports_each_component_and_exit_codes(lab_fleet, two, tmp_path, monkeypatch,
                                                    capsys):
    lab = lab_fleet
    monkeypatch.chdir(workdir(tmp_path, lab, policy_text(COMPONENTS[:2], hosts=two)))
    versions = {h: lab.firmware(h)["BIOS"]["Version"] for h in two}
    code, got = scan(capsys)
    by = {h["host"]: h for h in got["hosts"]}
    assert set(by) == set(two)
    for h in two:
        comps = {c["id"]: c for c in by[h]["components"]}
        assert comps["BIOS"]["installed"] == versions[h]
        assert comps["NIC"]["status"] == ("current" if lab.firmware(h)["NIC"]["Version"]
                                          == "22.31.6" else comps["NIC"]["status"])
        assert by[h]["powerState"] in ("On", "Off") and by[h]["method"] == "redfish"
    outdated = any(c["status"] == "outdated" for h in got["hosts"] for c in h["components"])
    assert code == (2 if outdated else 0)
    # a component the BMC does not have: unknown, the scan is incomplete (4)
    (tmp_path / "policies" / "fw.yml").write_text(policy_text(
        [{**COMPONENTS[0], "version": versions[two[0]]}, COMPONENTS[2]], hosts=two[:1]))
    code, got = scan(capsys)
    assert code == 4 and got["hosts"][0]["status"] == "unknown"
    assert [c["status"] for c in got["hosts"][0]["components"]] == ["current", "unknown"]
    # every scan is new records: firmware.scan per host
    capsys.readouterr()
    assert main(["--format", "json", "log", "--action", "firmware.scan"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr()[0].splitlines()]
    assert len(recs) == 3 and recs[-1]["host"] == two[0]


def test_refused_credentials_unreachable_and_bad_certificate(lab_fleet, two, tmp_path,
                                                             monkeypatch, capsys):
    lab = lab_fleet
    password = lab.secrets["bmc_password"]
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text((Path(__file__).parent / "data" / "other-ca.pem").read_text())
    inv = inventory_copy(lab, tmp_path / "inv.yml", hosts={
        two[0]: {"bmc_password": "wrong-" + password},
        two[1]: {"bmc_ca_file": str(other_ca)},
        lab.linux_hosts[2].name: {"bmc_address": "127.0.0.1:9"},
    })
    hosts = two + [lab.linux_hosts[2].name]
    monkeypatch.chdir(workdir(tmp_path, lab, policy_text(COMPONENTS[:1], hosts=hosts), inv))
    capsys.readouterr()
    code = main(["--verbose", "firmware", "scan"])
    out, err = capsys.readouterr()
    assert code == 4
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.split()[1:2] and
             ln.split()[1] in hosts}
    assert "refused the credentials (HTTP 401); check bmc_user and bmc_password" \
        in lines[two[0]]
    assert "TLS failed" in lines[two[1]] and "bmc_ca_file" in lines[two[1]]
    assert "UNREACHABLE" in lines[hosts[2]] and "connection refused" in lines[hosts[2]]
    assert password not in out + err and "wrong-" not in out + err
    for f in tmp_path.glob("state.db*"):
        assert password.encode() not in f.read_bytes()


def test_password_from_an_environment_variable_the_inventory_names(lab_fleet, two, tmp_path,
                                                                   monkeypatch, capsys):
    lab = lab_fleet
    inv = inventory_copy(lab, tmp_path / "inv.yml",
                         every={"bmc_password": "{{ lookup('env', 'LAB_BMC_PASSWORD') }}"})
    monkeypatch.chdir(workdir(tmp_path, lab, policy_text(COMPONENTS[:1], hosts=two[:1]), inv))
    monkeypatch.setenv("LAB_BMC_PASSWORD", lab.secrets["bmc_password"])
    code, got = scan(capsys)
    assert got["hosts"][0]["status"] in ("compliant", "outdated"), got
    monkeypatch.setenv("LAB_BMC_PASSWORD", "")
    code, got = scan(capsys)
    assert code == 4 and "bmc_password is not set or empty" in got["hosts"][0]["error"]
