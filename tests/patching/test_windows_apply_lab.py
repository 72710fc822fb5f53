"""`patch apply` on the lab's Windows host over our WinRM transport (real pywinrm, NTLM over
HTTP): the Windows Update Agent's search, download and install as the lab's emulator
(orchestrator/lab/winps.py, winupdate.py) runs them against the host's recorded state, the
reboot (the endpoint goes away and comes back with a new boot time), health checks, and the
same change-log records as the Linux playbooks give. Protocol level only: no Windows here.

As on Windows, the emulator refuses Download/Install to the WinRM session (E_ACCESSDENIED):
installs work only through the one-off scheduled task under SYSTEM that windows_task.py
registers, starts, polls, reads and removes (the emulator's Task Scheduler: wintasks.py).
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as records

from orchestrator.cli.main import main
from orchestrator.lab.winstate import default_state
from orchestrator.patching import windows_scripts as S
from orchestrator.patching import windows_task as T

POLICIES = ALWAYS_WINDOW + """---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: win}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: [{rejected}]
  reboot: {reboot}
  preChecks: {{diskFreePercentMin: 20}}
  rollout: {{serial: [1], maxFailures: 0}}
  healthChecks: {{services: [WinRM, Spooler], command: "{command}", timeout: 1m}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: winfleet}}
spec:
  hosts: {{patterns: ["{host}"]}}
  patchPolicy: win
  windows: [always]
"""

HEALTH_OK = "Get-Service -Name WinRM | Out-Null"
TASK_DIR = "C:\\ProgramData\\orchestrator"


@pytest.fixture(autouse=True)
def _quick_task_polls(monkeypatch):
    """Look at the install task twice a second (the emulator's tasks take `task_seconds`, 1 s
    by default), so that polling is exercised without slowing the tests."""
    monkeypatch.setattr(T, "TASK_POLL", 0.4)


def day(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


def update(kb: str, title: str, reboot: str = "NeverReboots", **extra) -> dict:
    return {"KB": kb, "Title": title, "MsrcSeverity": "Important",
            "Classification": "Security Updates", "Released": day(-2),
            "RebootBehavior": reboot, **extra}


CU = update("KB5035857", "Cumulative Update for Windows Server 2022 (KB5035857)",
            "CanRequestReboot", MsrcSeverity="Critical")
DEFENDER = update("KB2267602", "Security Intelligence Update (KB2267602)")
PREVIEW = update("KB5036893", "Cumulative Update Preview (KB5036893)", "AlwaysRequiresReboot")
SHORT = update("KB123", "Short number (KB123)")
LONG = update("KB1234", "Long number (KB1234)")
BROKEN = update("KB5099999", "Update that fails to install (KB5099999)",
                InstallError="0x80240022")


def workdir(tmp_path: Path, lab, host: str, *, rejected: str = '"KB5036893", "KB1234"',
            reboot: str = "ifNeeded", command: str = HEALTH_OK,
            host_vars: dict | None = None) -> Path:
    (tmp_path / "policies").mkdir(parents=True, exist_ok=True)
    (tmp_path / "policies" / "win.yml").write_text(POLICIES.format(
        host=host, rejected=rejected, reboot=reboot, command=command))
    inventory = lab.inventory_path
    if host_vars:  # the lab's inventory with extra variables for the Windows host
        inv = yaml.safe_load(lab.inventory_path.read_text())
        inv["all"]["children"]["lab_windows"]["hosts"][host].update(host_vars)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump(inv))
    write_config(tmp_path, inventory, playbooks=False)
    return tmp_path


def set_updates(lab, host: str, updates: list[dict], **changes) -> dict:
    state = default_state(host)
    state["pending_updates"] = copy.deepcopy(updates)
    state.update(changes)
    lab.set_windows_state(host, state)
    return state


def apply(capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", "--no-progress", "patch", "apply", "--group", "winfleet",
                 *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {"stderr": err}


def pending(lab, host: str) -> list[str]:
    return sorted(u["KB"] for u in lab.windows_state(host)["pending_updates"])


def hotfixes(lab, host: str) -> list[str]:
    return sorted(h["HotFixID"] for h in lab.windows_state(host)["hotfixes"])


def task_events(lab, host: str) -> list[tuple[str, str]]:
    """The emulated TaskScheduler log: (task, event) in order."""
    return [(e["task"], e["event"])
            for e in lab.windows_state(host).get("scheduled_task_history", [])]


def assert_nothing_left(lab, host: str) -> None:
    """No task registered or still running, no result file; the folder is SYSTEM's and
    Administrators' alone."""
    state = lab.windows_state(host)
    assert state.get("scheduled_tasks", {}) == {}
    assert not state.get("scheduled_task_orphans")
    files = state.get("files", {})
    assert [p for p in files if p.lower().startswith(TASK_DIR.lower() + "\\")] == []
    if TASK_DIR in files:
        assert files[TASK_DIR]["sddl"] == S.TASK_DIR_SDDL


