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
