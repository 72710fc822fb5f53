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
from orchestrator.execution.workspace import (
    MARKER,
    Workspace,
    ansible_env,
    host_key_vars,
    ssh_args,
    ssh_socket_flag,
)


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


def test_an_ssh_host_whose_args_give_a_control_socket_is_refused() -> None:
    """ssh's -S replaces every earlier ControlPath, ours too: a master another ssh made
    without host-key checking would carry the session."""
    groups, refused = plugin_groups({
        "a": {"ansible_ssh_common_args": "-o ProxyJump=bastion -S /tmp/m"},
        "b": {"ansible_ssh_extra_args": "-vS/tmp/m"},
        "c": {"ansible_ssh_common_args": "-o ControlPath=/tmp/m -o ControlMaster=auto"},
        "d": {"ansible_connection": "winrm", "ansible_ssh_common_args": "-S /tmp/m"}})
    assert groups == {"ansible.builtin.ssh": ["c"], "ansible.builtin.winrm": ["d"]}
    assert refused["a"].startswith("refused: ansible_ssh_common_args gives ssh -S")
    assert refused["b"].startswith("refused: ansible_ssh_extra_args gives ssh -S")


def test_ssh_socket_flag_reads_words_like_getopt() -> None:
    held = ["-S /x", "-S/x", "-vS /x", "-CvS/x", "-o BatchMode=yes -S /x", "host -S /x",
            "-p 22 -S /x", "-o 'unbalanced"]
    free = ["", "-o ControlPath=/x", "-oControlPath=/x -J jump", "-o -S", "-o'ProxyCommand=ssh "
            "-S /x -W %h:%p j'", "-i /k/-S", "-l -S", "-pS", "-vvv -C -M", "-F /cfg"]
    assert [a for a in held if not ssh_socket_flag(a)] == []
    assert [a for a in free if ssh_socket_flag(a)] == []


def test_control_sockets_are_kept_in_the_run_workspace() -> None:
    """Ansible's default ControlPath (~/.ansible/cp, shared with the user's own runs) or one
    the inventory names could hold a master made without host-key checking: ours comes first
    (OpenSSH takes an option's first value) and names the run's private folder."""
    cp = Path("/tmp/orchestrator-run-abcd1234/cp")
    args = ssh_args([Path("/k")], True, cp)
    assert args.startswith(f"-o ControlPath={cp}/%C -o UserKnownHostsFile=/k ")
    assert args.endswith("-o ControlMaster=auto -o ControlPersist=60s")
    forced = host_key_vars([Path("/k")], True, cp)
    env = ansible_env([Path("/k")], True, cp)
    assert forced["ansible_ssh_args"] == env["ANSIBLE_SSH_ARGS"] == args
    assert forced["ansible_control_path_dir"] == env["ANSIBLE_SSH_CONTROL_PATH_DIR"] == str(cp)
    assert forced["ansible_control_path"] == env["ANSIBLE_SSH_CONTROL_PATH"]
    assert forced["ansible_control_path"] % {"directory": cp} == f"{cp}/%C"  # as Ansible does
    with Workspace() as ws:
        assert ws.extravars([])["ansible_ssh_args"] == ssh_args([], True, ws.control_dir)
        assert ws.env([])["ANSIBLE_SSH_ARGS"].startswith(f"-o ControlPath={ws.path}/cp/%C ")
        assert ws.control_dir.stat().st_mode & 0o777 == 0o700


def test_multiplexing_is_off_when_the_socket_path_would_be_too_long(tmp_path: Path) -> None:
    long = tmp_path / ("x" * 80)
    for args in (ssh_args([], True, long), ssh_args([], True, None)):
        assert args.startswith("-o ControlPath=none ")
        assert args.endswith("-o ControlMaster=no") and "ControlPersist" not in args


def test_files_go_over_ssh_never_through_sftp_or_scp() -> None:
    """An inventory's sftp/scp executable or `-S program` in their extra args could drop our
    options: files are sent with dd over the verified ssh session."""
    forced, env = host_key_vars([]), ansible_env([])
    assert forced["ansible_ssh_transfer_method"] == env["ANSIBLE_SSH_TRANSFER_METHOD"] == "piped"
    assert forced["ansible_sftp_executable"] == env["ANSIBLE_SFTP_EXECUTABLE"] == "sftp"
    assert forced["ansible_scp_executable"] == env["ANSIBLE_SCP_EXECUTABLE"] == "scp"


def test_every_host_key_setting_is_forced() -> None:
    kh = [Path("/k/one"), Path("/k/two words")]
    forced = host_key_vars(kh, strict=True)
    for name in ("ansible_host_key_checking", "ansible_ssh_host_key_checking",
                 "ansible_paramiko_host_key_checking"):
        assert forced[name] is True, name
    assert forced["ansible_ssh_executable"] == "ssh"
    args = str(forced["ansible_ssh_args"])
    assert args.startswith("-o ControlPath=none -o UserKnownHostsFile='/k/one /k/two words' "
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


def test_end_processes_finds_an_ssh_master_by_its_socket(tmp_path: Path) -> None:
    """An ssh master's process title overwrites its environment, marker included; it still
    names its socket in the workspace."""
    import subprocess

    with Workspace() as ws:
        title = f"ssh: {ws.control_dir}/0123abcd [mux]"
        master = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", title],
                                  env={"PATH": os.environ["PATH"]}, start_new_session=True)
        try:
            time.sleep(0.2)
            assert ws.processes() == [master.pid]
            assert ws.end_processes() == [master.pid]
            assert master.wait(timeout=5) != 0
        finally:
            master.kill()
            master.wait()
