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


def test_a_list_shared_by_several_hosts_reaches_each_of_them(tmp_path: Path) -> None:
    """One list object under several hosts' keys (orchestrator_host_packages) is written out
    in full for each: YAML anchors and aliases came out wrong in ansible-core for all but the
    first two hosts."""
    import yaml

    from orchestrator.execution.playbook import write_unsafe_vars

    shared = [{"name": "acme-agent", "version": "1.1"}]
    hosts = [f"h{i}" for i in range(5)]
    write_unsafe_vars(tmp_path / "v.yml", {"orchestrator_host_packages": dict.fromkeys(hosts,
                                                                                   shared)})
    text = (tmp_path / "v.yml").read_text()
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"orchestrator_host_packages": dict.fromkeys(hosts, shared)}
    (tmp_path / "pb.yml").write_text("""\
- hosts: all
  gather_facts: false
  tasks:
    - name: show
      ansible.builtin.debug:
        msg: "{{ orchestrator_host_packages[inventory_hostname] }}"
""")
    (tmp_path / "inv.ini").write_text("".join(f"{h} ansible_connection=local\n" for h in hosts))
    events: list[dict] = []
    outcome = run_playbook(tmp_path / "pb.yml", tmp_path / "inv.ini",
                           {h: {"ansible_connection": "local"} for h in hosts},
                           event_handler=events.append, known_hosts=[], forks=5,
                           extravars={"orchestrator_host_packages": dict.fromkeys(hosts,
                                                                                  shared)})
    assert outcome.rc == 0
    got = {e["event_data"]["host"]: e["event_data"]["res"]["msg"] for e in events
           if e.get("event") == "runner_on_ok"}
    assert got == dict.fromkeys(hosts, shared)
