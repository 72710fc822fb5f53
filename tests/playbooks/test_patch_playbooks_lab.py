"""The shipped patch playbooks (playbooks/patch-*.yml) run with ansible-playbook against fresh
lab hosts: what `orchestrator: result` says per package, the reboot policies (by the host's
boot id), the disk pre-check, health checks, check mode, and host data that must stay data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from playbook_helpers import PLAYBOOKS, boot_id, lab_env

# The tasks the orchestrator's event handler and the playbook contract name.
CONTRACT_TASKS = ["orchestrator: pre-check disk free", "orchestrator: versions before",
                  "orchestrator: install", "orchestrator: versions after",
                  "orchestrator: reboot signal", "orchestrator: reboot",
                  "orchestrator: health services", "orchestrator: health command",
                  "orchestrator: result"]
PLAYBOOK_NAMES = ["patch-apt.yml", "patch-dnf.yml", "patch-zypper.yml", "patch-windows.yml"]


def _vars(packages: list[tuple[str, str]], reboot: str = "never", **kw) -> dict:
    return {"orchestrator_packages": [{"name": n, "version": v} for n, v in packages],
            "orchestrator_reboot": reboot, "orchestrator_reboot_timeout": 120,
            "orchestrator_disk_free_min": kw.get("disk_free_min"),
            "orchestrator_health_services": kw.get("services", []),
            "orchestrator_health_command": kw.get("command", ""),
            "orchestrator_health_timeout": kw.get("health_timeout", 30)}


def _dpkg_versions(lab, host: str) -> dict[str, str]:
    out = lab.ssh(host, "dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\\n' "
                        "'acme-*'").stdout
    return {f[0]: f"{f[1]} {f[2]}" for f in (line.split() for line in out.splitlines()) if f}


class _Loader(yaml.SafeLoader):
    """YAML with Ansible's !unsafe tag (a plain string here)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _task_names(path) -> list[str]:
    """Task names of a playbook or task file, through block/rescue/always and import_tasks."""
    doc = yaml.load(path.read_text(), Loader=_Loader) or []
    names: list[str] = []

    def walk(tasks: list) -> None:
        for task in tasks or []:
            if "import_tasks" in task or "ansible.builtin.import_tasks" in task:
                ref = task.get("ansible.builtin.import_tasks") or task.get("import_tasks")
                names.extend(_task_names(PLAYBOOKS / ref))
                continue
            if "block" in task:
                for part in ("block", "rescue", "always"):
                    walk(task.get(part))
                continue
            names.append(task.get("name", ""))

    if doc and isinstance(doc[0], dict) and "hosts" in doc[0]:
        for play in doc:
            assert play["hosts"] == "all", f"{path.name}: the orchestrator passes --limit"
            walk(play.get("tasks"))
    else:
        walk(doc)
    return names


def test_playbooks_parse_and_name_the_contract_tasks(tmp_path) -> None:
    """All four (Windows included: it cannot run in the lab, so this is its check)."""
    env = lab_env(_NoLab(), tmp_path)
    proc = subprocess.run(["ansible-playbook", "--syntax-check", "-i", "localhost,",
                           *[str(PLAYBOOKS / p) for p in PLAYBOOK_NAMES]],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in PLAYBOOK_NAMES:
        names = _task_names(PLAYBOOKS / name)
        missing = [t for t in CONTRACT_TASKS if t not in names]
        assert not missing, f"{name} lacks {missing}"
        # the result comes after every other contract task, the host verdict after it
        assert names.index("orchestrator: result") > max(
            names.index(t) for t in CONTRACT_TASKS if t != "orchestrator: result")
        assert names[-1] == "orchestrator: host failed"


class _NoLab:
    """For lab_env() without a lab: a syntax check needs no known hosts."""

    known_hosts_path = "/dev/null"

    def ansible_env(self) -> dict[str, str]:
        return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep
                    + os.environ.get("PATH", ""))


def test_apt_precheck_check_mode_failures_and_pending_reboot(
        lab_fleet, lab_fresh_host, run_playbook) -> None:
    lab, host = lab_fleet, lab_fresh_host
    start = _dpkg_versions(lab, host)
    boot = boot_id(lab, host)
    assert start["acme-tls"] == start["acme-kernel"] == "1.0 installed"

    # a disk pre-check that cannot be met: the host fails before anything is touched
    pre = run_playbook("patch-apt.yml", host, _vars([("acme-tls", "1.0+sec1")], "always",
                                                    disk_free_min=100))
    assert pre.rc != 0 and pre.result["failed"]
    assert pre.result["reasons"][0].startswith("orchestrator: pre-check disk free: ")
    assert pre.package("acme-tls")["status"] == "failed"
    assert pre.package("acme-tls")["error"].startswith("not attempted: orchestrator: pre-check")
    assert 0 < pre.result["disk_free_percent"] < 100
    assert "orchestrator: install" not in pre.tasks and not pre.result["rebooted"]
    assert _dpkg_versions(lab, host) == start and boot_id(lab, host) == boot

    # --check: shows what would be installed, changes nothing, does not reboot
    check = run_playbook("patch-apt.yml", host,
                         _vars([("acme-tls", "1.0+sec1"), ("acme-kernel", "1.1")], "always"),
                         "--check")
    assert check.rc == 0, check.stderr[-2000:]
    assert check.statuses() == {"acme-tls": "would_install", "acme-kernel": "would_install"}
    assert check.result["check_mode"] and not check.result["rebooted"]
    assert check.package("acme-tls")["after"] == "1.0"
    assert _dpkg_versions(lab, host) == start and boot_id(lab, host) == boot
    assert lab.ssh(host, "test -e /var/run/reboot-required", check=False).returncode == 1

    # a failing package next to good ones; reboot never with acme-kernel; failed health
    run = run_playbook("patch-apt.yml", host,
                       _vars([("acme-broken", "1.1"), ("acme-agent", "1.1"),
                              ("acme-kernel", "1.1")], "never",
                             services=["sshd", "no-such-daemon"], command="exit 3"))
    assert run.rc != 0
    assert run.statuses() == {"acme-broken": "failed", "acme-agent": "installed",
                              "acme-kernel": "installed_pending_reboot"}
    assert run.package("acme-agent") == {"name": "acme-agent", "wanted": "1.1",
                                         "before": "1.0", "after": "1.1",
                                         "status": "installed"}
    assert "half-configured" in run.package("acme-broken")["error"]
    assert run.result["reboot_needed"] and not run.result["rebooted"]
    assert run.result["health"] == {"services": {"sshd": "ok", "no-such-daemon": "missing"},
                                    "command_rc": 3}
    assert run.result["reasons"] == ["packages failed: acme-broken",
                                     "health: not running: no-such-daemon",
                                     "health: command exited 3"]
    assert run.tasks["orchestrator: host failed"][0]["failed"]
    assert boot_id(lab, host) == boot
    now = _dpkg_versions(lab, host)
    assert now["acme-agent"] == "1.1 installed" and now["acme-kernel"] == "1.1 installed"
    assert now["acme-broken"] == "1.1 half-configured"


