"""`patch scan` of the lab's Windows host through real pywinrm (NTLM over HTTP): the fact's
Windows Update Agent search, unmodified, run by the lab's emulator (orchestrator/lab/winps.py,
winupdate.py) against the host's recorded `pending_updates`. Protocol level only: no Windows.

Release dates are set relative to today, so approval and due dates are fixed by the policy.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from patchwork import log_records as records
from patchwork import write_config

from orchestrator.cli.main import main
from orchestrator.lab.winstate import default_state

POLICIES = """
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: win}}
spec:
  approval:
    rules:
      - {{classification: security, severity: [critical, important], approveAfterDays: 0,
         deadlineDays: 7}}
      - {{classification: bugfix, approveAfterDays: 5, deadlineDays: 30}}
    approved: [KB2267602]
    rejected: ["KB50368*"]
  rollout: {{serial: [1], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: win-patch-age}}
spec:
  platform: windows
  thresholds:
    pendingPatchAgeDays: {{max: 30}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: winfleet}}
spec:
  hosts: {{patterns: ["{host}"]}}
  baselines: [win-patch-age]
  patchPolicy: win
"""


def day(n: int) -> str:
    """Today plus n days, ISO."""
    return (date.today() + timedelta(days=n)).isoformat()


def updates(security_age: int = 1) -> list[dict]:
    return [
        {"KB": "KB5035857", "Title": "Cumulative Update for Windows Server 2022 (KB5035857)",
         "MsrcSeverity": "Critical", "Classification": "Security Updates",
         "Product": "Microsoft Server operating system-21H2", "Released": day(-security_age),
         "RebootBehavior": "CanRequestReboot"},
        {"KB": "KB5034439", "Title": "Safe OS Dynamic Update (KB5034439)",
         "MsrcSeverity": "Important", "Classification": "Security Updates",
         "Released": day(-3), "RebootBehavior": "NeverReboots"},
        {"KB": "KB890830", "Title": "Windows Malicious Software Removal Tool x64 (KB890830)",
         "MsrcSeverity": None, "Classification": "Update Rollups", "Released": day(-2),
         "RebootBehavior": "NeverReboots"},
        {"KB": "KB2267602", "Title": "Security Intelligence Update for Microsoft Defender "
         "Antivirus - KB2267602 (Version 1.407.373.0)", "MsrcSeverity": None,
         "Classification": "Definition Updates", "Product": "Microsoft Defender Antivirus",
         "Released": day(0), "RebootBehavior": "NeverReboots"},
        {"KB": "KB5036893", "Title": "Cumulative Update Preview (KB5036893)",
         "MsrcSeverity": None, "Classification": "Updates", "Released": day(-4),
         "RebootBehavior": "AlwaysRequiresReboot"},
        {"KB": "KB5035961", "Title": "A hidden update (KB5035961)", "MsrcSeverity": "Critical",
         "Classification": "Security Updates", "Released": day(-90),
         "RebootBehavior": "NeverReboots", "Hidden": True},
    ]


@pytest.fixture
def win_host(lab_fleet):
    """The lab's Windows host with the updates above pending; its state restored afterwards."""
    name = lab_fleet.windows_hosts[0].name
    original = lab_fleet.windows_state(name)
    state = default_state(name)
    state["pending_updates"] = updates()
    lab_fleet.set_windows_state(name, state)
    yield name
    lab_fleet.set_windows_state(name, original)


@pytest.fixture
def workdir(tmp_path: Path, lab_fleet, win_host, monkeypatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "win.yml").write_text(POLICIES.format(host=win_host))
    write_config(tmp_path, lab_fleet.inventory_path, playbooks=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scan(capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", "--no-progress", "patch", "scan", "--group", "winfleet",
                 *extra])
    return code, json.loads(capsys.readouterr()[0])


def set_state(lab, host: str, **changes) -> dict:
    state = copy.deepcopy(lab.windows_state(host))
    state.update(changes)
    lab.set_windows_state(host, state)
    return state


