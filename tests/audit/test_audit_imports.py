"""The audit path imports check mode (ansible-runner's side) only for `ansible:` baselines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_audit_run_does_not_import_check_mode():
    probe = ("import sys\n"
             "import orchestrator.audit.run\n"
             "print(sorted(m for m in ('orchestrator.execution.checkmode',\n"
             "                         'orchestrator.execution.workspace', 'ansible_runner')\n"
             "             if m in sys.modules))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
