"""Drift audit of a Windows lab host through real pywinrm (NTLM, message encryption, HTTP).

Issue 5 acceptance for WinRM. The lab's `lab-win-01` is a WS-Management endpoint; the PowerShell
the facts layer sends is parsed and run by the lab's emulator (orchestrator/lab/winps*.py)
against a recorded host state that these tests set and change. Protocol level only: no Windows.
"""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.lab.winstate import default_state

LSA = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"

POLICIES = """
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: win-lab}}
spec:
  platform: windows
  services:
    running: [WinRM, W32Time]
    stopped: [Spooler, RemoteRegistry]
  windows:
    registry:
      - {{key: '{lsa}', name: LmCompatibilityLevel, value: 5}}
      - {{key: '{lsa}', name: RunAsPPL, value: 1}}
    hotfixes:
      installed: [KB5034441]
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: winfleet}}
spec:
  hosts: {{patterns: ["{host}"]}}
  baselines: [win-lab]
"""


@pytest.fixture
def win_host(lab_fleet):
    """The lab's Windows host in a state that satisfies the baseline; restored afterwards."""
    name = lab_fleet.windows_hosts[0].name
    original = lab_fleet.windows_state(name)
    state = default_state(name)
    state["services"]["Spooler"]["Status"] = "Stopped"
    state["services"]["W32Time"]["Status"] = "Running"
    state["registry"][LSA]["LmCompatibilityLevel"] = 5
    lab_fleet.set_windows_state(name, state)
    yield name
    lab_fleet.set_windows_state(name, original)


@pytest.fixture
def workdir(tmp_path: Path, lab_fleet, win_host, monkeypatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "win.yml").write_text(POLICIES.format(lsa=LSA, host=win_host))
    (tmp_path / "orchestrator.yml").write_text(textwrap.dedent(f"""\
        policies: policies/
        inventory: {lab_fleet.inventory_path}
        state: sqlite:///state.db
        """))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit(capsys) -> tuple[int, dict]:
    code = main(["--format", "json", "--no-progress", "audit", "--group", "winfleet"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def findings(host: dict) -> dict[str, tuple]:
    """(expected, actual) of every check that did not pass."""
    return {c["id"]: (c["expected"], c["actual"]) for c in host["checks"]
            if c["status"] != "pass"}


def test_the_windows_host_is_reached_through_pywinrm_ntlm_over_http(lab_fleet, win_host):
    from orchestrator.inventory.loader import load_inventory
    from orchestrator.transports import TransportSettings, transport_for_host
    from orchestrator.transports.winrm import WinrmTransport

    host = load_inventory(lab_fleet.inventory_path).hosts[win_host]
    assert host.platform == "windows"
    t = transport_for_host(win_host, dict(host.vars), TransportSettings())
    try:
        assert isinstance(t, WinrmTransport)
        assert t.options.endpoint.startswith("http://127.")
        assert t.options.auth == "ntlm"
        res = t.run("$env:COMPUTERNAME")
    finally:
        t.close()
    assert (res.exit_status, res.stdout.strip()) == (0, win_host.upper().encode())


def test_windows_audit_compliant_then_service_and_registry_drift(lab_fleet, win_host, workdir,
                                                                capsys):
    code, report = audit(capsys)
    (host,) = report["hosts"]
    assert host["host"] == win_host and host["error"] is None
    statuses = {c["id"]: c["status"] for c in host["checks"]}
    assert statuses == {
        "service.running:WinRM": "pass",
        "service.running:W32Time": "pass",
        "service.stopped:Spooler": "pass",
        "service.stopped:RemoteRegistry": "pass",
        f"registry:{LSA}\\LmCompatibilityLevel": "pass",
        f"registry:{LSA}\\RunAsPPL": "pass",
        "hotfix:KB5034441": "pass",
    }
    assert (code, host["status"]) == (0, "compliant")

    state = copy.deepcopy(lab_fleet.windows_state(win_host))
    state["services"]["W32Time"]["Status"] = "Stopped"  # must run
    state["registry"][LSA]["LmCompatibilityLevel"] = 3
    lab_fleet.set_windows_state(win_host, state)

    code, report = audit(capsys)
    (host,) = report["hosts"]
    drift = findings(host)
    assert drift == {
        "service.running:W32Time": ("running", "stopped"),
        f"registry:{LSA}\\LmCompatibilityLevel": (5, 3),
    }
    assert (code, host["status"]) == (2, "drift")
    # the audit is read-only: the recorded state is what the test left
    assert lab_fleet.windows_state(win_host) == state


def test_windows_audit_missing_hotfix_service_and_value(lab_fleet, win_host, workdir, capsys):
    state = copy.deepcopy(lab_fleet.windows_state(win_host))
    state["hotfixes"] = [h for h in state["hotfixes"] if h["HotFixID"] != "KB5034441"]
    del state["services"]["RemoteRegistry"]  # a service that must be stopped may be absent
    del state["services"]["W32Time"]
    del state["registry"][LSA]["RunAsPPL"]
    lab_fleet.set_windows_state(win_host, state)

    code, report = audit(capsys)
    (host,) = report["hosts"]
    drift = findings(host)
    assert drift == {
        "hotfix:KB5034441": ("installed", "missing"),
        "service.running:W32Time": ("running", "not installed"),
        f"registry:{LSA}\\RunAsPPL": (1, "value missing"),
    }
    assert code == 2


LARGE_POLICY = """
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: win-large}}
spec:
  platform: windows
  services:
    running: [{running}]
    stopped: [{stopped}]
  windows:
    registry:
{registry}
    hotfixes:
      installed: [KB5034439, KB5034441]
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: winfleet}}
spec:
  hosts: {{patterns: ["{host}"]}}
  baselines: [win-large]
"""


def test_windows_audit_of_a_large_baseline(lab_fleet, win_host, workdir, capsys):
    """The review's case: 12 services, 2 hotfixes and 12 registry values make a fact batch whose
    `-EncodedCommand` line is well over cmd.exe's 8,191 characters, which the lab endpoint (like
    Windows) refuses; the transport's stdin bootstrap keeps the line short."""
    state = copy.deepcopy(lab_fleet.windows_state(win_host))
    running = [f"LabSvc{i:02d}" for i in range(8)]
    for name in running:
        state["services"][name] = {"Status": "Running", "StartType": "Automatic"}
    values = {f"Hardening{i:02d}": i for i in range(12)}
    state["registry"][LSA].update(values)
    lab_fleet.set_windows_state(win_host, state)
    registry = "\n".join(f"      - {{key: '{LSA}', name: {k}, value: {v}}}"
                         for k, v in values.items())
    (workdir / "policies" / "win.yml").write_text(LARGE_POLICY.format(
        running=", ".join(["WinRM", "W32Time", "EventLog", "wuauserv", *running]),
        stopped="Spooler, RemoteRegistry, NoSuchService", registry=registry, host=win_host))

    code, report = audit(capsys)
    (host,) = report["hosts"]
    assert host["error"] is None
    assert len(host["checks"]) == 12 + 3 + 2 + 12  # running, stopped, hotfixes, values
    assert {c["status"] for c in host["checks"]} == {"pass"}, host["checks"]
    assert (code, host["status"]) == (0, "compliant")