def test_windows_scan_lists_classifies_and_approves(lab_fleet, win_host, workdir,
                                                   capsys) -> None:
    code, out = scan(capsys)
    [h] = out["hosts"]
    assert (h["host"], h["platform"], h["status"], h["manager"], h["error"]) == (
        win_host, "windows", "compliant", "windows", None)
    got = {p["name"]: (p["classification"], p["severity"], p["released"], p["state"],
                       p["approvedOn"], p["dueOn"], p["overdue"], p["rebootSuggested"])
           for p in h["patches"]}
    assert got == {
        # security, Critical: rule 1, approved on release, due 7 days later
        "KB5035857": ("security", "critical", day(-1), "missing", day(-1), day(6), False, True),
        # MSRC Important is high, listed as `important` in the rule
        "KB5034439": ("security", "high", day(-3), "missing", day(-3), day(4), False, False),
        # Update Rollups: bugfix, rule 2 approves 5 days after release
        "KB890830": ("bugfix", None, day(-2), "not_approved", day(3), day(33), False, False),
        # Definition Updates match no rule; the approved list approves at once, no deadline
        "KB2267602": ("other", None, day(0), "missing", day(0), None, False, False),
        # rejected beats everything
        "KB5036893": ("bugfix", None, day(-4), "rejected", None, None, False, True),
        # KB5035961 is hidden: the search's IsHidden=0 leaves it out
    }
    titles = {p["name"]: (p["available"], p["advisory"], p["current"]) for p in h["patches"]}
    assert titles["KB2267602"] == (
        "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 "
        "(Version 1.407.373.0)", "KB2267602", None)
    assert h["thresholds"] == [{"id": "threshold.pendingPatchAgeDays", "status": "pass",
                                "expected": "<= 30 days",
                                "actual": h["thresholds"][0]["actual"]}]
    assert "4 days (KB5036893" not in h["thresholds"][0]["actual"]  # rejected ones do not age
    assert h["thresholds"][0]["actual"].startswith("3 days (KB5034439 ")
    assert code == 0
    recs = records(capsys)
    assert [(r["action"], r["status"], r["host"]) for r in recs] == [
        ("patch.scan.start", "started", None), ("patch.scan", "compliant", win_host),
        ("patch.scan.end", "finished", None)]
    assert {p["name"]: p["state"] for p in recs[1]["details"]["patches"]} == {
        "KB5035857": "missing", "KB5034439": "missing", "KB890830": "not_approved",
        "KB2267602": "missing", "KB5036893": "rejected"}
    assert main(["log", "verify"]) == 0
    # a scan is read-only on the host
    assert lab_fleet.windows_state(win_host)["pending_updates"] == updates()


def test_an_old_security_update_is_overdue_exit_2(lab_fleet, win_host, workdir,
                                                 capsys) -> None:
    set_state(lab_fleet, win_host, pending_updates=updates(security_age=40))
    code, out = scan(capsys, "--no-refresh")
    [h] = out["hosts"]
    assert (code, h["status"]) == (2, "overdue")
    cu = next(p for p in h["patches"] if p["name"] == "KB5035857")
    assert (cu["released"], cu["dueOn"], cu["overdue"], cu["ageDays"]) == (
        day(-40), day(-33), True, 40)
    assert h["thresholds"][0]["status"] == "drift"
    assert h["thresholds"][0]["actual"].startswith("40 days (KB5035857 ")


def test_a_failing_update_search_is_an_error_exit_4(lab_fleet, win_host, workdir,
                                                   capsys) -> None:
    """The agent's search throws (0x8024402C: the update service cannot be reached): the host
    is `error` with the HRESULT, never compliant, and nothing is listed."""
    set_state(lab_fleet, win_host, update_search_error="0x8024402C")
    code, out = scan(capsys)
    [h] = out["hosts"]
    assert (code, h["status"], h["patches"]) == (4, "error", [])
    assert "Windows Update search failed" in h["error"]
    assert "Exception from HRESULT: 0x8024402C" in h["error"]
    recs = records(capsys)
    assert [(r["action"], r["status"]) for r in recs][1] == ("patch.scan", "error")
    assert "0x8024402C" in recs[1]["details"]["error"]


def test_a_search_that_does_not_succeed_is_an_error(lab_fleet, win_host, workdir,
                                                    capsys) -> None:
    """ResultCode 4 (orcFailed) without an exception is an error too; so is a disabled
    Windows Update service (Search throws 0x80070422)."""
    set_state(lab_fleet, win_host, update_search_result_code=4)
    code, out = scan(capsys)
    [h] = out["hosts"]
    assert (code, h["status"]) == (4, "error")
    assert "result code 4" in h["error"]
    state = default_state(win_host)
    state["pending_updates"] = updates()
    state["services"]["wuauserv"]["StartType"] = "Disabled"
    lab_fleet.set_windows_state(win_host, state)
    code, out = scan(capsys, "--no-refresh")
    [h] = out["hosts"]
    assert (code, h["status"]) == (4, "error")
    # the fact layer keeps 200 characters of the message: the HRESULT itself is cut off here
    assert "The service cannot be started, either because it is disabled" in h["error"]
