"""The molecule scenarios of the shipped Linux playbooks (playbooks/molecule/{apt,dnf,zypper}:
molecule's `default` driver with managed: false, i.e. delegated to lab hosts): prepare,
converge (a pinned approved set, reboot ifNeeded), idempotence (the second converge changes
nothing), verify (versions, the reboot, the cleared signal), each against a fresh lab host."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from playbook_helpers import PLAYBOOKS, boot_id, molecule_env

PHASES = ["prepare", "converge", "idempotence", "verify"]
MOLECULE_TIMEOUT = 600


@pytest.mark.parametrize(("scenario", "fresh", "group"), [
    ("apt", "lab_fresh_host", "lab_linux"),
    ("dnf", "lab_fresh_rpm_host", "lab_rpm"),
    ("zypper", "lab_fresh_zypper_host", "lab_zypper"),
])
def test_molecule_scenario(lab_fleet, request, tmp_path, ssh_control, scenario, fresh,
                           group) -> None:
    host = request.getfixturevalue(fresh)
    lab_inventory = yaml.safe_load(lab_fleet.inventory_path.read_text())
    entry = lab_inventory["all"]["children"][group]["hosts"][host]
    assert "StrictHostKeyChecking=yes" in entry["ansible_ssh_common_args"]
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": {host: entry}}}}}))
    inventory.chmod(0o600)
    boot = boot_id(lab_fleet, host)

    env = molecule_env(lab_fleet, tmp_path, inventory, ssh_control)
    proc = subprocess.run(["molecule", "test", "-s", scenario], cwd=PLAYBOOKS, env=env,
                          capture_output=True, text=True, timeout=MOLECULE_TIMEOUT)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-4000:]
    for phase in PHASES:  # molecule's summary: "apt > converge: ..." ("➜" on a terminal)
        assert re.search(rf"^{scenario} (>|➜) {phase}: Executed: Successful$", out, re.M), \
            out[-4000:]
    assert re.search(rf"^{scenario}\s*: actions=4\s+successful=4 .*failed=0", out, re.M), \
        out[-2000:]
    # the converge really worked on this host (through the inventory written here)
    assert boot_id(lab_fleet, host) != boot
    # molecule's ansible.cfg turns host-key checking off unless the scenario turns it on
    cfg = (tmp_path / "ephemeral" / "ansible.cfg").read_text()
    assert "host_key_checking = True" in cfg


def test_molecule_redfish_scenario(lab_fleet, tmp_path, ssh_control) -> None:
    """firmware-redfish.yml: converge flashes the NIC through the BMC (task followed to its
    end), idempotence flashes nothing, verify reads the version back."""
    host = lab_fleet.linux_hosts[0].name
    lab_fleet.restore_bmc(host)
    lab_inventory = yaml.safe_load(lab_fleet.inventory_path.read_text())
    entry = dict(lab_inventory["all"]["children"]["lab_linux"]["hosts"][host])
    entry.update(molecule_firmware_base=lab_fleet.firmware_url("x.bin").rsplit("/", 1)[0],
                 orchestrator_firmware_poll=1)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "lab_linux": {"hosts": {host: entry}}}}}))
    inventory.chmod(0o600)
    env = molecule_env(lab_fleet, tmp_path, inventory, ssh_control)
    try:
        proc = subprocess.run(["molecule", "test", "-s", "redfish"], cwd=PLAYBOOKS, env=env,
                              capture_output=True, text=True, timeout=MOLECULE_TIMEOUT)
        out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        assert proc.returncode == 0, out[-4000:]
        for phase in ("converge", "idempotence", "verify"):
            assert re.search(rf"^redfish (>|➜) {phase}: Executed: Successful$", out, re.M), \
                out[-4000:]
        assert lab_fleet.firmware(host)["NIC"]["Version"] == "22.41.0"
        assert [t["components"] for t in lab_fleet.firmware_tasks(host)] == [["NIC"]]
    finally:
        lab_fleet.restore_bmc(host)
