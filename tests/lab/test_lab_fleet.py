"""Acceptance of the lab against a running fleet (session fixture `lab_fleet`)."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

import yaml


def test_inventory_describes_every_host(lab_fleet):
    inv = yaml.safe_load(lab_fleet.inventory_path.read_text())
    linux = inv["all"]["children"]["lab_linux"]["hosts"]
    win = inv["all"]["children"]["lab_windows"]["hosts"]
    assert sorted(linux) == [h.name for h in lab_fleet.hosts]
    assert sorted(win) == ["lab-win-01"]
    h = linux["lab-01"]
    assert h["ansible_user"] == "root"
    assert "StrictHostKeyChecking=yes" in h["ansible_ssh_common_args"]
    assert {"bmc_address", "bmc_user", "bmc_password"} <= set(h)
    assert win["lab-win-01"]["ansible_winrm_transport"] == "ntlm"
    assert lab_fleet.inventory_path.stat().st_mode & 0o777 == 0o600
    addresses = [v["ansible_host"] for v in linux.values()]
    assert len(set(addresses)) == len(addresses)


def test_ansible_ping_with_strict_host_keys(lab_fleet):
    venv_bin = Path(lab_fleet.ansible_env()["PATH"].split(":")[0])
    proc = subprocess.run(
        [str(venv_bin / "ansible"), "-m", "ping", "lab_linux", "-i", str(lab_fleet.inventory_path)],
        capture_output=True, text=True, env=lab_fleet.ansible_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(lab_fleet.hosts)


def test_hosts_have_own_hostname_and_filesystem(lab_fleet):
    a, b = lab_fleet.shared_hosts[:2]
    lab_fleet.ssh(a, "echo from-a > /root/marker")
    assert lab_fleet.ssh(a, "hostname").stdout.strip() == a
    assert lab_fleet.ssh(b, "hostname").stdout.strip() == b
    assert lab_fleet.ssh(b, "test -e /root/marker", check=False).returncode == 1
    assert lab_fleet.ssh(a, "cat /root/marker").stdout.strip() == "from-a"
    # a PID namespace of its own: PID 1 is the lab supervisor, not the machine's init
    assert "supervisor.py" in lab_fleet.ssh(a, "cat /proc/1/cmdline").stdout


def test_changed_host_key_is_refused(lab_fleet, tmp_path):
    host = lab_fleet.hosts[0]
    other = (lab_fleet.host_dir(lab_fleet.hosts[1].name) / "keys/ssh_host_ed25519_key.pub")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.address} {' '.join(other.read_text().split()[:2])}\n")
    argv = [a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={kh}"
            for a in lab_fleet.ssh_argv(host.name)]
    proc = subprocess.run(argv + ["true"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in proc.stderr


def test_pending_security_and_ordinary_updates(lab_fleet):
    host = lab_fleet.shared_hosts[0]
    lab_fleet.ssh(host, "apt-get update -q")
    out = lab_fleet.ssh(host, "apt-get -s upgrade").stdout
    inst = {line.split()[1]: line for line in out.splitlines() if line.startswith("Inst ")}
    assert "bookworm-security" in inst["acme-tls"]
    assert "Acme-Security" in inst["acme-tls"]
    assert "bookworm-security" not in inst["acme-agent"] and "Acme:bookworm" in inst["acme-agent"]
    assert {"acme-kernel", "acme-broken"} <= set(inst)


def _redfish(lab, host, path, body=None):
    h = next(x for x in lab.hosts if x.name == host)
    ctx = ssl.create_default_context(cafile=str(lab.ca_path))  # verifies against the lab CA
    token = b64encode(f"admin:{lab.secrets['bmc_password']}".encode()).decode()
    req = urllib.request.Request(
        f"https://{h.bmc_address}{path}", method="POST" if body else "GET",
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)


def test_firmware_version_changes_after_simple_update(lab_fleet):
    a, b = lab_fleet.shared_hosts[:2]
    fw = "/redfish/v1/UpdateService/FirmwareInventory"
    _, coll = _redfish(lab_fleet, a, fw)
    assert {m["@odata.id"].rsplit("/", 1)[1] for m in coll["Members"]} >= {"BIOS", "BMC"}
    _, before = _redfish(lab_fleet, a, fw + "/BIOS")
    _, other_before = _redfish(lab_fleet, b, fw + "/BIOS")
    major, minor, patch = before["Version"].split(".")
    new = f"{major}.{int(minor) + 1}.{patch}"
    image = lab_fleet.firmware_image(f"bios-{new}-now.bin", "BIOS", new, seconds=0.5)
    action = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
    status, task = _redfish(lab_fleet, a, action, {"ImageURI": image, "Targets": [fw + "/BIOS"]})
    assert status == 202 and task["TaskState"] == "New"  # a task, as real BMCs answer
    for _ in range(100):
        status, task = _redfish(lab_fleet, a, task["TaskMonitor"])
        if status == 200:
            break
        time.sleep(0.1)
    assert task["TaskState"] == "Completed"
    assert _redfish(lab_fleet, a, fw + "/BIOS")[1]["Version"] == new
    assert _redfish(lab_fleet, b, fw + "/BIOS")[1]["Version"] == other_before["Version"]
    lab_fleet.restore_bmc(a)


def test_redfish_requires_credentials(lab_fleet):
    h = lab_fleet.hosts[0]
    ctx = ssl.create_default_context(cafile=str(lab_fleet.ca_path))
    try:
        urllib.request.urlopen(f"https://{h.bmc_address}/redfish/v1/Systems", context=ctx,
                               timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    else:
        raise AssertionError("Redfish answered without credentials")


def _winrm(lab):
    import winrm

    w = lab.windows_hosts[0]
    return winrm.Session(f"http://{w.address}:{w.port}/wsman", transport="ntlm",
                         auth=("Administrator", lab.secrets["win_password"]))


def test_pywinrm_runs_commands_against_recorded_state(lab_fleet):
    session = _winrm(lab_fleet)
    r = session.run_cmd("hostname")
    assert (r.status_code, r.std_out.strip()) == (0, b"LAB-WIN-01")
    state = lab_fleet.windows_state("lab-win-01")
    state["services"]["Spooler"]["Status"] = "Stopped"
    lab_fleet.set_windows_state("lab-win-01", state)
    r = session.run_ps("Get-Service -Name Spooler | ConvertTo-Json")
    assert r.status_code == 0 and json.loads(r.std_out)["Status"] == "Stopped"
    r = session.run_ps("Start-Service Spooler; (Get-Service Spooler).Status")
    assert lab_fleet.windows_state("lab-win-01")["services"]["Spooler"]["Status"] == "Running"
    r = session.run_ps("Get-Nonsense")
    assert r.status_code == 1 and b"is not recognized" in r.std_err


def test_winrm_rejects_wrong_password(lab_fleet):
    import pytest
    import winrm
    from winrm.exceptions import InvalidCredentialsError

    w = lab_fleet.windows_hosts[0]
    s = winrm.Session(f"http://{w.address}:{w.port}/wsman", transport="ntlm",
                      auth=("Administrator", "wrong"))
    with pytest.raises(InvalidCredentialsError):
        s.run_cmd("hostname")