def test_apply_installs_exactly_the_approved_kbs_reboots_and_records(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """Approved KBs installed in one session and recorded per package with before and after;
    the rejected KB5036893 and KB1234 stay pending although KB123 (a prefix of KB1234) is
    approved; the CU asks for a reboot, which happens (new boot time) and is recorded; health
    checks pass; the log verifies."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [CU, DEFENDER, PREVIEW, SHORT, LONG])
    boot = lab_fleet.windows_state(host).get("last_boot")
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert (h["host"], h["status"], h["rebooted"], h["reason"]) == (host, "done", True, "")
    assert {p["name"]: (p["status"], p["before"], p["after"]) for p in h["packages"]} == {
        "KB5035857": ("installed", None, CU["Title"]),
        "KB2267602": ("installed", None, DEFENDER["Title"]),
        "KB123": ("installed", None, SHORT["Title"]),
    }
    state = lab_fleet.windows_state(host)
    assert pending(lab_fleet, host) == ["KB1234", "KB5036893"]
    assert {"KB5035857", "KB2267602", "KB123"} <= set(hotfixes(lab_fleet, host))
    assert "KB1234" not in hotfixes(lab_fleet, host)
    assert state["last_boot"] != boot and state["reboot_pending"] is False
    recs = records(capsys)
    installs = {r["details"]["package"]: (r["status"], r["details"]["version"],
                                          r["details"]["before"], r["details"]["after"])
                for r in recs if r["action"] == "patch.install"}
    assert installs == {
        "KB5035857": ("installed", CU["Title"], None, CU["Title"]),
        "KB2267602": ("installed", DEFENDER["Title"], None, DEFENDER["Title"]),
        "KB123": ("installed", SHORT["Title"], None, SHORT["Title"]),
    }
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "reboot"] == [(host, "done")]
    health = [r for r in recs if r["action"] == "health"]
    assert [(r["status"], r["details"]["services"], r["details"]["command_rc"])
            for r in health] == [("ok", {"WinRM": "ok", "Spooler": "ok"}, 0)]
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "patch.apply"] == [
        (host, "done")]
    assert main(["log", "verify"]) == 0
    # installed by one task under SYSTEM, started, completed, then deleted with its result file
    events = task_events(lab_fleet, host)
    [name] = {t for t, _ in events}
    assert name.startswith("orchestrator-r-")
    assert [e for _, e in events] == ["registered", "started", "completed", "deleted"]
    assert_nothing_left(lab_fleet, host)
    # the next scan sees them installed: nothing approved is missing, nothing is touched
    code, out = apply(capsys)
    assert code == 0 and [h["status"] for h in out["hosts"]] == ["up-to-date"]


def test_a_kb_that_is_a_prefix_of_an_approved_one_is_not_installed(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """The other way round: KB1234 approved, KB123 rejected; no reboot is needed (none of the
    installed updates asks), so none happens."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [SHORT, LONG])
    boot = lab_fleet.windows_state(host).get("last_boot")
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host, rejected='"KB123"'))
    code, out = apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert [(p["name"], p["status"]) for p in h["packages"]] == [("KB1234", "installed")]
    assert (h["status"], h["rebooted"]) == ("done", False)
    assert pending(lab_fleet, host) == ["KB123"]
    assert lab_fleet.windows_state(host).get("last_boot") == boot
    assert not [r for r in records(capsys) if r["action"] == "reboot"]


