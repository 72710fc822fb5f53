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
    assert out, err
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


def test_a_vaulted_bmc_password_for_scan_and_apply(lab_fleet, two, tmp_path):
    """The BMC password as an `ansible-vault encrypt_string` value in the inventory: the scan
    (our client) and the apply (ansible-runner) both decrypt it with the vault password file
    Ansible is configured with, and neither shows it."""
    import os
    import subprocess
    import sys

    from fwlab import FAST

    lab, host = lab_fleet, two[0]
    lab.restore_bmc(host)
    password = lab.secrets["bmc_password"]
    (tmp_path / "vault-pass").write_text("lab-vault-pass\n")
    vault = Path(sys.executable).parent / "ansible-vault"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANSIBLE_VAULT")}
    vaulted = subprocess.run([str(vault), "encrypt_string", "--vault-password-file",
                              str(tmp_path / "vault-pass"), "--stdin-name", "bmc_password"],
                             input=password, check=True, capture_output=True, text=True,
                             env=env).stdout
    inv = inventory_copy(lab, tmp_path / "inv.yml", every={**FAST, "bmc_password": None})
    # the vaulted value goes into the host's own variables (a host_vars file beside it)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / f"{host}.yml").write_text(vaulted)
    image = lab.firmware_image("t-nic-vault.bin", "NIC", "22.41.0", seconds=1)
    workdir(tmp_path / "w", lab, policy_text(
        [{"match": "NIC", "version": "22.41.0", "image": image}], hosts=[host]), inv)
    # a process of its own: Ansible reads its vault settings once, when it is first imported
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(tmp_path / "vault-pass")
    orchestrator = Path(sys.executable).parent / "orchestrator"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(orchestrator), "--format", "json", *args], env=env,
                              cwd=tmp_path / "w", capture_output=True, text=True, timeout=300)

    got = run("firmware", "scan")
    assert got.returncode == 2, got.stderr
    assert json.loads(got.stdout)["hosts"][0]["status"] == "outdated"
    done = run("firmware", "apply", "--group", "fw")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["hosts"][0]["status"] == "done"
    assert lab.firmware(host)["NIC"]["Version"] == "22.41.0"
    assert password not in got.stdout + got.stderr + done.stdout + done.stderr
    lab.restore_bmc(host)
