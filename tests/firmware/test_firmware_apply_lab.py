"""`firmware apply` against the lab's BMCs through ansible-runner and the shipped Redfish
playbook: each component in order, the BMC's task followed to its end, the resets it asks for,
the version read back; then the faults, each with `log verify`: a task that fails half way, one
that never ends (timeout), a "successful" task that changed nothing, refused credentials, an
unreachable BMC, the power-state precondition and the failure budget."""

from __future__ import annotations

import json
from pathlib import Path

from fwlab import FAST, inventory_copy, policy_text, workdir

from orchestrator.cli.main import main


def records(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["log", "--format", "json"]) == 0
    return [json.loads(x) for x in capsys.readouterr()[0].splitlines()]


def apply(capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", "firmware", "apply", "--group", "fw", *extra])
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def verify(capsys) -> None:
    capsys.readouterr()
    assert main(["log", "verify"]) == 0, capsys.readouterr()


def setup(tmp_path: Path, lab, components: list[dict], hosts: list[str], *, inv_hosts=None,
          **policy) -> Path:
    inv = inventory_copy(lab, tmp_path / "inv.yml", hosts=inv_hosts, every=FAST)
    return workdir(tmp_path, lab, policy_text(components, hosts=hosts, **policy), inv)


def test_components_in_order_with_resets_then_nothing_twice(lab_fleet, bmcs, tmp_path,
                                                            monkeypatch, capsys):
    lab = lab_fleet
    comps = [
        {"match": "BIOS", "version": "2.19.1", "image": lab.firmware_image(
            "t-bios-2.19.1.bin", "BIOS", "2.19.1", seconds=1, reset="system")},
        {"match": "BMC", "version": "7.10.30", "image": lab.firmware_image(
            "t-bmc-7.10.30.bin", "BMC", "7.10.30", seconds=1, reset="manager",
            reset_seconds=2)},
        {"match": "NIC*", "version": "22.41.0", "image": lab.firmware_image(
            "t-nic-22.41.0.bin", "NIC", "22.41.0", seconds=1)},
    ]
    hosts = bmcs[:2]
    monkeypatch.chdir(setup(tmp_path, lab, comps, hosts, power="On"))
    code, got = apply(capsys)
    assert code == 0, got
    assert [b for b in got["batches"]] == [[hosts[0]], [hosts[1]]]
    for h in got["hosts"]:
        assert h["status"] == "done", h
        assert [(c["id"], c["before"], c["after"], c["status"]) for c in h["components"]] == [
            ("BIOS", "2.18.0", "2.19.1", "updated"), ("BMC", "7.00.00", "7.10.30", "updated"),
            ("NIC", "22.31.6", "22.41.0", "updated")]
    for n in hosts:
        fw = lab.firmware(n)
        assert (fw["BIOS"]["Version"], fw["BMC"]["Version"], fw["NIC"]["Version"]) == (
            "2.19.1", "7.10.30", "22.41.0")
        assert [t["components"] for t in lab.firmware_tasks(n)] == [["BIOS"], ["BMC"], ["NIC"]]
    recs = records(capsys)
    mine = [r for r in recs if r["host"] == hosts[0]]
    assert [(r["action"], r["status"], r["details"].get("component")) for r in mine
            if r["action"].startswith("firmware.") and r["action"] != "firmware.scan"] == [
        # each component recorded when it ends, the host with its result
        ("firmware.task", "started", "BIOS"), ("firmware.update", "updated", "BIOS"),
        ("firmware.reset", "done", "BIOS"),
        ("firmware.task", "started", "BMC"), ("firmware.update", "updated", "BMC"),
        ("firmware.reset", "done", "BMC"),
        ("firmware.task", "started", "NIC"), ("firmware.update", "updated", "NIC"),
        ("firmware.apply", "done", None)]
    resets = [r["details"] for r in mine if r["action"] == "firmware.reset"]
    assert [(r["target"], r["resetType"]) for r in resets] == [
        ("system", "ForceRestart"), ("bmc", "GracefulRestart")]
    # the same again: every component current, nothing flashed
    code, got = apply(capsys)
    assert code == 0 and {h["status"] for h in got["hosts"]} == {"up-to-date"}
    assert all(len(lab.firmware_tasks(n)) == 3 for n in hosts)
    verify(capsys)


def test_task_faults_are_recorded_and_spend_the_budget(lab_fleet, bmcs, tmp_path, monkeypatch,
                                                       capsys):
    lab = lab_fleet
    cases = {  # image fault -> what the host's component says
        "fail-halfway": ("failed", "task failed: the BMC's task ended Exception"),
        "hang": ("timeout", "task timed out: the BMC's task"),
        "no-change": ("failed", "the version is 22.31.6 after a task that ended Completed"),
    }
    for fault, (status, words) in cases.items():
        folder = tmp_path / fault
        folder.mkdir()
        image = lab.firmware_image(f"t-nic-{fault}-22.41.0.bin", "NIC", "22.41.0", seconds=1,
                                   fault=fault)
        host = bmcs[0]
        lab.restore_bmc(host)
        monkeypatch.chdir(setup(folder, lab, [{"match": "NIC", "version": "22.41.0",
                                               "image": image}], [host, bmcs[1]],
                                inv_hosts={host: {"orchestrator_firmware_timeout": 4}},
                                serial="[1]"))
        code, got = apply(capsys)
        by = {h["host"]: h for h in got["hosts"]}
        assert code == 2, got
        comp = by[host]["components"][0]
        assert (by[host]["status"], comp["status"]) == ("failed", status), by[host]
        assert words in comp["reason"] and words in by[host]["reason"], comp
        # maxFailures 0: the next batch never starts
        assert by[bmcs[1]]["status"] == "budget-exhausted"
        assert lab.firmware_tasks(bmcs[1]) == []
        assert lab.firmware(host)["NIC"]["Version"] == "22.31.6"
        recs = records(capsys)
        update = [r for r in recs if r["action"] == "firmware.update"]
        assert [(r["host"], r["status"]) for r in update] == [(host, status)]
        assert any(r["action"] == "skip" and r["status"] == "budget-exhausted"
                   and r["host"] == bmcs[1] for r in recs)
        verify(capsys)
        if fault == "hang":
            # the BMC still works on it: the next run follows that task, flashes nothing new
            code, got = apply(capsys)
            [c] = [h for h in got["hosts"] if h["host"] == host][0]["components"]
            assert c["status"] == "timeout" and "that an earlier run started" in c["reason"]
            assert len(lab.firmware_tasks(host)) == 1
        lab.restore_bmc(host)  # ends a hung task (a BMC reset)


def test_bmc_faults_and_the_power_precondition(lab_fleet, bmcs, tmp_path, monkeypatch, capsys):
    lab = lab_fleet
    image = lab.firmware_image("t-nic2-22.41.0.bin", "NIC", "22.41.0", seconds=1)
    refused, down, off = bmcs
    password = lab.secrets["bmc_password"]
    monkeypatch.chdir(setup(tmp_path, lab, [{"match": "NIC", "version": "22.41.0",
                                             "image": image}], bmcs,
                            inv_hosts={refused: {"bmc_password": "not-" + password}},
                            power="On", serial="['100%']", max_failures=3))
    lab.bmc_down(down)
    lab.set_power(off, "Off")
    try:
        code, got = apply(capsys)
    finally:
        lab.bmc_up(down)
    by = {h["host"]: h for h in got["hosts"]}
    assert code == 2
    assert by[refused]["status"] == "failed"
    assert "refused the credentials (HTTP 401)" in by[refused]["reason"]
    assert by[down]["status"] == "failed" and "connection refused" in by[down]["reason"]
    assert by[off]["status"] == "failed"
    assert "power state is Off; the firmware policy requires On" in by[off]["reason"]
    for n in bmcs:
        assert lab.firmware_tasks(n) == [], n  # nothing was flashed anywhere
    recs = records(capsys)
    # the BMCs the scan could not read never reach the playbook: their scan says why
    assert {r["host"]: r["status"] for r in recs if r["action"] == "firmware.apply"} == {
        off: "failed"}
    assert {r["host"]: r["status"] for r in recs if r["action"] == "firmware.scan"} == {
        refused: "error", down: "unreachable", off: "outdated"}
    assert password not in json.dumps(recs) and password not in json.dumps(got)
    verify(capsys)


def test_check_shows_what_would_be_flashed_and_changes_nothing(lab_fleet, bmcs, tmp_path,
                                                              monkeypatch, capsys):
    lab = lab_fleet
    image = lab.firmware_image("t-bios-check.bin", "BIOS", "2.19.1", seconds=1)
    monkeypatch.chdir(setup(tmp_path, lab, [{"match": "BIOS", "version": "2.19.1",
                                             "image": image}], bmcs[:2], window="never"
                            if False else "always"))
    lab.set_firmware(bmcs[1], "BIOS", "2.19.1")
    code, got = apply(capsys, "--check")
    by = {h["host"]: h for h in got["hosts"]}
    assert code == 0 and got["status"] == "check"
    assert by[bmcs[0]]["status"] == "would-update"
    assert by[bmcs[0]]["components"][0]["before"] == "2.18.0"
    assert by[bmcs[1]]["status"] == "up-to-date"
    assert lab.firmware_tasks(bmcs[0]) == []
    assert not [r for r in records(capsys) if r["action"].startswith("firmware.apply")]
