"""`method: fwupd` against the lab's fwupd host (Debian's fwupd with its test device, in-band
over SSH): scan, apply with the shipped playbook (download, `fwupdmgr install`, the reboot the
device asks for, the version read back), and the faults: a write that fails, a daemon that
hangs (timeout), firmware that needs a reboot, and a "successful" install that changed
nothing even after the reboot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fwlab import inventory_copy, policy_text, workdir

from orchestrator.cli.main import main

WEBCAM = "Integrated Webcam*"


def run(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", *args])
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def records(capsys, action: str) -> list[dict]:
    capsys.readouterr()
    assert main(["log", "--format", "json", "--action", action]) == 0
    return [json.loads(x) for x in capsys.readouterr()[0].splitlines()]


def setup(tmp_path: Path, lab, host: str, version: str, image: str, **host_vars) -> None:
    inv = inventory_copy(lab, tmp_path / "inv.yml", hosts={host: {
        "orchestrator_firmware_timeout": 60, "orchestrator_reboot_timeout": 60, **host_vars}})
    workdir(tmp_path, lab, policy_text([{"match": WEBCAM, "version": version, "image": image}],
                                       hosts=[host], method="fwupd"), inv)


def test_scan_then_apply_then_nothing_twice(lab_fleet, lab_fresh_fwupd_host, tmp_path,
                                            monkeypatch, capsys):
    lab, host = lab_fleet, lab_fresh_fwupd_host
    setup(tmp_path, lab, host, "1.2.4", lab.fwupd_cab("1.2.4"))
    monkeypatch.chdir(tmp_path)
    code, got = run(capsys, "firmware", "scan")
    [h] = got["hosts"]
    assert code == 2 and h["method"] == "fwupd" and h["status"] == "outdated"
    [c] = h["components"]
    assert (c["installed"], c["wanted"], c["status"]) == ("1.2.2", "1.2.4", "outdated")
    assert len(c["id"]) == 40 and c["name"].startswith("Integrated Webcam")
    code, got = run(capsys, "firmware", "apply", "--group", "fw")
    assert code == 0, got
    [h] = got["hosts"]
    assert h["status"] == "done"
    assert [(c["before"], c["after"], c["status"]) for c in h["components"]] == [
        ("1.2.2", "1.2.4", "updated")]
    assert lab.fwupd_version(host) == "1.2.4"
    code, got = run(capsys, "firmware", "apply", "--group", "fw")
    assert code == 0 and got["hosts"][0]["status"] == "up-to-date"
    assert [r["status"] for r in records(capsys, "firmware.update")] == ["updated"]
    # no image left behind on the host
    assert lab.ssh(host, "ls -d /tmp/orchestrator-fw-* 2>/dev/null | wc -l").stdout.strip() \
        == "0"


@pytest.mark.parametrize(("fault", "status", "words", "reboot"), [
    ("write-fails", "failed", "install: ", False),
    ("needs-reboot", "updated", "", True),
    ("no-change", "failed", "the version is still 1.2.2 after fwupdmgr install succeeded "
                            "and a reboot", True),
])
def test_install_faults(lab_fleet, lab_fresh_fwupd_host, tmp_path, monkeypatch, capsys, fault,
                        status, words, reboot):
    lab, host = lab_fleet, lab_fresh_fwupd_host
    setup(tmp_path, lab, host, "1.2.4", lab.fwupd_cab("1.2.4"))
    monkeypatch.chdir(tmp_path)
    lab.fwupd_fault(host, fault)
    boot = lab.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout
    code, got = run(capsys, "firmware", "apply", "--group", "fw")
    [h] = got["hosts"]
    [c] = h["components"]
    assert c["status"] == status, h
    assert words in (c["reason"] or ""), c
    assert code == (0 if status == "updated" else 2)
    rebooted = lab.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout != boot
    assert rebooted == reboot
    resets = records(capsys, "firmware.reset")
    assert [(r["details"]["target"], r["details"]["resetType"]) for r in resets] == (
        [("system", "reboot")] if reboot else [])
    assert lab.fwupd_version(host) == ("1.2.4" if status == "updated" else "1.2.2")
    capsys.readouterr()
    assert main(["log", "verify"]) == 0


def test_a_hung_daemon_times_out_and_is_recorded(lab_fleet, lab_fresh_fwupd_host, tmp_path,
                                                 monkeypatch, capsys):
    lab, host = lab_fleet, lab_fresh_fwupd_host
    setup(tmp_path, lab, host, "1.2.4", lab.fwupd_cab("1.2.4"),
          orchestrator_firmware_timeout=5)
    monkeypatch.chdir(tmp_path)
    # the scan happens before the hang: the apply's own reads then hang
    lab.fwupd_fault(host, "slow", seconds=8)
    code, got = run(capsys, "firmware", "apply", "--group", "fw")
    [h] = got["hosts"]
    assert code == 2 and h["status"] == "failed"
    [c] = h["components"]
    assert c["status"] == "timeout", c["reason"]
    assert [r["status"] for r in records(capsys, "firmware.update")] == ["timeout"]
    capsys.readouterr()
    assert main(["log", "verify"]) == 0


def test_an_update_written_before_a_killed_run_gets_its_reboot_not_a_second_install(
        lab_fleet, lab_fresh_fwupd_host, tmp_path, monkeypatch, capsys):
    """An earlier run installed firmware that applies at a reboot and stopped before the
    reboot: the next run reboots and reads the version back; it does not install again."""
    lab, host = lab_fleet, lab_fresh_fwupd_host
    setup(tmp_path, lab, host, "1.2.4", lab.fwupd_cab("1.2.4"))
    monkeypatch.chdir(tmp_path)
    lab.fwupd_fault(host, "needs-reboot")
    cab = lab.fwupd_cab_file(host, "1.2.4")
    lab.ssh(host, f"fwupdmgr install {cab} --json --assume-yes --no-reboot-check")
    assert lab.fwupd_version(host) == "1.2.2"
    history = lab.ssh(host, "fwupdmgr get-history --json").stdout
    code, got = run(capsys, "firmware", "apply", "--group", "fw")
    [c] = got["hosts"][0]["components"]
    assert code == 0 and c["status"] == "updated", c
    assert lab.fwupd_version(host) == "1.2.4"
    assert [(r["details"]["target"], r["details"]["resetType"])
            for r in records(capsys, "firmware.reset")] == [("system", "reboot")]
    # fwupd's own history holds the one install made above, not a second one
    after = lab.ssh(host, "fwupdmgr get-history --json").stdout
    assert after.count('"DeviceId"') == history.count('"DeviceId"'), (history, after)
