"""Check mode against a local OpenSSH server: an ssh master made without host-key checking
(by the user's own Ansible, or at a path the inventory names) is never reused, the run's own
masters end with it, and no sftp or scp wrapper ever carries a module file (issue 8)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from sshd_server import Sshd, keygen, make_sshd

from orchestrator.execution.checkmode import run_check_mode

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: line is set
      ansible.builtin.lineinfile:
        path: {path}
        line: managed
        create: true
"""


@pytest.fixture
def sshd(tmp_path: Path):
    key = tmp_path / "client_ed25519"
    keygen(key)
    server = make_sshd(tmp_path, "127.0.0.3", key)
    yield server
    server.kill_all()


def _estate(tmp_path: Path, sshd: Sshd, hosts: dict[str, dict]) -> tuple[Path, Path, dict]:
    (tmp_path / "pb.yml").write_text(PLAYBOOK.format(path=tmp_path / "never-written"))
    common = sshd.host_vars(ansible_user="root", ansible_python_interpreter=sys.executable)
    merged = {name: {**common, **extra} for name, extra in hosts.items()}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": merged}}))
    return tmp_path / "pb.yml", inventory, merged


def _unchecked_master(sshd: Sshd, path: Path) -> None:
    """What an operator's ad-hoc run with host-key checking off leaves behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh", "-fN", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                    "-o", "ControlMaster=yes", "-o", "ControlPersist=120",
                    "-o", f"ControlPath={path}", "-i", str(sshd.client_key),
                    "-p", str(sshd.port), f"root@{sshd.address}"],
                   check=True, timeout=30, capture_output=True)
    assert path.is_socket()


def _exit_master(path: Path) -> None:
    subprocess.run(["ssh", "-F", "/dev/null", "-o", f"ControlPath={path}", "-O", "exit", "x"],
                   capture_output=True, timeout=10)


def test_no_master_made_without_host_key_checking_is_reused(sshd: Sshd, tmp_path: Path,
                                                            monkeypatch) -> None:
    """The reviewer's attack: live masters (StrictHostKeyChecking=no) at the path Ansible
    would use (~/.ansible/cp/<hash>) and at every path an inventory can choose; a host whose
    key is in no trusted known_hosts file must still be refused, not reached through them."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    masters = tmp_path / "m"
    user_dir = masters / "cpdir"
    digest = hashlib.sha1(f"{sshd.address}-{sshd.port}-root".encode()).hexdigest()[:10]
    paths = {"default": tmp_path / "home" / ".ansible" / "cp" / digest,
             "common-args": masters / "a", "control-path": masters / "b",
             "control-path-dir": user_dir / digest, "dash-s": masters / "c"}
    playbook, inventory, hosts = _estate(tmp_path, sshd, {
        "default": {},
        "common-args": {"ansible_ssh_common_args": f"-o ControlPath={paths['common-args']}"},
        "control-path": {"ansible_control_path": str(paths["control-path"])},
        "control-path-dir": {"ansible_control_path_dir": str(user_dir)},
        "dash-s": {"ansible_ssh_extra_args": f"-vS{paths['dash-s']}"}})
    for path in paths.values():
        _unchecked_master(sshd, path)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    try:
        result = run_check_mode(playbook, inventory, hosts, known_hosts=[empty], forks=5,
                                timeout=120)
    finally:
        for path in paths.values():
            _exit_master(path)
    assert result.changed == {} and result.ok_hosts == set(), result
    for name in ("default", "common-args", "control-path", "control-path-dir"):
        assert "No ED25519 host key is known" in result.unreachable[name], (name, result)
    assert result.unreachable["dash-s"].startswith(
        "check mode refused: ansible_ssh_extra_args gives ssh -S"), result
    assert not (tmp_path / "never-written").exists()
    assert empty.read_text() == ""


def _sessions(sshd: Sshd) -> list[int]:
    """The server's per-connection processes (children of the listener)."""
    assert sshd.proc is not None
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == sshd.proc.pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


def test_the_runs_masters_end_with_it(sshd: Sshd, tmp_path: Path, monkeypatch,
                                      ssh_clients) -> None:
    """ControlPersist masters rewrite their environment (process title), so the workspace
    marker cannot find them: they are closed through their sockets in the workspace."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    playbook, inventory, hosts = _estate(tmp_path, sshd, {"one": {}})
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    assert ssh_clients(sshd.address, sshd.port) == []
    result = run_check_mode(playbook, inventory, hosts, known_hosts=[known], forks=1,
                            timeout=120)
    assert [c["task"] for c in result.changed["one"]] == ["line is set"], result
    assert ssh_clients(sshd.address, sshd.port) == []  # no ssh of ours holds a connection
    deadline = time.monotonic() + 5
    while _sessions(sshd) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sessions(sshd) == []


def test_module_files_never_go_through_sftp_or_scp(sshd: Sshd, tmp_path: Path) -> None:
    """An inventory's sftp/scp executable (or `-S program` in their extra args) could drop
    our -o options and send module files to an unverified host: files go over ssh itself."""
    log = tmp_path / "wrapper-called"
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$0 $@" >> {log}
        exec "$(basename "$0" | sed 's/^wrap-//')" "$@"
        """))
    for name in ("wrap-sftp", "wrap-scp", "wrap-ssh"):
        (tmp_path / name).symlink_to(wrapper)
    wrapper.chmod(0o755)
    playbook, inventory, hosts = _estate(tmp_path, sshd, {"one": {
        "ansible_sftp_executable": str(tmp_path / "wrap-sftp"),
        "ansible_scp_executable": str(tmp_path / "wrap-scp"),
        "ansible_sftp_extra_args": f"-S {tmp_path / 'wrap-ssh'}",
        "ansible_scp_extra_args": f"-S {tmp_path / 'wrap-ssh'}",
        "ansible_ssh_transfer_method": "sftp", "ansible_pipelining": False}})
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    result = run_check_mode(playbook, inventory, hosts, known_hosts=[known], forks=1,
                            timeout=120)
    assert not log.exists(), log.read_text()  # neither wrapper ever ran
    assert [c["task"] for c in result.changed["one"]] == ["line is set"], result
