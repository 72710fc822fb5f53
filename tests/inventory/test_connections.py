"""One connection table decides platform, transport and check-mode plugin; hosts whose WinRM
certificates go unchecked are named in a warning (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import InventoryError
from orchestrator.inventory.loader import load_inventory
from orchestrator.inventory.model import Host
from orchestrator.transports import CONNECTIONS, connection_name, transport_for_host


@pytest.mark.parametrize("value", sorted(CONNECTIONS))
def test_platform_and_transport_come_from_one_table(value: str) -> None:
    host = Host("h", (), {"ansible_connection": value, "ansible_password": "x"})
    entry = CONNECTIONS[value]
    assert host.platform == entry.platform
    if entry.backend is None:
        with pytest.raises(InventoryError, match=f"ansible_connection {value!r} is not supported"):
            connection_name(host.vars, "h")
    else:
        assert connection_name(host.vars, "h") == entry.backend
    # windows exactly when the transport speaks PowerShell
    assert (entry.platform == "windows") == (entry.backend in ("winrm", None))


def test_fqcn_winrm_is_a_windows_host_over_winrm(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "win-01 ansible_connection=ansible.builtin.winrm ansible_password=x ansible_user=a\n"
        "lin-01 ansible_connection=ansible.builtin.paramiko_ssh\n")
    inv = load_inventory(tmp_path / "hosts.ini")
    win = inv.hosts["win-01"]
    assert win.platform == "windows"
    assert transport_for_host("win-01", win.vars).shell == "powershell"
    assert inv.hosts["lin-01"].platform == "linux"
    assert transport_for_host("lin-01", inv.hosts["lin-01"].vars).shell == "sh"


def test_unknown_connection_is_one_line_naming_the_host() -> None:
    vars_ = {"ansible_connection": "community.docker.docker"}
    assert Host("c", (), vars_).platform == "linux"
    with pytest.raises(InventoryError) as exc:
        connection_name(vars_, "c-01")
    assert str(exc.value).startswith("inventory host c-01: ansible_connection "
                                     "'community.docker.docker' is not supported; use ")
    with pytest.raises(InventoryError):  # exact names, as Ansible's plugin loader
        connection_name({"ansible_connection": "WinRM"}, "c-01")


INVENTORY = """\
[win]
win-01 ansible_host=127.0.0.1 ansible_port=9 ansible_winrm_server_cert_validation=ignore
win-02 ansible_host=127.0.0.1 ansible_port=9 ansible_winrm_server_cert_validation=Ignore
win-03 ansible_host=127.0.0.1 ansible_port=9
[win:vars]
ansible_connection=ansible.builtin.winrm
ansible_user=admin
ansible_password=pw
[lin]
lin-01 ansible_winrm_server_cert_validation=ignore
"""
POLICY = """\
apiVersion: orchestrator/v1
kind: Baseline
metadata: {name: win}
spec: {platform: windows, windows: {hotfixes: {installed: [KB5034441]}}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: windows}
spec: {hosts: {patterns: ["win-*"]}, baselines: [win]}
"""


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(POLICY)
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    (tmp_path / "orchestrator.yml").write_text(
        "policies: policies/\ninventory: hosts.ini\nstate: sqlite:///.orchestrator/state.db\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def warnings_about_certs(err: str) -> list[str]:
    return [line for line in err.splitlines() if "server_cert_validation" in line]


def test_validate_inventory_names_hosts_without_certificate_checks(estate: Path,
                                                                   capsys) -> None:
    code = main(["validate", "--inventory"])
    err = capsys.readouterr().err
    assert code == 0
    assert warnings_about_certs(err) == [
        f"warning: {estate / 'hosts.ini'}: ansible_winrm_server_cert_validation is 'ignore' "
        "for 2 host(s): win-01, win-02; their WinRM certificates are not verified (give "
        "ansible_winrm_ca_trust_path and validate instead)"]


def test_audit_names_the_audited_hosts_without_certificate_checks(estate: Path,
                                                                  capsys) -> None:
    main(["audit", "--limit", "win-01,win-03", "--timeout", "5"])
    lines = warnings_about_certs(capsys.readouterr().err)
    assert len(lines) == 1 and "for 1 host(s): win-01;" in lines[0]
    main(["audit", "--limit", "win-03", "--timeout", "5"])
    assert warnings_about_certs(capsys.readouterr().err) == []


def test_run_window_and_patch_scan_warn_too(estate: Path, capsys) -> None:
    """The scheduled path says it on stderr (the scheduler's log), as audit and validate do."""
    (estate / "policies" / "w.yml").write_text(
        "apiVersion: orchestrator/v1\nkind: Window\nmetadata: {name: w}\n"
        "spec: {schedule: {cron: '0 0 1 1 *'}, timezone: UTC, duration: 1h, cutoff: 0m}\n")
    main(["run-window", "w", "--ignore-window", "--reason", "test the warning"])
    lines = warnings_about_certs(capsys.readouterr().err)
    assert len(lines) == 1 and "for 2 host(s): win-01, win-02;" in lines[0]
    (estate / "policies" / "p.yml").write_text(POLICY.replace(
        "baselines: [win]}", "baselines: [win], patchPolicy: pp}") + """
---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {name: pp}
spec: {approval: {rules: [{classification: any, approveAfterDays: 0, deadlineDays: 1}]}}
""")
    main(["patch", "scan", "--limit", "win-02", "--timeout", "5"])
    lines = warnings_about_certs(capsys.readouterr().err)
    assert len(lines) == 1 and "for 1 host(s): win-02;" in lines[0]
