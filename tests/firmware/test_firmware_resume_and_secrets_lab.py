"""Two promises of the firmware rollout, against the lab: a run-window SIGKILLed while a BMC
is flashing is taken over by the next trigger, which follows the BMC's task instead of
flashing the component again; and the BMC password never shows in output, the change log,
ansible-runner's artifacts or `--verbose` traces."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from fwlab import FAST, inventory_copy, policy_text, workdir

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import LogFilter
from orchestrator.cli.main import main

ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ORCHESTRATOR), "--format", "json", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_sigkill_while_a_bmc_flashes_then_rerun_follows_the_task(lab_fleet, bmcs,
                                                                 tmp_path):
    lab = lab_fleet
    hosts = bmcs[:2]
    image = lab.firmware_image("t-nic-slow-22.41.0.bin", "NIC", "22.41.0", seconds=6)
    inv = inventory_copy(lab, tmp_path / "inv.yml", every=FAST)
    workdir(tmp_path, lab, policy_text([{"match": "NIC", "version": "22.41.0",
                                         "image": image}], hosts=hosts, serial="[1]"), inv)
    err = (tmp_path / "first.err").open("w")
    first = subprocess.Popen([str(ORCHESTRATOR), "--format", "json", "run-window", "always"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        store = None
        while time.monotonic() < deadline and first.poll() is None:
            if store is None and (tmp_path / "state.db").exists():
                store = SqliteStore(tmp_path / "state.db")
            if store is not None and [r for r in store.records(LogFilter(
                    action="firmware.task")) if r.host == hosts[1]]:
                break
            time.sleep(0.1)
        assert first.poll() is None, (tmp_path / "first.err").read_text()
        os.killpg(first.pid, signal.SIGKILL)  # the run and its ansible-playbook
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        err.close()
    [task] = lab.firmware_tasks(hosts[1])
    assert task["state"] in ("New", "Running"), task  # the BMC is still at work
    assert store is not None
    killed = next(r.run for r in store.records() if r.action == "run.start")

    second = run(tmp_path, "run-window", "always")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["reason"].startswith(f"took over from {killed}")
    [group] = out["groups"]
    by = {h["host"]: h for h in group["firmware"]["hosts"]}
    assert by[hosts[0]]["status"] == "already-done"
    assert by[hosts[1]]["status"] == "done", by[hosts[1]]
    [comp] = by[hosts[1]]["components"]
    assert comp["handle"] == f"/redfish/v1/TaskService/TaskMonitors/{task['Id']}"
    # one flash per component on each BMC: the second run followed the first one's task
    assert [len(lab.firmware_tasks(h)) for h in hosts] == [1, 1]
    assert [lab.firmware(h)["NIC"]["Version"] for h in hosts] == ["22.41.0", "22.41.0"]
    recs = list(store.records())
    [start] = [r for r in recs if r.action == "firmware.apply.start" and r.run != killed]
    assert start.details["resumed"] == [hosts[1]]
    outcomes = [r.host for r in recs if r.action == "firmware.apply"]
    assert sorted(outcomes) == sorted(hosts)
    assert run(tmp_path, "log", "verify").returncode == 0


def test_the_bmc_password_shows_nowhere(lab_fleet, bmcs, tmp_path,
                                        monkeypatch, capsys):
    """A canary: the lab's real BMC password, given as the inventory's lookup of an
    environment variable, and a wrong one written plainly in the inventory for another host;
    scan, apply (success and failure) and a failing run with --verbose; then every byte the
    runs left is searched. The plain one may be only where the inventory itself keeps it:
    the file, and the private cache of its parse (0600; README, "Inventory cache")."""
    from orchestrator.execution import workspace

    lab = lab_fleet
    canary = lab.secrets["bmc_password"]
    wrong = "canary-wrong-" + canary[::-1]
    kept = tmp_path / "kept-workspaces"
    real_rmtree = shutil.rmtree

    def keep_then_remove(path, *a, **kw):  # ansible-runner's private data dir, artifacts too
        shutil.copytree(path, kept / Path(path).name, symlinks=True,
                        ignore_dangling_symlinks=True, dirs_exist_ok=True)
        real_rmtree(path, *a, **kw)

    monkeypatch.setattr(workspace.shutil, "rmtree", keep_then_remove)
    image = lab.firmware_image("t-nic-canary.bin", "NIC", "22.41.0", seconds=1)
    bad = lab.firmware_image("t-nic-canary-fail.bin", "NIC", "22.41.0", seconds=1,
                             fault="fail-halfway")
    inv = inventory_copy(lab, tmp_path / "inv.yml", hosts={bmcs[1]: {"bmc_password": wrong}},
                         every={**FAST, "bmc_password": "{{ lookup('env', 'LAB_CANARY') }}"})
    monkeypatch.setenv("LAB_CANARY", canary)
    folder = workdir(tmp_path / "w", lab, policy_text(
        [{"match": "NIC", "version": "22.41.0", "image": image}], hosts=bmcs[:2],
        serial="['100%']", max_failures=2), inv)
    monkeypatch.chdir(folder)
    said = []
    for args in (["firmware", "scan"], ["firmware", "apply", "--group", "fw"],
                 ["--format", "json", "firmware", "apply", "--group", "fw"]):
        main(["--verbose", *args])
        said.append("".join(capsys.readouterr()))
    lab.restore_bmc(bmcs[0])
    (folder / "policies" / "fw.yml").write_text(policy_text(
        [{"match": "NIC", "version": "22.41.0", "image": bad}], hosts=bmcs[:1]))
    main(["--verbose", "firmware", "apply", "--group", "fw"])
    said.append("".join(capsys.readouterr()))
    assert main(["log", "--format", "json"]) == 0
    said.append(capsys.readouterr()[0])
    text = "\n".join(said)
    assert "refused the credentials" in text and "ended Exception" in text  # the runs ran
    assert kept.is_dir() and list(kept.rglob("*"))  # the workspaces were searched
    cache = list((folder / "cache").glob("inventory-*.json"))
    assert cache and all(f.stat().st_mode & 0o077 == 0 for f in cache)
    for secret in (canary, wrong):
        assert secret not in text
        for f in [*tmp_path.rglob("*"), *kept.rglob("*")]:
            if f.is_file() and not (secret == wrong and f in [inv, *cache]):
                assert secret.encode() not in f.read_bytes(), f
