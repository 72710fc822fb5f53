"""Check mode against a lab host: no inventory setting or play keyword switches off the
orchestrator's host-key policy, whichever connection plugin it names (issue 8)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.execution.checkmode import run_check_mode

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  {connection}
  tasks:
    - name: login banner is set
      ansible.builtin.lineinfile:
        path: /etc/issue.net
        line: Authorized use only
"""


def _estate(tmp_path: Path, lab, name: str, connection_var: str, play_keyword: str,
            password: bool = True) -> Path:
    host = next(h for h in lab.hosts if h.name == name)
    (tmp_path / "banner.yml").write_text(PLAYBOOK.format(connection=play_keyword))
    (tmp_path / "inventory.yml").write_text(textwrap.dedent(f"""\
        all:
          hosts:
            {name}:
              ansible_host: {host.address}
              ansible_port: {host.port}
              ansible_user: root
              {"ansible_password: not-the-password" if password else ""}
              ansible_ssh_private_key_file: {lab.ssh_key_path}
              ansible_python_interpreter: /usr/bin/python3
              {connection_var}
              ansible_host_key_checking: false
              ansible_paramiko_host_key_checking: false
              ansible_ssh_host_key_checking: false
        """))
    return tmp_path


CASES = [("ansible_connection: paramiko", "", True),
         ("ansible_connection: ansible.builtin.paramiko_ssh", "", False),
         ("", "connection: paramiko", True)]


@pytest.mark.parametrize(("connection_var", "play_keyword", "password"), CASES,
                         ids=["paramiko-password", "fqcn-key", "play-keyword"])
def test_unknown_host_key_is_refused_whatever_the_plugin(lab_fleet, lab_fresh_host,
                                                         tmp_path: Path, connection_var: str,
                                                         play_keyword: str,
                                                         password: bool) -> None:
    """The issue's case: paramiko, host-key checking off in the inventory, a password, a
    host whose key is in no known_hosts file the orchestrator trusts."""
    cwd = _estate(tmp_path, lab_fleet, lab_fresh_host, connection_var, play_keyword, password)
    empty = cwd / "empty_known_hosts"
    empty.write_text("")
    home_known = Path("~/.ssh/known_hosts").expanduser()
    before = home_known.read_bytes() if home_known.exists() else None
    vars_ = {"ansible_connection": connection_var.split(": ")[1]} if connection_var else {}
    result = run_check_mode(cwd / "banner.yml", cwd / "inventory.yml",
                            {lab_fresh_host: vars_}, known_hosts=[empty], forks=1, timeout=120)
    # refused before any task ran: unreachable (key auth) or the task failed (with a
    # password, Ansible's ssh plugin refuses an unknown key before connecting)
    why = " ".join([result.unreachable.get(lab_fresh_host, ""),
                    *result.failed.get(lab_fresh_host, [])]).lower()
    assert "host key" in why or "known_hosts" in why, result
    assert lab_fresh_host not in result.changed and lab_fresh_host not in result.ok_hosts
    assert empty.read_text() == ""  # nothing learnt
    assert (home_known.read_bytes() if home_known.exists() else None) == before


def test_a_known_host_is_reached_over_the_forced_plugin(lab_fleet, lab_fresh_host,
                                                        tmp_path: Path) -> None:
    """The control: the same paramiko host with its key in the configured known_hosts is
    reached (through OpenSSH, with the orchestrator's files) and its drift found."""
    cwd = _estate(tmp_path, lab_fleet, lab_fresh_host, "ansible_connection: paramiko", "")
    result = run_check_mode(cwd / "banner.yml", cwd / "inventory.yml",
                            {lab_fresh_host: {"ansible_connection": "paramiko"}},
                            known_hosts=[lab_fleet.known_hosts_path], forks=1, timeout=120)
    assert result.unreachable == {} and result.failed == {}, result
    assert [c["task"] for c in result.changed[lab_fresh_host]] == ["login banner is set"]


def test_no_ssh_master_of_the_run_outlives_it(lab_fleet, tmp_path: Path, ssh_clients) -> None:
    """ControlPersist masters rewrite their environment (process title), so the workspace
    marker cannot find them; they used to stay up to 60 s after the run, for the next run
    or the user's own Ansible to reuse."""
    hosts = [h for h in lab_fleet.hosts if h.name in lab_fleet.shared_hosts][:2]
    (tmp_path / "stat.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: passwd is there\n      ansible.builtin.stat: {path: /etc/passwd}\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n" + "".join(
        f"    {h.name}: {{ansible_host: {h.address}, ansible_port: {h.port}, "
        f"ansible_user: root, ansible_ssh_private_key_file: {lab_fleet.ssh_key_path}, "
        f"ansible_python_interpreter: /usr/bin/python3}}\n" for h in hosts))
    assert [p for h in hosts for p in ssh_clients(h.address, h.port)] == []
    result = run_check_mode(tmp_path / "stat.yml", inventory, {h.name: {} for h in hosts},
                            known_hosts=[lab_fleet.known_hosts_path], forks=2, timeout=120)
    assert result.ok_hosts == {h.name for h in hosts}, result
    assert [p for h in hosts for p in ssh_clients(h.address, h.port)] == []
