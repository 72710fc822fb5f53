"""The RPM flavours: real dnf and zypper against the lab's signed RPM repository with
updateinfo.xml (advisory types, severities, issued dates), a failing package and one that
makes the host ask for a reboot."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml


def _rpm_host(lab) -> str:
    return lab.rpm_hosts[-1].name


def _zypper_host(lab) -> str:
    return lab.zypper_hosts[-1].name


def test_inventory_groups_of_the_flavours(lab_fleet):
    groups = yaml.safe_load(lab_fleet.inventory_path.read_text())["all"]["children"]
    assert sorted(groups["lab_rpm"]["hosts"]) == [h.name for h in lab_fleet.rpm_hosts]
    assert sorted(groups["lab_zypper"]["hosts"]) == [h.name for h in lab_fleet.zypper_hosts]
    assert sorted(groups["lab_linux"]["hosts"]) == [h.name for h in lab_fleet.hosts]
    assert all(h.name.startswith("lab-rpm-") for h in lab_fleet.rpm_hosts)
    rpm = groups["lab_rpm"]["hosts"][_rpm_host(lab_fleet)]
    assert "StrictHostKeyChecking=yes" in rpm["ansible_ssh_common_args"] and "bmc_address" in rpm


def test_package_manager_detection_picks_dnf_and_zypper(lab_fleet):
    rpm, zyp = _rpm_host(lab_fleet), _zypper_host(lab_fleet)
    probe = "command -v apt-get dpkg-query dpkg dnf zypper; . /etc/os-release; echo ID=$ID"
    assert lab_fleet.ssh(rpm, probe, check=False).stdout.split() == ["/usr/bin/dnf", "ID=acme"]
    assert lab_fleet.ssh(zyp, probe, check=False).stdout.split() == ["/usr/bin/zypper",
                                                                      "ID=acme-sles"]
    env = lab_fleet.ansible_env()
    venv_bin = Path(env["PATH"].split(":")[0])
    proc = subprocess.run(
        [str(venv_bin / "ansible"), f"{rpm}:{zyp}", "-i", str(lab_fleet.inventory_path),
         "-m", "ansible.builtin.setup", "-a", "filter=ansible_pkg_mgr"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = dict(re.findall(r'^(\S+) \| SUCCESS.*?"ansible_pkg_mgr": "(\w+)"', proc.stdout,
                            re.S | re.M))
    assert found == {rpm: "dnf", zyp: "zypper"}


def test_dnf_check_update_lists_the_pending_updates(lab_fleet):
    host = _rpm_host(lab_fleet)
    proc = lab_fleet.ssh(host, "dnf -q check-update", check=False)
    assert proc.returncode == 100, proc.stderr  # 100: updates available
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line}
    assert rows == {"acme-agent.noarch": ["1.1-1", "lab"], "acme-broken.noarch": ["1.1-1", "lab"],
                    "acme-kernel.noarch": ["1.1-1", "lab"],
                    "acme-tls.noarch": ["1.0+sec1-1", "lab"]}


def test_dnf_updateinfo_shows_types_severity_and_dates(lab_fleet):
    host = _rpm_host(lab_fleet)
    listing = lab_fleet.ssh(host, "dnf -q updateinfo list --updates").stdout.split("\n")
    assert [line.split() for line in listing if line] == [
        ["ACME-BA-2026-0002", "bugfix", "acme-agent-1.1-1.noarch"],
        ["ACME-EA-2026-0003", "enhancement", "acme-kernel-1.1-1.noarch"],
        ["ACME-SA-2026-0001", "Important/Sec.", "acme-tls-1.0+sec1-1.noarch"]]
    info = lab_fleet.ssh(host, "dnf -q updateinfo info ACME-SA-2026-0001").stdout
    fields = dict(re.findall(r"^\s*([A-Za-z ]+): (.*)$", info, re.M))
    assert (fields["Type"], fields["Severity"], fields["Updated"], fields["CVEs"]) == (
        "security", "Important", "2026-01-12 00:00:00", "CVE-LAB-1")


def test_dnf_failing_package_and_reboot_signal(lab_fleet, lab_fresh_rpm_host, lab_reboot):
    host = lab_fresh_rpm_host
    broken = lab_fleet.ssh(host, "dnf -y install acme-broken-1.1", check=False)
    assert broken.returncode == 1
    assert "Error in PREIN scriptlet in rpm package acme-broken" in broken.stderr
    assert lab_fleet.ssh(host, "rpm -q acme-broken").stdout.strip() == "acme-broken-1.0-1.noarch"

    assert lab_fleet.ssh(host, "dnf needs-restarting -r", check=False).returncode == 0
    lab_fleet.ssh(host, "dnf -y -q upgrade acme-kernel")
    # the boot time must not move when the kernel drops its cached /proc inodes
    Path("/proc/sys/vm/drop_caches").write_text("2\n")
    needs = lab_fleet.ssh(host, "dnf needs-restarting -r", check=False)
    assert needs.returncode == 1 and "* acme-kernel" in needs.stdout
    lab_reboot(host)
    # a reboot is a new /proc: the boot time needs-restarting reads is after the update now
    after = lab_fleet.ssh(host, "dnf needs-restarting -r", check=False)
    assert after.returncode == 0, after.stdout
    assert lab_fleet.ssh(host, "rpm -q acme-kernel").stdout.strip() == "acme-kernel-1.1-1.noarch"


def test_dnf_checks_package_signatures(lab_fleet, lab_fresh_rpm_host):
    host = lab_fresh_rpm_host
    assert "gpgcheck=1" in lab_fleet.ssh(host, "cat /etc/yum.repos.d/lab.repo").stdout
    lab_fleet.ssh(host, "rpm -e $(rpm -q gpg-pubkey) && rm /etc/pki/rpm-gpg/RPM-GPG-KEY-lab")
    proc = lab_fleet.ssh(host, "dnf -y install acme-extra", check=False)
    assert proc.returncode == 1
    assert "GPG" in proc.stdout + proc.stderr
    assert lab_fleet.ssh(host, "rpm -q acme-extra", check=False).returncode == 1


def test_zypper_lists_patches_and_updates(lab_fleet):
    host = _zypper_host(lab_fleet)
    lab_fleet.ssh(host, "zypper -n -q refresh")
    patches = ET.fromstring(lab_fleet.ssh(host, "zypper -n --xmlout list-patches").stdout)
    got = {u.get("name"): (u.get("category"), u.get("severity"), u.get("status"),
                           u.find("issue-date").get("text"))
           for u in patches.iter("update")}
    assert got == {
        "ACME-SA-2026-0001": ("security", "important", "needed", "2026-01-12T00:00:00Z"),
        "ACME-BA-2026-0002": ("bugfix", "", "needed", "2026-02-02T00:00:00Z"),
        "ACME-EA-2026-0003": ("enhancement", "", "optional", "2026-02-16T00:00:00Z")}
    updates = ET.fromstring(lab_fleet.ssh(host, "zypper -n --xmlout list-updates").stdout)
    assert {u.get("name"): (u.get("edition-old"), u.get("edition"))
            for u in updates.iter("update")} == {
        "acme-agent": ("1.0-1", "1.1-1"), "acme-broken": ("1.0-1", "1.1-1"),
        "acme-kernel": ("1.0-1", "1.1-1"), "acme-tls": ("1.0-1", "1.0+sec1-1")}


def test_zypper_failing_package_and_reboot_signal(lab_fleet, lab_fresh_zypper_host, lab_reboot):
    host = lab_fresh_zypper_host
    broken = lab_fleet.ssh(host, "zypper -n install acme-broken-1.1", check=False)
    assert broken.returncode == 8  # ZYPPER_EXIT_ERR_COMMIT
    assert "acme-broken: %pre refuses to install" in broken.stdout + broken.stderr
    assert lab_fleet.ssh(host, "rpm -q acme-broken").stdout.strip() == "acme-broken-1.0-1.noarch"
    assert lab_fleet.ssh(host, "zypper needs-rebooting", check=False).returncode == 0
    update = lab_fleet.ssh(host, "zypper -n update acme-kernel")
    assert "Alien" not in update.stdout + update.stderr  # Debian's rpm warning is switched off
    assert lab_fleet.ssh(host, "zypper needs-rebooting", check=False).returncode == 102
    lab_reboot(host)
    assert lab_fleet.ssh(host, "zypper needs-rebooting", check=False).returncode == 0


def test_zypper_refuses_a_tampered_repository(lab_fleet, lab_fresh_zypper_host, repo_copy):
    host = lab_fresh_zypper_host
    address, _ = lab_fleet.repo_address

    def refresh(port: int) -> subprocess.CompletedProcess:
        lab_fleet.ssh(host, f"sed -i 's#^baseurl=.*#baseurl=http://{address}:{port}/rpm/#' "
                            "/etc/zypp/repos.d/lab.repo")
        return lab_fleet.ssh(host, "zypper -n refresh -f", check=False)

    _, port = repo_copy()
    assert refresh(port).returncode == 0
    folder, port = repo_copy()
    repomd = folder / "rpm" / "repodata" / "repomd.xml"
    repomd.write_text(repomd.read_text().replace("<revision>", "<revision>6", 1))
    proc = refresh(port)
    assert proc.returncode != 0
    assert "Signature verification failed" in proc.stdout + proc.stderr
