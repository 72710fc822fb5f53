"""The pending-updates facts beyond their golden outputs: the sh command run by a real /bin/sh
against stand-in package managers (which tool is called, with which arguments, and that host
data never runs as shell), rpm version ordering, severity names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.facts import FACTS, FactBatch, FactRequest
from orchestrator.facts.base import FactParseError
from orchestrator.facts.updates import (
    evr_compare,
    normalise_severity,
    rpmvercmp,
    updates_cmd,
    win_updates_cmd,
)

TOOLS = ("sed", "tr", "grep", "mktemp", "rm", "cat", "sh")
FAKES = Path(__file__).parent / "fakes"


def fake_host(tmp_path: Path, fakes: list[str]) -> dict[str, str]:
    """A PATH with only the coreutils the command needs plus stand-ins from fakes/ (each logs
    its command line to tmp_path/calls)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_ / tool).symlink_to(found)
    for name in fakes:
        path = bin_ / name
        body = (FAKES / name).read_text()
        path.write_text("#!/bin/sh\n" + f'echo "$0 $*" >> {tmp_path}/calls\n' + body)
        path.chmod(0o755)
    return {"PATH": str(bin_), "HOME": str(tmp_path)}


def scan(tmp_path: Path, env: dict[str, str], *args: str):
    """Run the fact through a FactBatch script with /bin/sh, as gather() does over SSH."""
    req = FactRequest("updates.pending", args)
    batch = FactBatch("sh")
    batch.add(req)
    assert req in batch.requests, batch.rejected
    res = subprocess.run(["/bin/sh", "-c", batch.script()], capture_output=True, env=env,
                         cwd=tmp_path, timeout=60)
    return batch.parse(res.stdout, res.stderr)[req]


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []




def test_apt_refreshes_then_lists(tmp_path: Path) -> None:
    env = fake_host(tmp_path, ["apt-get"])
    result = scan(tmp_path, env)
    assert result.error is None, result.error
    assert [(u.name, u.classification) for u in result.value.updates] == [
        ("openssl", "security"), ("tzdata", "other")]
    assert [c.split("/")[-1] for c in calls(tmp_path)] == [
        "apt-get -q update",
        "apt-get -s -o Debug::NoLocking=1 --ignore-hold dist-upgrade",
    ]


def test_apt_norefresh_does_not_update(tmp_path: Path) -> None:
    env = fake_host(tmp_path, ["apt-get"])
    result = scan(tmp_path, env, "norefresh")
    assert result.error is None and not result.value.refreshed
    assert not any(c.endswith(" update") for c in calls(tmp_path))


def test_apt_refresh_warning_with_exit_0_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    env = fake_host(tmp_path, ["apt-get"]) | {"APT_FAIL": "1"}
    result = scan(tmp_path, env)
    assert result.value is None
    assert result.error.startswith("apt-get update failed (exit 0): W: Failed to fetch")


def test_prefers_apt_on_a_debian_host(tmp_path: Path) -> None:
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "ID=debian" not in release and "ID=ubuntu" not in release:
        pytest.skip("this machine is not Debian or Ubuntu")
    every = fake_host(tmp_path, ["apt-get", "dnf", "rpm", "zypper"])
    assert scan(tmp_path, every).value.manager == "apt"


def test_no_manager(tmp_path: Path) -> None:
    env = fake_host(tmp_path, [])
    assert scan(tmp_path, env).error == "none of apt-get, dnf or zypper found on the host"