def test_a_failing_update_fails_the_host_and_spends_the_budget(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """KB5099999's install fails with HRESULT 0x80240022: recorded as failed (the others of
    the same session are installed), the host fails and spends the budget (maxFailures 0)."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [DEFENDER, BROKEN])
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed" and h["reason"] == "install failed: KB5099999"
    pkgs = {p["name"]: p for p in h["packages"]}
    assert pkgs["KB2267602"]["status"] == "installed"
    assert pkgs["KB5099999"]["status"] == "failed"
    assert "HRESULT 0x80240022" in pkgs["KB5099999"]["error"]
    assert pending(lab_fleet, host) == ["KB5099999"]
    recs = records(capsys)
    assert {r["details"]["package"]: r["status"] for r in recs
            if r["action"] == "patch.install"} == {"KB2267602": "installed",
                                                   "KB5099999": "failed"}
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "patch.apply"] == [
        (host, "failed")]
    end = [r for r in recs if r["action"] == "patch.apply.end"][-1]
    assert end["status"] == "failed"
    assert end["details"]["spentBy"] == [[host, "install failed: KB5099999"]]
    assert "exhausted" in end["details"]["budget"]
    assert main(["log", "verify"]) == 0


def test_check_changes_nothing(lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch,
                               capsys) -> None:
    """--check searches only: it shows what would be installed and leaves the host as it was
    (no install, no reboot, no health command, no patch records)."""
    host = lab_fresh_windows_host
    before = set_updates(lab_fleet, host, [CU, DEFENDER, PREVIEW])
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host, command="Restart-Computer -Force"))
    code, out = apply(capsys, "--check")
    assert code == 0 and out["status"] == "check", out
    [h] = out["hosts"]
    assert h["status"] == "would-install"
    assert {p["name"]: (p["status"], p["after"]) for p in h["packages"]} == {
        "KB5035857": ("would_install", None), "KB2267602": ("would_install", None)}
    assert lab_fleet.windows_state(host) == json.loads(json.dumps(before))
    assert not [r for r in records(capsys)
                if r["action"] in ("patch.install", "patch.apply", "reboot", "health")]


def test_disk_pre_check_fails_the_host_before_touching_it(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    host = lab_fresh_windows_host
    before = set_updates(lab_fleet, host, [DEFENDER],
                         disks={"C:": {"SizeGB": 100, "FreeGB": 5}})
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 2
    [h] = out["hosts"]
    [p] = h["packages"]
    assert (h["status"], p["status"]) == ("failed", "failed")
    assert p["error"] == ("not attempted: pre-check disk free: 5.0 % free on C:, below the "
                          "minimum of 20 %: nothing was installed")
    assert lab_fleet.windows_state(host) == json.loads(json.dumps(before))


def test_a_host_that_does_not_come_back_fails_with_that_reason(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """reboot: always, and the host stays down longer than its orchestrator_reboot_timeout:
    the host fails with that reason and the failed reboot is recorded; what was installed
    waits for the reboot."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [DEFENDER], reboot_seconds=3600)
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host, reboot="always",
                              host_vars={"orchestrator_reboot_timeout": 4}))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed" and h["rebooted"] is False
    assert h["reason"].startswith("orchestrator: reboot: the host did not come back within 4 s")
    assert [p["status"] for p in h["packages"]] == ["installed"]
    recs = records(capsys)
    [reboot] = [r for r in recs if r["action"] == "reboot"]
    assert reboot["status"] == "failed"
    assert reboot["details"]["reason"].startswith(
        "the host did not come back within 4 s after Restart-Computer (")
    assert main(["log", "verify"]) == 0


def test_host_data_that_is_no_kb_never_reaches_powershell(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """A host reports a "KB" that is PowerShell code; approved by the rule, it is refused
    (KB[0-9]+ only) and nothing of it runs: the host did not restart, the update is pending.
    A failing health command fails the host too."""
    host = lab_fresh_windows_host
    evil = update("KB1'); Restart-Computer -Force; ('", "Evil (KB1)")
    set_updates(lab_fleet, host, [evil, DEFENDER])
    boot = lab_fleet.windows_state(host).get("last_boot")
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host, command="exit 3"))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    pkgs = {p["name"]: p for p in h["packages"]}
    [bad] = [p for n, p in pkgs.items() if n != "KB2267602"]
    assert bad["status"] == "failed" and bad["error"].startswith("refused: not a KB number")
    assert pkgs["KB2267602"]["status"] == "installed"
    state = lab_fleet.windows_state(host)
    assert state.get("last_boot") == boot and "down_until" not in state
    assert [u["KB"] for u in state["pending_updates"]] == [evil["KB"]]
    health = [r for r in records(capsys) if r["action"] == "health"]
    assert [(r["status"], r["details"]["command_rc"]) for r in health] == [("failed", 3)]


def test_the_winrm_session_itself_may_not_install(lab_fleet, lab_fresh_windows_host) -> None:
    """What makes the task necessary: the update script run in the WinRM session (as the
    orchestrator did before) is refused by the agent with E_ACCESSDENIED, as on Windows, and
    installs nothing."""
    from orchestrator.transports import transport_for_host

    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [DEFENDER])
    inv = yaml.safe_load(lab_fleet.inventory_path.read_text())
    host_vars = inv["all"]["children"]["lab_windows"]["hosts"][host]
    transport = transport_for_host(host, host_vars, None)
    transport.connect()
    try:
        script = (S.UPDATE_PS.replace("__WANTED__", "'KB2267602'")
                  .replace("__INSTALL__", "$true"))
        res = transport.run(script, timeout=60)
    finally:
        transport.close()
    assert res.exit_status == 1
    assert "0x80070005" in res.stderr.decode() and "Download" in res.stderr.decode()
    assert pending(lab_fleet, host) == ["KB2267602"]


