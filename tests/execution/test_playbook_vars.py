"""Text from hosts and policies reaches playbooks as data: extra variables are templated by
Ansible, so a package version `{{ lookup('pipe', ...) }}` must not run on the controller."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator.execution.playbook import run_playbook

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: show
      ansible.builtin.debug:
        msg: "{{ orchestrator_packages }}"
"""


def run(tmp_path: Path, value: str) -> list[dict]:
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    events: list[dict] = []
    outcome = run_playbook(tmp_path / "pb.yml", tmp_path / "inv.ini",
                           {"localhost": {"ansible_connection": "local"}},
                           event_handler=events.append, known_hosts=[], forks=1,
                           extravars={"orchestrator_packages": [{"name": "x", "version": value}],
                                      "count": 3, "nothing": None})
    assert outcome.rc == 0
    return [e["event_data"]["res"] for e in events if e.get("event") == "runner_on_ok"]


def test_host_text_in_extra_vars_is_never_templated(tmp_path: Path) -> None:
    mark = tmp_path / "PWNED"
    value = "{{ lookup('pipe', 'touch " + str(mark) + "') }}"
    [res] = run(tmp_path, value)
    assert res["msg"] == [{"name": "x", "version": value}]
    assert not mark.exists()


def test_the_guard_is_needed(tmp_path: Path) -> None:
    """Control: the same value given as a plain extra variable runs the command, so the test
    above can fail."""
    import ansible_runner

    mark = tmp_path / "PWNED"
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    (tmp_path / "rd").mkdir(mode=0o700)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ansible_runner.run(private_data_dir=str(tmp_path / "rd"), playbook=str(tmp_path / "pb.yml"),
                       inventory=str(tmp_path / "inv.ini"), quiet=True, envvars={"PATH": path},
                       extravars={"orchestrator_packages": [
                           {"version": "{{ lookup('pipe', 'touch " + str(mark) + "') }}"}]})
    assert mark.exists()


def test_plain_values_keep_their_type(tmp_path: Path) -> None:
    """Versions and words that look like numbers or booleans stay text ("1.10" is not 1.1)."""
    (tmp_path / "pb.yml").write_text("""\
- hosts: all
  gather_facts: false
  tasks:
    - name: show
      ansible.builtin.debug:
        msg: "{{ [v, t, e, n] | map('type_debug') | list + [v, t] }}"
""")
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    events: list[dict] = []
    run_playbook(tmp_path / "pb.yml", tmp_path / "inv.ini",
                 {"localhost": {"ansible_connection": "local"}}, event_handler=events.append,
                 known_hosts=[], forks=1, extravars={"v": "1.10", "t": "true", "e": "",
                                                     "n": None})
    [res] = [e["event_data"]["res"] for e in events if e.get("event") == "runner_on_ok"]
    assert res["msg"] == ["str", "str", "str", "NoneType", "1.10", "true"]
