"""Drift audit against real lab hosts over SSH (issue 5 acceptance)."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

from orchestrator.cli.main import main

BASELINE = """
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: lab-linux}}
spec:
  platform: linux
  packages:
    installed: [openssh-server, acme-agent, acme-tls, python3]
    absent: [telnetd]
  services:
    running: [ssh]
  files:
    - {{path: /etc/passwd, owner: root, group: root, mode: "0644", contains: ["root:x:0:0"]}}
    - {{path: /etc/hostname, owner: root, mode: "0644"}}
    - {{path: /etc/motd.d/legacy, absent: true}}
  sysctl: {{kernel.ostype: Linux}}
  thresholds:
    diskUsedPercent: {{max: 85, mounts: ["/", "/srv/data"]}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: fleet}}
spec:
  hosts: {{patterns: [{hosts}]}}
  baselines: [lab-linux]
---
apiVersion: orchestrator/v1
kind: Waiver
metadata: {{name: tools-optional}}
spec:
  hosts: [{waived_host}]
  checks: ["package.installed:acme-agent"]
  justification: the agent is being retired on this host
  expires: {expires}
"""


def workdir(tmp_path: Path, lab, hosts: list[str], waived: str = "nobody",
            expires: str = "2099-12-31") -> Path:
    (tmp_path / "policies").mkdir(parents=True)
    (tmp_path / "policies" / "lab.yml").write_text(BASELINE.format(
        hosts=", ".join(f'"{h}"' for h in hosts), waived_host=waived, expires=expires))
    (tmp_path / "orchestrator.yml").write_text(textwrap.dedent(f"""\
        policies: policies/
        inventory: {lab.inventory_path}
        state: sqlite:///state.db
        ssh: {{knownHosts: {lab.known_hosts_path}, hostKeys: strict}}
        """))
    return tmp_path


def audit(capsys, cwd: Path, monkeypatch, *extra: str) -> tuple[int, dict]:
    monkeypatch.chdir(cwd)
    code = main(["--format", "json", "audit", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out)


def prepare_data_mount(lab, host: str) -> None:
    lab.ssh(host, "mkdir -p /srv/data && mount -t tmpfs -o size=4m tmpfs /srv/data")


def findings(host: dict) -> dict[str, dict]:
    return {c["id"]: c for c in host["checks"] if c["status"] != "pass"}


@pytest.fixture
def fresh(lab_fleet, lab_fresh_host):
    prepare_data_mount(lab_fleet, lab_fresh_host)
    return lab_fresh_host


def test_clean_host_is_compliant(lab_fleet, fresh, tmp_path, capsys, monkeypatch) -> None:
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    code, data = audit(capsys, cwd, monkeypatch)
    host = data["hosts"][0]
    assert findings(host) == {}, host
    assert code == 0 and host["status"] == "compliant"
    assert data["summary"] == {"hosts": 1, "compliant": 1, "drift": 0, "unreachable": 0,
                               "error": 0}
    ids = {c["id"] for c in host["checks"]}
    assert {"package.absent:telnetd", "service.running:ssh", "file.mode:/etc/passwd",
            "file.contains:/etc/passwd", "sysctl:kernel.ostype",
            "threshold.diskUsedPercent:/srv/data", "file.absent:/etc/motd.d/legacy"} <= ids


def test_drift_names_exactly_the_changes(lab_fleet, fresh, tmp_path, capsys,
                                         monkeypatch) -> None:
    lab_fleet.ssh(fresh, "chmod 0600 /etc/hostname && "
                  "dpkg -r acme-tls >/dev/null && "
                  "mkdir -p /etc/motd.d && echo old > /etc/motd.d/legacy && "
                  "dd if=/dev/zero of=/srv/data/fill bs=1k count=3800 2>/dev/null")
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    code, data = audit(capsys, cwd, monkeypatch)
    assert code == 2
    found = findings(data["hosts"][0])
    assert set(found) == {"file.mode:/etc/hostname", "package.installed:acme-tls",
                          "file.absent:/etc/motd.d/legacy",
                          "threshold.diskUsedPercent:/srv/data"}
    assert (found["file.mode:/etc/hostname"]["expected"],
            found["file.mode:/etc/hostname"]["actual"]) == ("0644", "0600")
    assert found["package.installed:acme-tls"]["actual"] == "absent"
    assert found["file.absent:/etc/motd.d/legacy"]["actual"] == "present"
    assert found["threshold.diskUsedPercent:/srv/data"]["expected"] == "<= 85"
    assert found["threshold.diskUsedPercent:/srv/data"]["actual"] > 85
    assert all(f["status"] == "drift" for f in found.values())


def test_waiver_applies_until_it_expires(lab_fleet, fresh, tmp_path, capsys,
                                         monkeypatch) -> None:
    lab_fleet.ssh(fresh, "dpkg -r acme-agent >/dev/null")
    live = workdir(tmp_path / "live", lab_fleet, [fresh], waived=fresh)
    code, data = audit(capsys, live, monkeypatch)
    check = findings(data["hosts"][0])["package.installed:acme-agent"]
    assert code == 0 and check["status"] == "waived"
    assert check["waiver"]["name"] == "tools-optional"
    expired = workdir(tmp_path / "expired", lab_fleet, [fresh], waived=fresh,
                      expires="2020-01-01")
    code, data = audit(capsys, expired, monkeypatch)
    check = findings(data["hosts"][0])["package.installed:acme-agent"]
    assert code == 2 and check["status"] == "drift"
    assert check["waiver"]["expired"] is True and "no longer applies" in check["waiver"]["note"]


def test_unreachable_host_does_not_stop_the_others(lab_fleet, fresh, tmp_path, capsys,
                                                   monkeypatch) -> None:
    others = lab_fleet.shared_hosts
    for h in others:
        prepare_data_mount(lab_fleet, h)
    lab_fleet.kill_sshd(fresh)
    cwd = workdir(tmp_path, lab_fleet, [*others, fresh])
    code, data = audit(capsys, cwd, monkeypatch)
    by_host = {h["host"]: h for h in data["hosts"]}
    assert by_host[fresh]["status"] == "unreachable"
    assert by_host[fresh]["error"] and "\n" not in by_host[fresh]["error"]
    # the shared hosts are clean lab hosts: each was audited in full and is compliant
    assert {h: by_host[h]["status"] for h in others} == dict.fromkeys(others, "compliant")
    assert all(by_host[h]["checks"] for h in others)
    assert data["summary"] == {"hosts": len(others) + 1, "compliant": len(others), "drift": 0,
                               "unreachable": 1, "error": 0}
    assert code == 4  # SPEC: hosts unreachable and no drift: incomplete


def test_drift_on_one_host_and_another_unreachable_exits_2(lab_fleet, fresh, tmp_path, capsys,
                                                            monkeypatch) -> None:
    """Drift anywhere is exit 2, whatever else went wrong: one host drifts (a known change),
    one cannot be reached (an inventory entry at a port that refuses connections)."""
    import socket

    import yaml

    lab_fleet.ssh(fresh, "chmod 0600 /etc/hostname")
    cwd = workdir(tmp_path, lab_fleet, [fresh, "ghost-01"])
    inventory = yaml.safe_load(Path(lab_fleet.inventory_path).read_text())
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        inventory["all"]["children"]["lab_linux"]["hosts"]["ghost-01"] = {
            "ansible_host": "127.0.0.1", "ansible_port": closed.getsockname()[1],
            "ansible_user": "root", "ansible_ssh_private_key_file": str(lab_fleet.ssh_key_path)}
        (cwd / "inventory.yml").write_text(yaml.safe_dump(inventory))
        config = (cwd / "orchestrator.yml").read_text()
        (cwd / "orchestrator.yml").write_text(
            config.replace(f"inventory: {lab_fleet.inventory_path}", "inventory: inventory.yml"))
        code, data = audit(capsys, cwd, monkeypatch)
    by_host = {h["host"]: h for h in data["hosts"]}
    assert by_host["ghost-01"]["status"] == "unreachable", by_host["ghost-01"]
    assert by_host[fresh]["status"] == "drift"
    assert set(findings(by_host[fresh])) == {"file.mode:/etc/hostname"}
    assert data["summary"] == {"hosts": 2, "compliant": 0, "drift": 1, "unreachable": 1,
                               "error": 0}
    assert code == 2


def test_audit_records_start_hosts_and_end(lab_fleet, fresh, tmp_path, capsys,
                                           monkeypatch) -> None:
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    code, data = audit(capsys, cwd, monkeypatch)
    main(["log", "--format", "json", "--run", data["run"]])
    records = [json.loads(x) for x in capsys.readouterr()[0].splitlines()]
    assert [r["action"] for r in records] == ["audit.start", "audit", "audit.end"]
    assert records[1]["host"] == fresh and records[1]["status"] == "compliant"
    assert records[2]["details"]["compliant"] == 1
    # every check's actual is kept, so that `plan` can judge a baseline change later
    passed = records[1]["details"]["passed"]
    assert len(passed) == records[1]["details"]["checks"] == len(data["hosts"][0]["checks"])
    assert passed["sysctl:kernel.ostype"] == "Linux"
    assert passed["package.absent:telnetd"] == "absent"
    assert main(["log", "verify"]) == 0


def test_plan_judges_a_baseline_change_from_this_audit(lab_fleet, fresh, tmp_path, capsys,
                                                       monkeypatch) -> None:
    """A real audit, then a baseline change in git: plan says which host would newly drift
    and which checks it cannot judge, without contacting the host."""
    import subprocess

    cwd = workdir(tmp_path, lab_fleet, [fresh])
    git = ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@x"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (cwd / ".gitignore").write_text("state.db*\ncache/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    code, _data = audit(capsys, cwd, monkeypatch)
    assert code == 0
    policy = cwd / "policies" / "lab.yml"
    policy.write_text(policy.read_text().replace("kernel.ostype: Linux", "kernel.ostype: Hurd"))
    assert main(["--format", "json", "plan", "--base", "main"]) == 2
    plan = json.loads(capsys.readouterr()[0])
    assert plan["impact"]["audit"] == {"hosts": 1, "driftBefore": 0, "driftAfter": 1,
                                       "newlyDrifting": [fresh], "undetermined": []}
    policy.write_text(policy.read_text().replace("absent: [telnetd]", "absent: [telnetd, rsh]"))
    policy.write_text(policy.read_text().replace("kernel.ostype: Hurd", "kernel.ostype: Linux"))
    assert main(["--format", "json", "plan", "--base", "main"]) == 2
    plan = json.loads(capsys.readouterr()[0])
    assert plan["impact"]["audit"]["undetermined"] == [fresh]  # rsh was never checked


@pytest.mark.parametrize(
    ("name", "script", "reason"),
    [
        ("garbage", "#!/bin/sh\nhead -c 300 /dev/urandom\n", "packages"),
        ("hang", "#!/bin/sh\nexec sleep 600\n", "timed out"),
        # every sshd (the session first of all) dies while the batch runs `df`: the
        # connection closes in the middle of the batch, no exit status is ever sent, and
        # the facts from `df` on have no output
        ("drop", "#!/bin/sh\nfor p in /proc/[0-9]*; do\n"
                 "  case $(cat $p/comm 2>/dev/null) in sshd) kill -9 ${p#/proc/};; esac\n"
                 "done\nsleep 30\n",
         "disk.usage:/,/srv/data: no output for this fact (the batch stopped early)"),
    ],
    ids=["garbage", "hang", "drop"],
)
def test_bad_host_output_is_an_error_for_that_host_only(lab_fleet, fresh, tmp_path, capsys,
                                                        monkeypatch, name, script,
                                                        reason) -> None:
    target = "dpkg-query" if name == "garbage" else "df"
    lab_fleet.ssh(fresh, f"printf %s {shlex.quote(script)} > /usr/local/bin/{target} && "
                  f"chmod 0755 /usr/local/bin/{target}")
    others = lab_fleet.shared_hosts
    for h in others:
        prepare_data_mount(lab_fleet, h)
    cwd = workdir(tmp_path, lab_fleet, [*others, fresh])
    code, data = audit(capsys, cwd, monkeypatch, "--timeout", "5")
    by_host = {h["host"]: h for h in data["hosts"]}
    bad = by_host[fresh]
    assert bad["status"] == "error", bad
    text = bad["error"] or " ".join(str(c["actual"]) for c in bad["checks"]
                                    if c["status"] == "error")
    assert reason in text, text
    assert all("\n" not in str(c["actual"]) for c in bad["checks"] if c["status"] == "error")
    # the shared hosts are clean lab hosts: compliant, so the audit is incomplete (no drift)
    assert {h: by_host[h]["status"] for h in others} == dict.fromkeys(others, "compliant")
    assert code == 4


def test_file_that_is_not_utf8(lab_fleet, fresh, tmp_path, capsys, monkeypatch) -> None:
    lab_fleet.ssh(fresh, "printf 'root:x:0:0 \\377\\376 caf\\351\\n' >> /etc/passwd")
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    code, data = audit(capsys, cwd, monkeypatch)
    checks = {c["id"]: c for c in data["hosts"][0]["checks"]}
    assert checks["file.contains:/etc/passwd"]["status"] == "pass"
    assert code == 0


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: login banner is set
      ansible.builtin.lineinfile:
        path: /etc/issue.net
        line: Authorized use only
    - name: hostname file is readable
      ansible.builtin.file:
        path: /etc/hostname
        mode: "0644"
"""