def test_an_install_task_that_never_finishes_fails_the_host_and_is_removed(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """The task runs past the install timeout: the host fails with that reason, the task is
    stopped, then unregistered (not left running unregistered), nothing is installed and
    nothing is left behind."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [DEFENDER], task_seconds=3600)
    monkeypatch.setattr(T, "INSTALL_TIMEOUT", 2.0)
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed" and h["rebooted"] is False
    assert "did not finish within 2 s: stopped and unregistered" in h["reason"]
    [p] = h["packages"]
    assert p["status"] == "failed" and "did not finish within 2 s" in p["error"]
    assert [e for _, e in task_events(lab_fleet, host)] == [
        "registered", "started", "stopped", "deleted"]
    assert pending(lab_fleet, host) == ["KB2267602"]
    assert_nothing_left(lab_fleet, host)
    assert main(["log", "verify"]) == 0


@pytest.mark.parametrize("planted, why", [
    ({"sddl": "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;;0x1301bf;;;BU)"},
     "it may be changed by S-1-5-32-545"),
    ({"sddl": "O:BUG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)"}, "it is owned by S-1-5-32-545"),
    ({"sddl": "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)", "reparse": True,
      "target": "C:\\ProgramData\\elsewhere.json"}, "it is a link (reparse point)"),
], ids=["writable-by-users", "owned-by-users", "reparse-point"])
def test_a_planted_result_file_is_refused(lab_fleet, lab_fresh_windows_host, tmp_path,
                                          monkeypatch, capsys, planted, why) -> None:
    """While the task runs, a result file appears that a non-administrator could have written
    (or a link): the orchestrator refuses to read it, fails the host, and still stops and
    removes the task and the file. The planted file claims every KB installed."""
    host = lab_fresh_windows_host
    set_updates(lab_fleet, host, [DEFENDER], task_seconds=3600)
    forged = ('{"Stage":"offered","KB":"KB2267602","Title":"x","RebootBehavior":0}\r\n'
              '{"Stage":"result","Index":0,"Download":2,"DownloadHResult":0,"ResultCode":2,'
              '"HResult":0,"RebootRequired":false}\r\n{"Stage":"end"}\r\n')
    real_run = T.run_script

    def run_and_plant(transport, stage, script, timeout):
        text = real_run(transport, stage, script, timeout)
        if script.startswith("$name = ") and "Test-Path" in script:  # POLL_PS: plant once
            state = lab_fleet.windows_state(host)
            [name] = state["scheduled_tasks"]
            path = f"{TASK_DIR}\\{name}.json"
            if path not in state["files"]:
                state["files"][path] = {"type": "file", "content": forged, **planted}
                state["files"]["C:\\ProgramData\\elsewhere.json"] = {
                    "type": "file", "content": forged, "sddl": planted["sddl"]}
                lab_fleet.set_windows_state(host, state)
        return text

    monkeypatch.setattr(T, "run_script", run_and_plant)
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed"
    assert f"refused its result file: {why}" in h["reason"]
    assert [p["status"] for p in h["packages"]] == ["failed"]
    assert [e for _, e in task_events(lab_fleet, host)] == [
        "registered", "started", "stopped", "deleted"]
    assert pending(lab_fleet, host) == ["KB2267602"]
    assert_nothing_left(lab_fleet, host)


def test_a_task_folder_someone_else_owns_is_refused(
        lab_fleet, lab_fresh_windows_host, tmp_path, monkeypatch, capsys) -> None:
    """A user (Users may create folders in ProgramData) made the folder first: it is refused
    before any task is registered, and left as it is for an administrator to look at."""
    host = lab_fresh_windows_host
    state = set_updates(lab_fleet, host, [DEFENDER])
    user_dir = {"type": "dir", "sddl": "O:BUG:SYD:AI(A;OICI;FA;;;BU)(A;OICIID;FA;;;SY)"}
    state["files"][TASK_DIR] = user_dir
    lab_fleet.set_windows_state(host, state)
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host))
    code, out = apply(capsys)
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed"
    assert "is owned by S-1-5-32-545, not by SYSTEM or Administrators: refusing it" in h["reason"]
    assert task_events(lab_fleet, host) == []
    assert lab_fleet.windows_state(host)["files"][TASK_DIR] == user_dir
    assert pending(lab_fleet, host) == ["KB2267602"]