def test_dnf_failing_package_release_optional_and_reboot_if_needed(
        lab_fleet, lab_fresh_rpm_host, run_playbook) -> None:
    lab, host = lab_fleet, lab_fresh_rpm_host
    boot = boot_id(lab, host)
    run = run_playbook("patch-dnf.yml", host,
                       _vars([("acme-broken", "1.1-1"), ("acme-agent", "1.1"),
                              ("acme-kernel", "1.1-1")], "ifNeeded", disk_free_min=1,
                             services=["sshd"]))
    assert run.rc != 0
    assert run.statuses() == {"acme-broken": "failed", "acme-agent": "installed",
                              "acme-kernel": "installed"}
    assert "%pre" in run.package("acme-broken")["error"]
    assert run.package("acme-broken")["after"] == "1.0-1"
    assert run.package("acme-agent")["after"] == "1.1-1"  # a version without release matches
    assert run.result["reboot_needed"] and run.result["rebooted"]
    assert run.result["reasons"] == ["packages failed: acme-broken"]
    assert boot_id(lab, host) != boot
    assert lab.ssh(host, "dnf -q needs-restarting -r", check=False).returncode == 0
    assert lab.ssh(host, "rpm -q acme-agent acme-kernel acme-broken").stdout.split() == [
        "acme-agent-1.1-1.noarch", "acme-kernel-1.1-1.noarch", "acme-broken-1.0-1.noarch"]


def test_zypper_failing_package_reboot_always_and_health_timeout(
        lab_fleet, lab_fresh_zypper_host, run_playbook) -> None:
    lab, host = lab_fleet, lab_fresh_zypper_host
    boot = boot_id(lab, host)
    run = run_playbook("patch-zypper.yml", host,
                       _vars([("acme-broken", "1.1-1"), ("acme-agent", "1.1-1")], "always",
                             command="sleep 30", health_timeout=2))
    assert run.rc != 0
    assert run.statuses() == {"acme-broken": "failed", "acme-agent": "installed"}
    assert "%pre refuses to install" in run.package("acme-broken")["error"]
    # always: a reboot although nothing asked for one
    assert not run.result["reboot_needed"] and run.result["rebooted"]
    assert boot_id(lab, host) != boot
    assert run.result["health"]["command_rc"] == 124  # timeout(1) ended the command
    assert run.result["reasons"] == ["packages failed: acme-broken", "health: command exited 124"]
    assert lab.ssh(host, "rpm -q acme-agent acme-broken").stdout.split() == [
        "acme-agent-1.1-1.noarch", "acme-broken-1.0-1.noarch"]


def test_host_data_stays_data(lab_fleet, run_playbook, tmp_path) -> None:
    """Names and versions come from hosts: option-like or list-like names are refused before
    the package manager sees them, and template text passed as !unsafe (as the orchestrator
    must pass host data) is never evaluated on the controller. Check mode, shared host."""
    host = lab_fleet.shared_hosts[0]
    marker = tmp_path / "evaluated"
    text = f"""
orchestrator_packages:
  - {{name: "-oDPkg::Pre-Invoke::=touch /tmp/pwned", version: "1.1"}}
  - {{name: "acme-agent,acme-extra", version: "1.1"}}
  - {{name: acme-agent, version: "1.1 --allow-downgrades"}}
  - {{name: !unsafe "{{{{ lookup('pipe', 'touch {marker}') }}}}", version: "1.1"}}
  - {{name: acme-tls, version: !unsafe "{{{{ lookup('pipe', 'touch {marker}') }}}}"}}
orchestrator_reboot: never
"""
    run = run_playbook("patch-apt.yml", host, None, "--check", vars_text=text)
    assert run.rc != 0
    assert set(run.statuses().values()) == {"failed"}
    errors = [p["error"] for p in run.result["packages"]]
    assert errors == ["refused: not a valid package name here"] * 2 + [
        "refused: not a valid version here", "refused: not a valid package name here",
        "refused: not a valid version here"]
    assert run.result["packages"][3]["name"].startswith("{{ lookup('pipe'")
    assert not marker.exists()
    assert "orchestrator: install" not in run.tasks or all(
        r.get("skipped") for r in run.tasks["orchestrator: install"])
