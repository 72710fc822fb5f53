"""The Windows command interpreter behind the lab's WinRM endpoint: golden cases, no root needed.

Each case in winps_cases/*.json: {"command": ..., "stdout_json" | "stdout": ..., "code": N,
"stderr_contains": optional, "state_after": optional {dotted.path: value}}.
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
    state_path.write_text(json.dumps(default_state("lab-win-01")))
    cmd = case["command"]
    line = _encoded(cmd["ps"]) if "ps" in cmd else cmd["cmd"]
    out, err, code = winps.run_command(str(state_path), line, [])
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
