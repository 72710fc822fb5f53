"""The SSH transport's start-up cost: paramiko without `invoke` (~150 ms of every audit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from pathlib import Path
from orchestrator.errors import TransportError
from orchestrator.transports import TransportSettings, get_transport
t = get_transport("ssh", {"ansible_host": "127.0.0.1", "ansible_port": 1},
                  TransportSettings(known_hosts=Path("kh"), connect_timeout=2), host="h")
try:
    t.run("true")
except TransportError as exc:
    print("ERROR", exc)
print("PARAMIKO", "paramiko.client" in sys.modules)
print("INVOKE", "invoke" in sys.modules)
try:
    import invoke  # noqa: F401 - still importable by whoever needs it
    print("IMPORTABLE", True)
except ImportError:
    print("IMPORTABLE", "missing" if sys.modules.get("invoke", 0) == 0 else "blocked")
"""


def test_connecting_does_not_import_invoke(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout.splitlines()
    assert "ERROR h: cannot connect to 127.0.0.1:1: connection refused" in out, proc.stderr
    assert "PARAMIKO True" in out
    assert "INVOKE False" in out
    assert "IMPORTABLE blocked" not in out