def test_dnf_arguments_reach_dnf_unglobbed(tmp_path: Path) -> None:
    # a file whose name the unquoted --setopt glob would match must not change the argument
    (tmp_path / "--setopt=x.skip_if_unavailable=False").write_text("")
    env = fake_host(tmp_path, ["dnf", "rpm"])
    result = scan(tmp_path, env)
    assert result.error is None, result.error
    (u,) = result.value.updates
    assert (u.name, u.current, u.available, u.severity, u.advisory) == (
        "kernel", "5.14.0-362.el9", "5.14.0-427.el9", "high", "RLSA-2024:1")
    got = [c.split("/")[-1] for c in calls(tmp_path)]
    assert got[0] == "dnf -q --setopt=*.skip_if_unavailable=False makecache"
    assert all("--setopt=*.skip_if_unavailable=False" in c for c in got if c.startswith("dnf"))
    assert all(" -C " in c for c in got[1:] if c.startswith("dnf"))




def test_zypper_patch_names_from_the_host_are_arguments_never_shell(tmp_path: Path) -> None:
    env = fake_host(tmp_path, ["zypper"])
    result = scan(tmp_path, env)
    assert result.error is None, result.error
    assert not (tmp_path / "PWNED").exists()
    args = (tmp_path / "info-args").read_text().splitlines()
    assert args[-4:] == ["--", "$(touch PWNED)", "-rf *", "*"]
    assert [(u.name, u.classification) for u in result.value.updates] == [("vim", "other")]


def test_only_norefresh_is_accepted_and_the_command_is_fixed() -> None:
    batch = FactBatch("sh")
    bad = FactRequest("updates.pending", ("; reboot",))
    batch.add(bad)
    assert batch.rejected[bad].error == "rejected: the only argument is 'norefresh'"
    assert updates_cmd(()).replace("R=1", "R=0", 1) == updates_cmd(("norefresh",))
    assert "$q.Online = $true" in win_updates_cmd(())
    assert "$q.Online = $false" in win_updates_cmd(("norefresh",))
    assert FACTS["win.updates.pending"].shell == "powershell"


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0.1", "2.0", 1),
        ("2.0", "2.0.1", -1),
        ("5.5p1", "5.5p10", -1),
        ("10xyz", "10.1xyz", -1),
        ("xyz10", "xyz10.1", -1),
        ("1.0a", "1.0", 1),
        ("2a", "2.0", -1),
        ("a", "1", -1),
        ("1", "a", 1),
        ("2.0", "2_0", 0),
        ("1.0010", "1.9", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0^", "1.0", 1),
        ("1.0^git1", "1.01", -1),
        ("1.0^git1~pre", "1.0^git1", -1),
        ("362.8.1.el9_3", "284.30.1.el9_2", 1),
    ],
)
def test_rpmvercmp(a: str, b: str, want: int) -> None:
    assert rpmvercmp(a, b) == want
    assert rpmvercmp(b, a) == -want


def test_evr_compare_epoch_first() -> None:
    assert evr_compare("1:1.0-1", "9.9-9") == 1
    assert evr_compare("5.14.0-362.8.1.el9_3", "5.14.0-284.30.1.el9_2") == 1
    assert evr_compare("2.34-83.el9_3.7", "2.34-83.el9_3.12") == -1


@pytest.mark.parametrize(
    ("word", "want"),
    [("Critical", "critical"), ("Important", "high"), ("Moderate", "medium"), ("low", "low"),
     ("None", None), ("", None), (None, None), ("unspecified", None), ("HIGH", "high")],
)
def test_severity_names(word: str | None, want: str | None) -> None:
    assert normalise_severity(word) == want


def test_unknown_severity_is_an_error() -> None:
    with pytest.raises(FactParseError, match="unknown severity 'Urgent'"):
        normalise_severity("Urgent")


def test_command_is_posix_sh() -> None:
    for args in ((), ("norefresh",)):
        res = subprocess.run(["/bin/sh", "-n", "-c", updates_cmd(args)], capture_output=True)
        assert res.returncode == 0, res.stderr


def test_windows_script_parses_in_the_lab_powershell_subset() -> None:
    from orchestrator.lab.winps_lang import Parser

    batch = FactBatch("powershell")
    batch.add(FactRequest("win.updates.pending", ("norefresh",)))
    assert Parser(batch.script()).script()
