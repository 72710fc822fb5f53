"""A check judged again from a recorded actual (plan's stored-results impact): one table."""

from __future__ import annotations

import pytest

from orchestrator.audit.rejudge import rejudge

CASES = [
    # check id, new expected, recorded actual, verdict
    ("package.installed:chrony", "installed", "4.3-2", True),
    ("package.installed:chrony", "installed", "absent", False),
    ("package.absent:telnetd", "absent", "absent", True),
    ("package.absent:telnetd", "absent", "0.17-44", False),
    ("service.running:sshd", "running", "running", True),
    ("service.running:sshd", "running", "not installed", False),
    ("service.disabled:cups", "disabled", "not installed", True),
    ("service.enabled:cron", "enabled", "disabled", False),
    ("file.exists:/etc/x", "present", "present", True),
    ("file.absent:/etc/x", "absent", "present", False),
    ("file.owner:/etc/x", "root", "root", True),
    ("file.owner:/etc/x", "root", "daemon", False),
    ("file.mode:/etc/x", "0640", "0640", True),
    ("file.mode:/etc/x", "0600", "0640", False),
    ("file.mode:/etc/x", "0600", "rw-r--r--", None),  # not octal: cannot tell
    ("file.contains:/etc/x", ["a"], ["a", "b"], True),  # every string was found
    ("file.contains:/etc/x", ["a", "c"], ["a", "b"], None),  # c never looked for
    ("file.contains:/etc/x", ["b"], {"missing": ["b"]}, False),
    ("file.contains:/etc/x", ["a"], {"missing": ["b"]}, None),
    ("file.sha256:/etc/x", "AB" * 32, "ab" * 32, True),
    ("sysctl:net.ipv4.ip_forward", "1", "0", False),
    ("sysctl:kernel.printk", "4  4 1 7", "4 4 1 7", True),
    ("sysctl:net.x", "1", "no such key", False),
    ("threshold.diskUsedPercent:/", "<= 85", 84.9, True),
    ("threshold.diskUsedPercent:/", "<= 60", 61.5, False),
    ("threshold.memoryUsedPercent", "<= 90", "fact error", None),
    ("registry:HKLM\\X\\Y", 1, 1, True),
    ("registry:HKLM\\X\\Y", 1, "key missing", False),
    ("hotfix:KB1", "installed", "missing", False),
    ("ansible:whatever", "x", "x", None),  # unknown kinds are never guessed
]


@pytest.mark.parametrize(("check", "expected", "actual", "verdict"), CASES)
def test_rejudge(check: str, expected, actual, verdict) -> None:
    assert rejudge(check, expected, actual) is verdict
