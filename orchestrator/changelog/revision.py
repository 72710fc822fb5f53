"""The policy revision on every record: the git commit of the policy directory, +dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

UNVERSIONED = "unversioned"


def policy_revision(policies: Path) -> str:
    folder = policies if policies.is_dir() else policies.parent
    if not folder.exists():
        return UNVERSIONED
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return UNVERSIONED
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=all", "--", "."],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return UNVERSIONED
    rev = head.stdout.strip()
    return rev + ("+dirty" if status.stdout.strip() else "")