def test_ansible_baseline_changed_tasks_are_findings(lab_fleet, fresh, tmp_path, capsys,
                                                     monkeypatch) -> None:
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    _banner_estate(cwd, fresh, PLAYBOOK)
    before = lab_fleet.ssh(fresh, "cat /etc/issue.net 2>/dev/null; true").stdout
    code, data = audit(capsys, cwd, monkeypatch, "--group", "banner-hosts")
    found = findings(data["hosts"][0])
    assert set(found) == {"ansible:login banner is set"}, found
    assert found["ansible:login banner is set"]["status"] == "drift"
    assert code == 2
    main(["log", "--format", "json", "--run", data["run"]])
    actions = [json.loads(x)["action"] for x in capsys.readouterr()[0].splitlines()]
    assert actions == ["audit.start", "audit", "audit.ansible", "audit.end"]
    # check mode changed nothing on the host
    assert lab_fleet.ssh(fresh, "cat /etc/issue.net 2>/dev/null; true").stdout == before
    lab_fleet.ssh(fresh, "echo 'Authorized use only' >> /etc/issue.net")
    code, data = audit(capsys, cwd, monkeypatch, "--group", "banner-hosts")
    assert code == 0 and findings(data["hosts"][0]) == {}


def _banner_estate(cwd: Path, host: str, playbook_text: str | None) -> None:
    (cwd / "playbooks").mkdir(exist_ok=True)
    if playbook_text is not None:
        (cwd / "playbooks" / "banner.yml").write_text(playbook_text)
    (cwd / "policies" / "ansible.yml").write_text(
        "apiVersion: orchestrator/v1\nkind: Baseline\nmetadata: {name: banner}\n"
        "spec: {platform: linux, ansible: {playbook: banner.yml}}\n---\n"
        "apiVersion: orchestrator/v1\nkind: AssetGroup\nmetadata: {name: banner-hosts}\n"
        f"spec: {{hosts: {{patterns: ['{host}']}}, baselines: [banner]}}\n")


