"""`patch apply` against the lab under faults (issue 9, "Faults"): a host that never returns from
its reboot, the dpkg lock held by another process, the repository going away after the scan,
the failure budget exhausted in the second batch. After each: a clear outcome per host, every
record written (`patch.install`, `reboot`, `patch.apply`, `skip`, `patch.apply.start/end`),
nothing recorded as done that is not, no hang, and `log verify` passes."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as records

from orchestrator.cli.main import main

PENDING = {"acme-agent": "1.1", "acme-kernel": "1.1", "acme-tls": "1.0+sec1"}
BEFORE = {"acme-agent": "1.0", "acme-kernel": "1.0", "acme-tls": "1.0", "acme-broken": "1.0"}
# The lab's lock holder: an fcntl write lock on dpkg's frontend lock, as apt and dpkg take it
# (flock(1) takes a different kind of lock, which apt does not see).
HOLD_LOCK = ("setsid -f python3 -c 'import fcntl, time; f = open(\"/var/lib/dpkg/lock-frontend\","
             " \"w\"); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep({seconds})'"
             " </dev/null >/dev/null 2>&1")

POLICIES = ALWAYS_WINDOW + """  onEnd: {on_end}
---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: ["acme-brok*"]
  reboot: {reboot}
  rollout: {{serial: {serial}, maxFailures: {max_failures}}}
  healthChecks: {{services: [sshd], command: "{health}", timeout: 1m}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: ring}}
spec:
  hosts: {{patterns: [{hosts}]}}
  patchPolicy: lab
  windows: [always]
