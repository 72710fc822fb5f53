"""A policy's `mode: "644"` is the host's `0644` (the loader pads modes to four digits), and
the fact layer's own name checks match whole values."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.audit.checks import baseline_checks
from orchestrator.facts import FactRequest, FactResult
from orchestrator.facts.base import FactArgError, Output, safe_name
from orchestrator.facts.posix import parse_stat, sysctl_path
from orchestrator.policy.loader import load_policies

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def modes() -> dict[str, str | None]:
    ps = load_policies(GOLDEN / "mode-normalisation")
    return {rule.path: rule.mode for rule in ps.baselines["modes"].files}


def test_loader_pads_modes_to_four_digits(modes: dict[str, str | None]) -> None:
    assert modes == {"/etc/hosts": "0644", "/etc/shadow": "0640", "/usr/bin/sudo": "4755",
                     "/tmp": "1777", "/etc/ssh/sshd_config": "0600"}


def _judge(path: str, host_mode: str) -> tuple[bool, object, object]:
    """The audit's verdict on `file.mode:PATH` when the host's stat prints `host_mode`."""
    ps = load_policies(GOLDEN / "mode-normalisation")
    check = next(c for c in baseline_checks(ps.baselines["modes"]) if c.id == f"file.mode:{path}")
    stat = parse_stat(Output(f"root|root|{host_mode}|regular file|10|0|0\n"), (path,))
    passed, actual = check.judge({FactRequest("file.stat", (path,)): FactResult(stat)})
    return passed, check.expected, actual


@pytest.mark.parametrize(("path", "host"), [
    ("/etc/hosts", "644"), ("/etc/ssh/sshd_config", "600"), ("/usr/bin/sudo", "4755"),
    ("/tmp", "1777"), ("/etc/shadow", "640")])
def test_mode_written_with_three_digits_passes(path: str, host: str) -> None:
    passed, expected, actual = _judge(path, host)
    assert (passed, expected, actual) == (True, host.zfill(4), host.zfill(4))


@pytest.mark.parametrize(("path", "host"), [
    ("/etc/hosts", "664"), ("/etc/hosts", "4644"), ("/etc/ssh/sshd_config", "644")])
def test_other_modes_are_drift(path: str, host: str) -> None:
    passed, _expected, actual = _judge(path, host)
    assert (passed, actual) == (False, host.zfill(4))


@pytest.mark.parametrize("name", ["ssh\n", "sshd\n", "a\nb"])
def test_fact_name_check_matches_whole_names(name: str) -> None:
    with pytest.raises(FactArgError):
        safe_name(name, "service name")


def test_sysctl_name_check_matches_whole_names() -> None:
    assert sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    with pytest.raises(FactArgError):
        sysctl_path("net.ipv4.ip_forward\n")
