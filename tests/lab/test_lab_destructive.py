"""Tests that change a host: each gets a freshly reset host (`lab_fresh_host`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

PLAYBOOK = """
- hosts: {host}
  gather_facts: false
  tasks:
    - ansible.builtin.apt: {{name: acme-kernel, state: latest, update_cache: true}}
    - ansible.builtin.stat: {{path: /var/run/reboot-required}}
      register: flag
    - ansible.builtin.assert: {{that: flag.stat.exists}}
    - ansible.builtin.reboot: {{reboot_timeout: 60}}
      register: rebooted
    - ansible.builtin.assert: {{that: rebooted.rebooted}}
"""


def test_update_needing_reboot_and_reboot_module(lab_fleet, lab_fresh_host, tmp_path):
    host = lab_fresh_host
    boot_before = lab_fleet.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout
    book = tmp_path / "reboot.yml"
    book.write_text(PLAYBOOK.format(host=host))
    env = lab_fleet.ansible_env()
    venv_bin = Path(env["PATH"].split(":")[0])
    proc = subprocess.run([str(venv_bin / "ansible-playbook"), "-i", str(lab_fleet.inventory_path),
                           str(book)], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-1000:]
    assert lab_fleet.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout != boot_before
    # a reboot clears /run (and with it /var/run/reboot-required)
    assert lab_fleet.ssh(host, "test -e /var/run/reboot-required", check=False).returncode == 1
    assert lab_fleet.ssh(host, "dpkg-query -W -f '${Version}' acme-kernel").stdout == "1.1"


def test_broken_postinst_fails(lab_fleet, lab_fresh_host):
    host = lab_fresh_host
    lab_fleet.ssh(host, "apt-get update -q")
    proc = lab_fleet.ssh(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y acme-broken",
                         check=False)
    assert proc.returncode != 0
    assert "postinst refuses" in proc.stdout + proc.stderr


def test_fresh_host_forgets_changes(lab_fleet, lab_fresh_host):
    lab_fleet.ssh(lab_fresh_host, "touch /etc/scribble")
    lab_fleet.reset_host(lab_fresh_host)
    assert lab_fleet.ssh(lab_fresh_host, "test -e /etc/scribble", check=False).returncode == 1


def test_killed_sshd_stays_down(lab_fleet, lab_fresh_host):
    lab_fleet.kill_sshd(lab_fresh_host)
    st = {h["name"]: h for h in lab_fleet.status()["hosts"]}[lab_fresh_host]
    assert st["up"] and not st["ssh"]