"""


def workdir(tmp_path: Path, lab, hosts: list[str], *, reboot: str = "ifNeeded",
            serial: str = "[1]", max_failures: int = 0, health: str = "test -d /etc",
            host_vars: dict[str, dict] | None = None, on_end: str = "finish") -> Path:
    """Policies, config and a copy of the lab inventory with `host_vars/` beside it (as a
    sysadmin sets per-host variables such as orchestrator_reboot_timeout)."""
    (tmp_path / "policies").mkdir(parents=True, exist_ok=True)
    (tmp_path / "policies" / "lab.yml").write_text(POLICIES.format(
        hosts=", ".join(f'"{h}"' for h in hosts), reboot=reboot, serial=serial,
        max_failures=max_failures, health=health, on_end=on_end))
    inv_dir = tmp_path / "inventory"
    (inv_dir / "host_vars").mkdir(parents=True, exist_ok=True)
    inventory = inv_dir / "hosts.yml"
    shutil.copyfile(lab.inventory_path, inventory)
    os.chmod(inventory, 0o600)
    for host, values in (host_vars or {}).items():
        (inv_dir / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    write_config(tmp_path, inventory, lab=lab)
    return tmp_path


def apply(capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--format", "json", "patch", "apply", "--group", "ring", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {"stderr": err}


def verify(capsys) -> None:
    capsys.readouterr()
    assert main(["log", "verify"]) == 0, capsys.readouterr()


def versions(lab, host: str) -> dict[str, str]:
    out = lab.ssh(host, "dpkg-query -W -f '${Package} ${Version}\\n' 'acme-*'").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def by_host(out: dict) -> dict[str, dict]:
    return {h["host"]: h for h in out["hosts"]}


def statuses(host: dict) -> dict[str, str]:
    return {p["name"]: p["status"] for p in host["packages"]}


def of(recs: list[dict], action: str) -> list[tuple]:
    return [(r["host"], r["status"]) for r in recs if r["action"] == action]


def test_host_that_never_returns_from_reboot(lab_fleet, lab_fresh_host, lab_fresh_rpm_host,
                                             tmp_path, monkeypatch, capsys) -> None:
    """The reboot hangs (the lab holds the host down): the host fails within its inventory's
    orchestrator_reboot_timeout, with that reason; its packages are installed pending the
    reboot; the budget (0) is spent and the next batch is skipped; the run ends."""
    first, second = lab_fresh_host, lab_fresh_rpm_host  # batches [[lab-03], [lab-rpm-01]]
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [first, second],
                              host_vars={first: {"orchestrator_reboot_timeout": 5}}))
    lab_fleet.hold_reboots(first)
    t0 = time.monotonic()
    code, out = apply(capsys)
    elapsed = time.monotonic() - t0
    assert code == 2, out
    assert out["batches"] == [[first], [second]]
    hosts = by_host(out)
    assert hosts[first]["status"] == "failed"
    assert "did not come back within 5 s of its reboot" in hosts[first]["reason"]
    assert hosts[first]["rebooted"] is False
    assert statuses(hosts[first]) == {"acme-agent": "installed", "acme-tls": "installed",
                                      "acme-kernel": "installed_pending_reboot"}
    assert hosts[second]["status"] == "budget-exhausted"
    assert elapsed < 180  # 5 s and ansible's back-off, not the default 600 s
    assert "did not come back" in out["budget"] and first in out["budget"]

    recs = records(capsys)
    assert sorted((r["details"]["package"], r["status"]) for r in recs
                  if r["action"] == "patch.install") == [
        ("acme-agent", "installed"), ("acme-kernel", "installed_pending_reboot"),
        ("acme-tls", "installed")]
    [reboot] = [r for r in recs if r["action"] == "reboot"]
    assert (reboot["host"], reboot["status"]) == (first, "failed")
    assert "did not come back within 5 s" in reboot["details"]["reason"]
    assert of(recs, "patch.apply") == [(first, "failed")]
    assert of(recs, "skip") == [(second, "budget-exhausted")]
    end = [r for r in recs if r["action"] == "patch.apply.end"][-1]
    assert end["status"] == "failed" and end["details"]["spentBy"][0][0] == first
    verify(capsys)

    # nothing lost: powered on again, the host has what was recorded as installed
    lab_fleet.release_host(first)
    assert versions(lab_fleet, first) == {**BEFORE, **PENDING}


def test_bad_reboot_timeout_in_the_inventory_fails_the_host_untouched(
        lab_fleet, lab_fresh_host, tmp_path, monkeypatch, capsys) -> None:
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host],
                              host_vars={host: {"orchestrator_reboot_timeout": "ten minutes"}}))
    code, out = apply(capsys)
    assert code == 2
    [h] = out["hosts"]
    assert h["status"] == "failed"
    assert "orchestrator_reboot_timeout 'ten minutes' is not a number of seconds" in h["reason"]
    assert versions(lab_fleet, host) == BEFORE
    assert of(records(capsys), "patch.apply") == [(host, "failed")]
    verify(capsys)


def test_dpkg_lock_held_fails_the_host_naming_the_lock(lab_fleet, lab_fresh_host, tmp_path,
                                                      monkeypatch, capsys) -> None:
    """Another process holds dpkg's lock for longer than orchestrator_lock_timeout: the host
    fails before anything is refreshed or installed, naming the lock and its holder."""
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host],
                              host_vars={host: {"orchestrator_lock_timeout": 3}}))
    lab_fleet.ssh(host, HOLD_LOCK.format(seconds=600))
    t0 = time.monotonic()
    code, out = apply(capsys)
    assert time.monotonic() - t0 < 120
    assert code == 2, out
    [h] = out["hosts"]
    assert h["status"] == "failed"
    assert "lock /var/lib/dpkg/lock-frontend is held by process" in h["reason"]
    assert "(python3)" in h["reason"] and "still after 3 s" in h["reason"]
    assert set(statuses(h).values()) == {"failed"}
    assert versions(lab_fleet, host) == BEFORE
    recs = records(capsys)
    assert sorted(r["status"] for r in recs if r["action"] == "patch.install") == ["failed"] * 3
    assert of(recs, "patch.apply") == [(host, "failed")]
    assert not of(recs, "reboot")
    verify(capsys)


def test_dpkg_lock_released_within_the_wait_lets_the_install_run(
        lab_fleet, lab_fresh_host, tmp_path, monkeypatch, capsys) -> None:
    """A transient holder (unattended-upgrades finishing): the wait is bounded, not a refusal."""
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host], reboot="never",
                              host_vars={host: {"orchestrator_lock_timeout": 60}}))
    lab_fleet.ssh(host, HOLD_LOCK.format(seconds=5))
    code, out = apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert h["status"] == "done"
    assert versions(lab_fleet, host) == {**BEFORE, **PENDING}
    verify(capsys)


def test_repository_gone_after_the_scan(lab_fleet, lab_fresh_host, lab_fresh_rpm_host,
                                        tmp_path, monkeypatch, capsys) -> None:
    """The repository stops answering between the scan and the install: each host fails with
    the reason (the metadata refresh), nothing is installed or recorded as installed; once the
    repository is back, the next run installs."""
    import orchestrator.patching.apply as apply_mod

    hosts = [lab_fresh_host, lab_fresh_rpm_host]
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, hosts, reboot="never", serial="[2]",
                              max_failures=2))
    real_scan = apply_mod.run_scan

    def scan_then_repo_gone(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        lab_fleet.stop_repo()
        return result

    monkeypatch.setattr(apply_mod, "run_scan", scan_then_repo_gone)
    try:
        code, out = apply(capsys)
    finally:
        lab_fleet.start_repo()
    assert code == 2, out
    for name, h in by_host(out).items():
        assert h["status"] == "failed", (name, h)
        assert h["reason"].startswith("orchestrator: refresh metadata:"), (name, h["reason"])
        assert "installed" not in statuses(h).values()
    assert versions(lab_fleet, lab_fresh_host) == BEFORE
    recs = records(capsys)
    assert {r["status"] for r in recs if r["action"] == "patch.install"} == {"failed"}
    assert sorted(of(recs, "patch.apply")) == sorted((h, "failed") for h in hosts)
    verify(capsys)

    monkeypatch.setattr(apply_mod, "run_scan", real_scan)
    code, out = apply(capsys)
    assert code == 0, out
    assert {h["status"] for h in out["hosts"]} == {"done"}
    assert versions(lab_fleet, lab_fresh_host) == {**BEFORE, **PENDING}
    verify(capsys)


@pytest.fixture
def lab_five_hosts(lab_fleet, lab_fresh_host, lab_fresh_rpm_host, lab_fresh_zypper_host):
    """Every Linux host of the lab; the shared Debian hosts are reset after the test."""
    names = sorted(h.name for h in lab_fleet.linux_hosts if h.flavour != "fwupd")
    assert len(names) >= 5, names
    yield names
    for name in lab_fleet.shared_hosts:
        lab_fleet.reset_host(name)


def test_budget_exhausted_in_the_second_batch(lab_fleet, lab_five_hosts, tmp_path, monkeypatch,
                                              capsys) -> None:
    """serial [1, 2], maxFailures 1: the first batch passes, both hosts of the second fail
    their health check (the budget of 1 is exceeded there), the third batch is skipped as
    budget-exhausted, untouched; the output and the log say who spent the budget and why."""
    names = lab_five_hosts
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, names, reboot="never", serial="[1, 2]",
                              max_failures=1, health="test ! -e /etc/lab-unhealthy"))
    first, second, third = names[:1], names[1:3], names[3:5]  # hosts in name order
    for host in second:
        lab_fleet.ssh(host, "touch /etc/lab-unhealthy")

    code, out = apply(capsys)
    assert code == 2, out
    hosts = by_host(out)
    assert out["batches"] == [first, second, third]
    assert hosts[first[0]]["status"] == "done"
    for host in second:
        assert hosts[host]["status"] == "failed"
        assert "health" in hosts[host]["reason"]
    for host in third:
        assert hosts[host]["status"] == "budget-exhausted"
        assert "failure budget exhausted" in hosts[host]["reason"]
        assert all(h in hosts[host]["reason"] for h in second)
    assert out["budget"].startswith("failure budget 1: 2 failed, exhausted (")
    assert all(f"{h}: health check failed" in out["budget"] for h in second)
    for host in third:  # never touched
        if host in {h.name for h in lab_fleet.hosts}:
            assert versions(lab_fleet, host) == BEFORE
        else:
            rpms = lab_fleet.ssh(host, "rpm -q acme-agent acme-kernel acme-tls").stdout
            assert "-1.1-" not in rpms and "sec1" not in rpms, rpms

    recs = records(capsys)
    applied = dict(of(recs, "patch.apply"))
    assert applied == {first[0]: "done", **{h: "failed" for h in second}}
    assert sorted(of(recs, "skip")) == sorted((h, "budget-exhausted") for h in third)
    assert {r["host"] for r in recs if r["action"] == "patch.install"} == {first[0], *second}
    assert sorted(of(recs, "health")) == sorted([(first[0], "ok")]
                                                + [(h, "failed") for h in second])
    [start] = [r for r in recs if r["action"] == "patch.apply.start"]
    assert start["details"]["batches"] == [first, second, third]
    [end] = [r for r in recs if r["action"] == "patch.apply.end"]
    assert end["status"] == "failed"
    assert [h for h, _ in end["details"]["spentBy"]] == second
    assert all("health check failed" in why for _, why in end["details"]["spentBy"])
    verify(capsys)


def test_on_end_cancel_kills_work_in_flight(lab_fleet, lab_fresh_host, lab_fresh_rpm_host,
                                            tmp_path, monkeypatch, capsys) -> None:
    """onEnd: cancel and the window ends while the first host is being patched: its playbook is
    ended, the host is recorded as failed (canceled), the next batch is deferred."""
    from datetime import datetime, timedelta

    import orchestrator.patching.apply as apply_mod
    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.windows.check import check_group

    first, second = lab_fresh_host, lab_fresh_rpm_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [first, second], max_failures=5,
                              on_end="cancel"))
    app = AppContext(load_config(None))
    ps, inv = app.policies, app.inventory()
    occ = check_group(ps, "ring", datetime.now().astimezone()).occurrence
    assert occ is not None
    ended = []
    real_call = apply_mod.ApplyEvents.__call__

    def events(self, event):  # the window ends once the host's work has begun
        if (event.get("event_data") or {}).get("task") == "orchestrator: versions before":
            ended.append(True)
        return real_call(self, event)

    monkeypatch.setattr(apply_mod.ApplyEvents, "__call__", events)
    t0 = time.monotonic()
    result = apply_mod.apply_group(
        app.run_context(), ps, inv, "ring", occurrence=occ,
        clock=lambda: occ.end + timedelta(seconds=1) if ended else datetime.now().astimezone())
    app.close()
    assert time.monotonic() - t0 < 180
    out = result.to_json()
    hosts = by_host(out)
    assert hosts[first]["status"] == "failed"
    assert "canceled at the end of the window (onEnd: cancel)" in hosts[first]["reason"]
    assert hosts[second]["status"] == "deferred"
    recs = records(capsys)
    assert of(recs, "patch.apply") == [(first, "failed")]
    assert of(recs, "skip") == [(second, "deferred")]
    [end] = [r for r in recs if r["action"] == "patch.apply.end"]
    assert end["details"]["deferred"] == [second]
    verify(capsys)
