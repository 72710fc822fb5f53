"""Check mode under ansible-runner: the connection table forces the plugin, the
orchestrator's host-key policy is forced on every plugin, and a timeout leaves no process
behind (issue 8)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from orchestrator.execution.checkmode import run_check_mode
from orchestrator.execution.playbook import plugin_groups
from orchestrator.execution.workspace import MARKER, Workspace, ansible_env, host_key_vars


def test_each_host_runs_over_the_plugin_of_the_table() -> None:
    groups, refused = plugin_groups({
        "a": {}, "b": {"ansible_connection": "paramiko"},
        "c": {"ansible_connection": "ansible.builtin.paramiko_ssh"},
        "d": {"ansible_connection": "ansible.builtin.winrm"}, "e": {"ansible_connection": "local"},
        "f": {"ansible_connection": "community.docker.docker"},
        "g": {"ansible_connection": "psrp"}})
    # paramiko hosts go through OpenSSH, which reads the orchestrator's known_hosts files
    assert groups == {"ansible.builtin.ssh": ["a", "b", "c"], "ansible.builtin.winrm": ["d"],
                      "ansible.builtin.local": ["e"]}
    assert set(refused) == {"f", "g"}
    assert refused["f"].startswith("refused: ansible_connection "
                                   "'community.docker.docker' cannot be held to the "
                                   "orchestrator's host-key policy")
    assert plugin_groups(["x", "y"]) == ({"ansible.builtin.ssh": ["x", "y"]}, {})


def test_every_host_key_setting_is_forced() -> None:
    kh = [Path("/k/one"), Path("/k/two words")]
    forced = host_key_vars(kh, strict=True)
    for name in ("ansible_host_key_checking", "ansible_ssh_host_key_checking",
                 "ansible_paramiko_host_key_checking"):
        assert forced[name] is True, name
    assert forced["ansible_ssh_executable"] == "ssh"
    args = str(forced["ansible_ssh_args"])
    assert args.startswith("-o UserKnownHostsFile='/k/one /k/two words' "
                           "-o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null "
                           "-o VerifyHostKeyDNS=no")
    assert "StrictHostKeyChecking=accept-new" in str(host_key_vars(kh, False)["ansible_ssh_args"])
    env = ansible_env(kh)
    assert env["ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD"] == "False"
    assert env["ANSIBLE_PARAMIKO_RECORD_HOST_KEYS"] == "False"
    assert env["ANSIBLE_PARAMIKO_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True" and env["ANSIBLE_SSH_ARGS"] == args


def _with_cmdline(text: str) -> list[int]:
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd and int(pid) != os.getpid():
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(pid))
    return found


def test_a_timeout_ends_every_process_of_the_run(tmp_path: Path) -> None:
    """ansible-runner kills ansible-playbook's process group on a timeout; its workers make
    their own groups (setsid) and used to be left running."""
    playbook = tmp_path / "slow-check-mode.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.pause: {seconds: 120}\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"slow-01 ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    start = time.monotonic()
    result = run_check_mode(playbook, inventory, {"slow-01": {"ansible_connection": "local"}},
                            known_hosts=[], forks=1, timeout=4)
    assert time.monotonic() - start < 60
    assert result.broken is not None and "did not finish within 4 s" in result.broken
    deadline = time.monotonic() + 5
    while _with_cmdline(str(playbook)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _with_cmdline(str(playbook)) == []


def test_end_processes_spares_what_is_not_the_run(tmp_path: Path) -> None:
    import subprocess

    with Workspace() as ws:
        env = {**os.environ, MARKER: str(ws.path)}
        ours = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
        other = subprocess.Popen(["sleep", "60"], start_new_session=True)
        try:
            time.sleep(0.2)
            assert ws.processes() == [ours.pid]
            assert ws.end_processes() == [ours.pid]
            assert ours.wait(timeout=5) != 0
            assert other.poll() is None
        finally:
            for p in (ours, other):
                p.kill()
                p.wait()
