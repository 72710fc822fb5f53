"""The Windows command interpreter behind the lab's WinRM endpoint: golden cases, no root needed.

Each case in winps_cases/*.json: {"command": ..., "stdout_json" | "stdout": ..., "code": N,
"stderr_contains": optional, "state_before" and "state_after": optional {dotted.path: value}
(set in the default state before the command; expected in the state after it), "identity":
optional "system" (run as SYSTEM on the host, as a scheduled task does, instead of in the
administrator's WinRM session)}.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from orchestrator.lab import winps
from orchestrator.lab.winstate import default_state

CASES = sorted((Path(__file__).parent / "winps_cases").glob("*.json"))


def _encoded(script: str) -> str:
    return "powershell -encodedcommand " + base64.b64encode(script.encode("utf-16-le")).decode()


@pytest.mark.parametrize("case_path", CASES, ids=[c.stem for c in CASES])
def test_winps_case(case_path, tmp_path):
    case = json.loads(case_path.read_text())
    state_path = tmp_path / "host.json"
    state = default_state("lab-win-01")
    for dotted, value in case.get("state_before", {}).items():
        *parents, last = dotted.split(".")
        target = state
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
    state_path.write_text(json.dumps(state))
    cmd = case["command"]
    line = _encoded(cmd["ps"]) if "ps" in cmd else cmd["cmd"]
    system = case.get("identity", "session") == "system"
    out, err, code = winps.run_command(str(state_path), line, [], system=system)
    assert code == case["code"], err
    if "stdout_json" in case:
        assert json.loads(out) == case["stdout_json"]
    if "stdout" in case:
        assert out.decode() == case["stdout"]
    if "stderr_contains" in case:
        assert case["stderr_contains"] in err.decode()
    state = json.loads(state_path.read_text())
    for dotted, expected in case.get("state_after", {}).items():
        value = state
        for part in dotted.split("."):
            value = value[part] if not isinstance(value, list) else value[int(part)]
        assert value == expected, dotted


def test_fact_batch_runs_in_the_emulator(tmp_path):
    """The facts layer's own PowerShell batch (exactly what the WinRM transport sends), run by
    the emulator: every Windows fact parses, including missing services, keys and values."""
    from orchestrator.facts import FactBatch, FactRequest, to_jsonable

    lsa = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"
    state = default_state("lab-win-01")
    state["services"]["Spooler"]["Status"] = "Stopped"
    state["registry"][lsa]["Notes"] = ["a", "it's <b>"]
    state["registry"][lsa]["Path"] = {"kind": "ExpandString", "value": "%SystemRoot%\\x"}
    state["registry"]["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"] = {
        "PendingFileRenameOperations": ["\\??\\C:\\a", ""]}
    state["reboot_pending"] = True
    state_path = tmp_path / "host.json"
    state_path.write_text(json.dumps(state))
    reqs = [
        FactRequest("win.services", ("winrm",)),
        FactRequest("win.services", ("Spooler", "NoSuch", "Spool*")),
        FactRequest("win.hotfixes"),
        FactRequest("win.registry", (lsa, "LmCompatibilityLevel")),
        FactRequest("win.registry", (lsa, "Notes")),
        FactRequest("win.registry", (lsa, "Path")),
        FactRequest("win.registry", (lsa, "it's")),
        FactRequest("win.registry", ("HKLM:\\SOFTWARE\\No'Such", "x")),
        FactRequest("win.reboot.pending"),
    ]
    batch = FactBatch("powershell")
    batch.extend(reqs)
    # sent as the WinRM transport sends it: the short bootstrap line, the batch on stdin
    from orchestrator.transports.winrm import POWERSHELL_ARGS, stdin_payload

    args = list(POWERSHELL_ARGS)
    assert winps.wants_stdin("powershell.exe", args)
    out, err, code = winps.run_command(str(state_path), "powershell.exe", args,
                                       stdin_payload(batch.script()))
    assert (code, err) == (0, b"")
    got = {r.key: (v.error or to_jsonable(v.value)) for r, v in batch.parse(out, err).items()}
    svc = got["win.services:winrm"]["winrm"]
    assert (svc["exists"], svc["status"], svc["start_type"]) == (True, "Running", "Automatic")
    many = got["win.services:Spooler,NoSuch,Spool*"]
    assert [many[n]["exists"] for n in ("Spooler", "NoSuch", "Spool*")] == [True, False, False]
    assert many["Spooler"]["status"] == "Stopped"
    assert got["win.hotfixes"]["KB5034441"]["installed_on"] == "2024-01-09"
    reg = {k.split(",")[-1]: (v["key_exists"], v["exists"], v["kind"], v["value"])
           for k, v in got.items() if k.startswith("win.registry")}
    assert reg == {
        "LmCompatibilityLevel": (True, True, "DWord", 5),
        "Notes": (True, True, "MultiString", ["a", "it's <b>"]),
        "Path": (True, True, "ExpandString", "%SystemRoot%\\x"),
        "it's": (True, False, None, None),
        "x": (False, False, None, None),
    }
    assert got["win.reboot.pending"]["required"] is True
    assert len(got["win.reboot.pending"]["reasons"]) == 2  # Windows Update + file renames


def _batch_run(state: dict, tmp_path, reqs: list) -> dict:
    """Run the facts layer's PowerShell batch as the WinRM transport sends it (the bootstrap
    line, the batch on stdin); each request's error or value."""
    from orchestrator.facts import FactBatch, to_jsonable
    from orchestrator.transports.winrm import POWERSHELL_ARGS, stdin_payload

    state_path = tmp_path / "host.json"
    state_path.write_text(json.dumps(state))
    batch = FactBatch("powershell")
    batch.extend(reqs)
    out, err, code = winps.run_command(str(state_path), "powershell.exe", list(POWERSHELL_ARGS),
                                       stdin_payload(batch.script()))
    assert (code, err) == (0, b"")
    return {r.key: (v.error or to_jsonable(v.value)) for r, v in batch.parse(out, err).items()}


