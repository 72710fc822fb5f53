"""The fwupd flavour (lab-fw-NN): Debian's fwupd with its test device, cabinets served by the
lab repository, versions that survive reboots, and the fault controls of Lab."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.lab import lab as lab_group
from orchestrator.config import Config
from orchestrator.context import AppContext
from orchestrator.errors import LabError
from orchestrator.facts.base import FactRequest
from orchestrator.facts.fwupd import FwupdDevices, install_argv, parse_devices_json, parse_install
from orchestrator.facts.gather import gather
from orchestrator.lab.flavours import FLAVOURS, LAYER_FILES_BY_FLAVOUR
from orchestrator.lab.fleet import Lab, _layer_stamp
from orchestrator.lab.fwupd import (
    BOOT_HOOK_PATH,
    TEST_DEVICE_ID,
    TEST_GUID,
    CabError,
    cab_name,
    make_cab,
    version_number,
)
from orchestrator.lab.rootfs import VARIANTS

# sha256 of `fwupdtool build-cabinet` (fwupd 2.0.20) over the same firmware.bin and
# firmware.metainfo.xml for 7.10.30: make_cab writes the very same bytes
FWUPDTOOL_7_10_30 = "3e295311a1597445199d2b19fc92abb96f09e32d0e34e83fecc7cede3406e044"
DOWNLOAD = "python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])'"


# ---- without the lab ----------------------------------------------------------------------
def test_cabinet_is_byte_for_byte_what_fwupdtool_builds():
    raw = make_cab("7.10.30")
    assert hashlib.sha256(raw).hexdigest() == FWUPDTOOL_7_10_30
    assert raw[:4] == b"MSCF" and b"118095902" in raw  # 7 << 24 | 10 << 16 | 30
    assert cab_name("7.10.30") == "lab-webcam-7.10.30.cab"


@pytest.mark.parametrize("bad", ["1.2", "1.2.3.4", "01.2.3", "1.256.0", "1.2.65536", "0.0.0",
                                 "60.0.0", "59.157.0", "1.2.3;id", "1.2.3\n", "", "a.b.c", None])
def test_versions_the_test_device_cannot_show_are_refused(bad):
    with pytest.raises(CabError):
        make_cab(bad)


def test_version_numbers_fill_nine_digits_at_most():
    assert version_number("59.154.51711") == 999_999_999
    with pytest.raises(CabError):
        version_number("59.154.51712")
    assert version_number("1.2.2") == (1 << 24) | (2 << 16) | 2


def test_flavour_wiring():
    fl = FLAVOURS["fwupd"]
    assert (fl.prefix, fl.group, fl.rootfs, fl.packaging, fl.boot) == (
        "lab-fw-", "lab_fwupd", "fwupd", "deb", (BOOT_HOOK_PATH,))
    packages, _ = VARIANTS["fwupd"]
    assert {"fwupd", "dbus", "systemd-standalone-sysusers", "openssh-server"} <= set(packages)
    assert "systemd" not in packages
    files = LAYER_FILES_BY_FLAVOUR["fwupd"]
    conf = files["etc/fwupd/fwupd.conf"][0]
    for line in ("TestDevices=true", "OnlyTrusted=false", "IdleTimeout=0"):
        assert line in conf.splitlines()
    assert files[BOOT_HOOK_PATH.lstrip("/")][1] == 0o755
    assert files["usr/sbin/reboot"] == LAYER_FILES_BY_FLAVOUR["apt"]["usr/sbin/reboot"]
    # the apt hosts stay lean: nothing of fwupd in their layer or rootfs
    assert not any("fwupd" in path for path in LAYER_FILES_BY_FLAVOUR["apt"])
    assert "fwupd" not in VARIANTS["debian"][0]


def test_a_changed_layer_file_makes_a_new_layer_stamp():
    """The fwupd layer holds orchestrator/lab/fwupd.py itself: an edit must rebuild it."""
    files = dict(LAYER_FILES_BY_FLAVOUR["fwupd"])
    stamp = _layer_stamp(files)
    assert stamp == _layer_stamp(dict(reversed(files.items())))
    hook, mode = files[BOOT_HOOK_PATH.lstrip("/")]
    assert _layer_stamp({**files, BOOT_HOOK_PATH.lstrip("/"): (hook + "#\n", mode)}) != stamp
    assert _layer_stamp({**files, BOOT_HOOK_PATH.lstrip("/"): (hook, 0o644)}) != stamp


# ---- against the lab ----------------------------------------------------------------------
class _LabSh:
    """gather()'s Runner over the lab's SSH (as the orchestrator's SSH transport runs it)."""

    shell = "sh"

    def __init__(self, lab, host: str) -> None:
        self.lab, self.host = lab, host

    def run(self, command: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        line = " ".join([command, *(shlex.quote(a) for a in args)])
        return subprocess.run(self.lab.ssh_argv(self.host) + [line], capture_output=True,
                              timeout=timeout)


def _install(lab, host: str, image: str, timeout: float = 60):
    argv = install_argv(image, TEST_DEVICE_ID)
    proc = lab.ssh(host, "LC_ALL=C " + shlex.join(argv), check=False, timeout=timeout)
    return parse_install(proc.stdout, proc.stderr, proc.returncode)


def _download(lab, host: str, version: str) -> str:
    path = f"/tmp/{cab_name(version)}"
    lab.ssh(host, f"{DOWNLOAD} {shlex.quote(lab.fwupd_cab(version))} {path}")
    return path


def _test_device(lab, host: str):
    proc = lab.ssh(host, "LC_ALL=C fwupdmgr get-devices --json")
    [device] = [d for d in parse_devices_json(proc.stdout) if d.id == TEST_DEVICE_ID]
    return device


def test_fwupd_hosts_come_up_in_their_own_group(lab_fleet):
    hosts = lab_fleet.fwupd_hosts
    assert hosts and all(h.name.startswith("lab-fw-") for h in hosts)
    groups = yaml.safe_load(lab_fleet.inventory_path.read_text())["all"]["children"]
    assert sorted(groups["lab_fwupd"]["hosts"]) == [h.name for h in hosts]
    assert not {h.name for h in hosts} & set(groups["lab_linux"]["hosts"])
    octet = FLAVOURS["fwupd"].host_octet
    assert all(h.address.split(".")[2] == str(octet) for h in hosts)
    host = hosts[-1].name
    probe = lab_fleet.ssh(host, "command -v fwupdmgr apt-get; "
                                "dpkg-query -W -f '${Status}' systemd 2>&1; echo; "
                                "apt-cache policy acme-agent | grep -c 'lab' || true")
    lines = probe.stdout.split("\n")
    assert lines[:2] == ["/usr/bin/fwupdmgr", "/usr/bin/apt-get"]
    assert "ok installed" not in lines[2]  # fwupd without the full systemd
    # apt hosts stay lean: no fwupd there
    apt_host = lab_fleet.hosts[0].name
    assert lab_fleet.ssh(apt_host, "command -v fwupdmgr", check=False).returncode == 1


def test_get_devices_lists_the_test_device_and_the_fact_parses_it(lab_fleet,
                                                                   lab_fresh_fwupd_host):
    host = lab_fresh_fwupd_host
    device = _test_device(lab_fleet, host)
    assert (device.plugin, device.version, device.version_format) == ("test", "1.2.2", "triplet")
    assert TEST_GUID in device.guids and device.updatable and not device.reboot_applies
    [result] = gather(_LabSh(lab_fleet, host), [FactRequest("fwupd")], timeout=60).values()
    assert result.error is None, result.error
    assert isinstance(result.value, FwupdDevices)
    assert [d.version for d in result.value.matching(TEST_GUID)] == ["1.2.2"]
    assert lab_fleet.fwupd_version(host) == "1.2.2"


def test_install_from_the_repository_survives_reboots(lab_fleet, lab_fresh_fwupd_host,
                                                      lab_reboot):
    host = lab_fresh_fwupd_host
    url = lab_fleet.fwupd_cab("7.10.30")
    repo_address, _ = lab_fleet.repo_address
    assert url.startswith(f"http://{repo_address}") and url.endswith("/lab-webcam-7.10.30.cab")
    path = _download(lab_fleet, host, "7.10.30")
    assert _install(lab_fleet, host, path).status == "installed"
    assert lab_fleet.fwupd_version(host) == "7.10.30"
    lab_reboot(host)  # the host's own `reboot`: the supervisor's boot hook restores it
    assert lab_fleet.fwupd_version(host) == "7.10.30"
    lab_fleet.stop_host(host)
    lab_fleet.start_host(host)
    assert lab_fleet.fwupd_version(host) == "7.10.30"
    again = _install(lab_fleet, host, path)  # fwupd never flashes the same version twice
    assert again.status == "already-installed", again
    # fwupdmgr downloads an http URL itself, and a file put on the host works as well
    assert _install(lab_fleet, host, lab_fleet.fwupd_cab("7.10.31")).status == "installed"
    assert lab_fleet.fwupd_version(host) == "7.10.31"
    on_host = lab_fleet.fwupd_cab_file(host, "7.11.0")
    assert on_host == "/var/lib/lab-fwupd/lab-webcam-7.11.0.cab"
    assert _install(lab_fleet, host, on_host).status == "installed"
    assert lab_fleet.fwupd_version(host) == "7.11.0"


def test_reset_host_brings_back_the_first_version(lab_fleet, lab_fresh_fwupd_host):
    host = lab_fresh_fwupd_host
    assert _install(lab_fleet, host, lab_fleet.fwupd_cab_file(host, "2.0.0")).status == "installed"
    lab_fleet.reset_host(host)
    assert lab_fleet.fwupd_version(host) == "1.2.2"


def test_write_fails_until_cleared_and_a_reboot_keeps_the_old_version(lab_fleet,
                                                                      lab_fresh_fwupd_host,
                                                                      lab_reboot):
    host = lab_fresh_fwupd_host
    assert _install(lab_fleet, host, _download(lab_fleet, host, "3.0.0")).status == "installed"
    lab_fleet.fwupd_fault(host, "write-fails")
    outcome = _install(lab_fleet, host, _download(lab_fleet, host, "3.1.0"))
    assert outcome.status == "failed" and "write-firmware" in outcome.error, outcome
    device = _test_device(lab_fleet, host)
    assert (device.version, device.update_state) == ("3.0.0", "failed")
    lab_reboot(host)  # the failed update's history holds the old version; the fault is gone
    assert lab_fleet.fwupd_version(host) == "3.0.0"
    assert _install(lab_fleet, host, _download(lab_fleet, host, "3.1.0")).status == "installed"
    lab_fleet.fwupd_fault(host, "write-fails")
    lab_fleet.fwupd_clear(host)
    assert _install(lab_fleet, host, _download(lab_fleet, host, "3.2.0")).status == "installed"
    assert lab_fleet.fwupd_version(host) == "3.2.0"


def test_slow_install_takes_the_seconds_asked_for(lab_fleet, lab_fresh_fwupd_host):
    host = lab_fresh_fwupd_host
    fast, slow = (_download(lab_fleet, host, v) for v in ("4.0.0", "4.0.1"))
    t0 = time.monotonic()
    assert _install(lab_fleet, host, fast).status == "installed"
    quick = time.monotonic() - t0
    lab_fleet.fwupd_fault(host, "slow", seconds=2.5)
    t0 = time.monotonic()
    assert _install(lab_fleet, host, slow).status == "installed"
    assert time.monotonic() - t0 >= 2.5 > quick
    assert lab_fleet.fwupd_version(host) == "4.0.1"
    lab_fleet.fwupd_clear(host)
    t0 = time.monotonic()
    assert _install(lab_fleet, host, _download(lab_fleet, host, "4.0.2")).status == "installed"
    assert time.monotonic() - t0 < 2.5


def test_needs_reboot_changes_the_version_at_the_next_boot(lab_fleet, lab_fresh_fwupd_host,
                                                           lab_reboot):
    host = lab_fresh_fwupd_host
    lab_fleet.fwupd_fault(host, "needs-reboot")
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.0.0")).status == "installed"
    device = _test_device(lab_fleet, host)
    assert device.version == "1.2.2" and device.reboot_applies
    lab_reboot(host)
    device = _test_device(lab_fleet, host)
    assert device.version == "5.0.0" and not device.reboot_applies
    # the reboot cleared the fault: the next install shows at once
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.0.1")).status == "installed"
    assert lab_fleet.fwupd_version(host) == "5.0.1"


def test_no_change_keeps_the_old_version_through_the_reboot(lab_fleet, lab_fresh_fwupd_host,
                                                            lab_reboot):
    host = lab_fresh_fwupd_host
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.5.0")).status == "installed"
    lab_fleet.fwupd_fault(host, "no-change")
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.6.0")).status == "installed"
    assert _test_device(lab_fleet, host).reboot_applies
    lab_reboot(host)
    device = _test_device(lab_fleet, host)
    assert device.version == "5.5.0" and not device.reboot_applies
    lab_reboot(host)  # the fault was that one boot's; the update it spoiled stays lost
    assert lab_fleet.fwupd_version(host) == "5.5.0"
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.6.0")).status == "installed"
    assert lab_fleet.fwupd_version(host) == "5.6.0"
    # from the first version too, and fwupd_clear takes the fault back before any reboot
    lab_fleet.reset_host(host)
    lab_fleet.fwupd_fault(host, "no-change")
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.7.0")).status == "installed"
    lab_reboot(host)
    assert lab_fleet.fwupd_version(host) == "1.2.2"
    lab_fleet.fwupd_fault(host, "no-change")
    lab_fleet.fwupd_clear(host)
    assert _install(lab_fleet, host, _download(lab_fleet, host, "5.8.0")).status == "installed"
    lab_reboot(host)
    assert lab_fleet.fwupd_version(host) == "5.8.0"


def test_hang_blocks_fwupdmgr_until_cleared_or_rebooted(lab_fleet, lab_fresh_fwupd_host,
                                                        lab_reboot):
    host = lab_fresh_fwupd_host
    path = _download(lab_fleet, host, "6.0.0")
    lab_fleet.fwupd_fault(host, "hang")
    blocked = lab_fleet.ssh(host, f"timeout 3 fwupdmgr install {path} {TEST_DEVICE_ID} "
                                  "--json --assume-yes --no-reboot-check", check=False)
    assert blocked.returncode == 124  # killed by timeout(1): fwupdmgr never got an answer
    with pytest.raises(LabError, match="did not answer within 2 s"):
        lab_fleet.fwupd_version(host, timeout=2)
    lab_fleet.fwupd_clear(host)
    assert lab_fleet.fwupd_version(host, timeout=10) == "1.2.2"
    assert _install(lab_fleet, host, path).status == "installed"
    lab_fleet.fwupd_fault(host, "hang")
    lab_reboot(host)  # a reboot kills the stopped daemon; the boot hook starts a new one
    assert lab_fleet.fwupd_version(host, timeout=10) == "6.0.0"
    lab_fleet.fwupd_fault(host, "hang")
    lab_fleet.reset_host(host)
    assert lab_fleet.fwupd_version(host, timeout=10) == "1.2.2"


def test_unreachable_daemon_is_a_lab_error(lab_fleet, lab_fresh_fwupd_host):
    host = lab_fresh_fwupd_host
    lab_fleet.ssh(host, "fwupdmgr quit; kill $(cat /run/dbus/pid)")
    with pytest.raises(LabError, match="not reachable"):
        lab_fleet.fwupd_version(host)


def test_fault_controls_refuse_bad_requests(lab_fleet):
    fw = lab_fleet.fwupd_hosts[-1].name
    with pytest.raises(LabError, match="not a fwupd host"):
        lab_fleet.fwupd_fault(lab_fleet.hosts[0].name, "write-fails")
    with pytest.raises(LabError, match="must be one of"):
        lab_fleet.fwupd_fault(fw, "explode")
    for seconds in (0, 10.5, True, "3"):
        with pytest.raises(LabError, match="at most 10 seconds"):
            lab_fleet.fwupd_fault(fw, "slow", seconds=seconds)
    with pytest.raises(LabError, match="not a test device version"):
        lab_fleet.fwupd_cab("1.2.3; touch /tmp/x")
    with pytest.raises(LabError, match="not a test device version"):
        lab_fleet.fwupd_cab_file(fw, "../../etc/x")


def test_cli_up_with_fwupd_hosts_and_down_leaves_nothing(tmp_path, monkeypatch):
    """`orchestrator lab up --fwupd N` in a folder of its own; `lab down` ends the host's
    D-Bus and fwupd daemons with it (nothing runs in its root any more)."""
    if os.geteuid() != 0:
        if os.environ.get("ORCHESTRATOR_LAB_REQUIRED") == "1":
            pytest.fail("the lab needs root (ORCHESTRATOR_LAB_REQUIRED=1)")
        pytest.skip("the lab needs root")

    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = AppContext(config=Config(base_dir=os.getcwd(), policies="p", inventory=None,
                                           playbooks="pb", state="sqlite:///x"))
    root.add_command(lab_group)

    def in_root(lab) -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.readlink(entry / "root").startswith(str(lab.root)):
                    found.append((entry / "comm").read_text().strip())
            except OSError:
                continue
        return found

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(root, ["lab", "up", "--hosts", "0", "--fwupd", "1"])
    lab = Lab(tmp_path / ".orchestrator" / "lab")
    try:
        assert res.exit_code == 0, res.output
        assert [h.name for h in lab.fwupd_hosts] == ["lab-fw-01"] and not lab.hosts
        assert "lab-fw-01" in runner.invoke(root, ["lab", "status"]).output
        assert lab.fwupd_version("lab-fw-01") == "1.2.2"
        assert {"dbus-daemon", "fwupd", "sshd"} <= set(in_root(lab))
    finally:
        res = runner.invoke(root, ["lab", "down", "--wipe"])
    assert res.exit_code == 0, res.output
    assert not in_root(lab) and lab.leftovers()["processes"] == []