@pytest.mark.parametrize(
    ("playbook", "reason"),
    [("- hosts: all\n  gather_facts: false\n  tasks:\n    - no.such.module: {}\n",
      "did not run"),
     ("- hosts: nobody-here\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n",
      "did not run"),
     (None, "playbook not found")],
    ids=["unknown-module", "hosts-miss", "missing-file"],
)
def test_broken_ansible_baseline_is_an_error_not_compliance(lab_fleet, fresh, tmp_path, capsys,
                                                            monkeypatch, playbook,
                                                            reason) -> None:
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    _banner_estate(cwd, fresh, playbook)
    code, data = audit(capsys, cwd, monkeypatch, "--group", "banner-hosts")
    host = data["hosts"][0]
    assert host["status"] == "error" and code == 4
    (check,) = [c for c in host["checks"] if c["status"] == "error"]
    assert check["id"] == "ansible:banner.yml" and reason in check["actual"]


def test_inventory_cannot_switch_off_host_key_checking_for_ansible(lab_fleet, fresh, tmp_path,
                                                                   capsys,
                                                                   monkeypatch) -> None:
    """An inventory's ansible_ssh_args must not override the orchestrator's host-key policy:
    with an empty known_hosts in strict mode, the check-mode run must refuse the host."""
    host = next(h for h in lab_fleet.hosts if h.name == fresh)
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    _banner_estate(cwd, fresh, PLAYBOOK)
    (cwd / "empty_known_hosts").write_text("")
    (cwd / "inventory.yml").write_text(textwrap.dedent(f"""\
        all:
          hosts:
            {fresh}:
              ansible_host: {host.address}
              ansible_port: {host.port}
              ansible_user: root
              ansible_ssh_private_key_file: {lab_fleet.ssh_key_path}
              ansible_python_interpreter: /usr/bin/python3
              ansible_ssh_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        """))
    (cwd / "orchestrator.yml").write_text(
        "policies: policies/\ninventory: inventory.yml\nstate: sqlite:///state.db\n"
        f"ssh: {{knownHosts: {cwd / 'empty_known_hosts'}, hostKeys: strict}}\n")
    code, data = audit(capsys, cwd, monkeypatch, "--group", "banner-hosts")
    (check,) = data["hosts"][0]["checks"]
    assert check["id"] == "ansible:banner.yml" and check["status"] == "error"
    assert "Host key verification failed" in check["actual"] or "host key" in \
        check["actual"].lower()
    assert code == 4


def test_ansible_trusts_the_known_hosts_the_inventory_names(lab_fleet, fresh, tmp_path, capsys,
                                                             monkeypatch) -> None:
    """The lab inventory names its own UserKnownHostsFile; with an empty configured
    known_hosts the SSH transport and the check-mode run both still trust the lab's keys."""
    cwd = workdir(tmp_path, lab_fleet, [fresh])
    _banner_estate(cwd, fresh, PLAYBOOK)
    (cwd / "empty_known_hosts").write_text("")
    (cwd / "orchestrator.yml").write_text(
        f"policies: policies/\ninventory: {lab_fleet.inventory_path}\nstate: sqlite:///state.db\n"
        f"ssh: {{knownHosts: {cwd / 'empty_known_hosts'}, hostKeys: strict}}\n")
    code, data = audit(capsys, cwd, monkeypatch, "--group", "banner-hosts")
    assert set(findings(data["hosts"][0])) == {"ansible:login banner is set"}
    assert code == 2