@pytest.mark.parametrize("args", [(), ("norefresh",)])
def test_windows_update_fact_runs_unmodified_in_a_batch(tmp_path, args):
    """win.updates.pending's own script (the Windows Update Agent search) in a batch with
    another fact: both sections come back with their markers and parse."""
    from orchestrator.facts import FactRequest

    got = _batch_run(default_state("lab-win-01"), tmp_path,
                     [FactRequest("win.updates.pending", args), FactRequest("win.hotfixes")])
    listing = got["win.updates.pending" + (":norefresh" if args else "")]
    assert (listing["manager"], listing["refreshed"]) == ("windows", not args)
    seen = {u["name"]: (u["classification"], u["severity"], u["released"],
                        u["reboot_suggested"]) for u in listing["updates"]}
    assert seen == {  # the hidden KB5035961 is not found (IsHidden=0)
        "KB5035857": ("security", "critical", "2024-03-12", True),
        "KB890830": ("bugfix", None, "2024-03-12", False),
        "KB2267602": ("other", None, "2024-03-20", False),
    }
    assert set(got["win.hotfixes"]) == {"KB5034439", "KB5034441"}


def test_windows_update_search_failure_is_that_fact_alone(tmp_path):
    from orchestrator.facts import FactRequest

    state = default_state("lab-win-01")
    state["update_search_error"] = "0x8024402C"
    got = _batch_run(state, tmp_path,
                     [FactRequest("win.updates.pending"), FactRequest("win.hotfixes")])
    assert got["win.updates.pending"] == (
        'Windows Update search failed: Exception calling "Search" with "1" argument(s): '
        '"Exception from HRESULT: 0x8024402C"')
    assert set(got["win.hotfixes"]) == {"KB5034439", "KB5034441"}


def test_the_update_search_is_not_keyed_on_the_script_text(tmp_path):
    """Naming Microsoft.Update.Session in a comment or a string changes nothing: the script is
    interpreted, not recognised."""
    state_path = tmp_path / "host.json"
    state_path.write_text(json.dumps(default_state("lab-win-01")))
    script = "# Microsoft.Update.Session is not used here\n'Microsoft.Update.Session'; hostname"
    out, err, code = winps.run_command(str(state_path), _encoded(script), [])
    assert (out, err, code) == (b"Microsoft.Update.Session\nLAB-WIN-01\n", b"", 0)
