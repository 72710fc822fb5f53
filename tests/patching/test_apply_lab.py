"""`patch apply` against real lab hosts through ansible-runner and the shipped playbooks:
pinned installs, a failing package, reboot ifNeeded, the window guard, --check, the failure
budget over batches, the cutoff between batches and deferred hosts going first next time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as records

from orchestrator.cli.main import main

POLICIES = ALWAYS_WINDOW + """---
apiVersion: orchestrator/v1
kind: Window
metadata: {{name: never-now}}
spec:
  schedule: {{cron: "0 0 1 1 *"}}
  timezone: UTC
  duration: 15m
  cutoff: 0m
  validFrom: 2099-01-01
---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: [{rejected}]
  reboot: ifNeeded
  rollout: {{serial: [1], maxFailures: {max_failures}}}
  healthChecks: {{services: [sshd], command: "test -d /etc", timeout: 1m}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: ring}}
spec:
  hosts: {{patterns: [{hosts}]}}
  patchPolicy: lab
  windows: [{window}]
"""


def workdir(tmp_path: Path, lab, hosts: list[str], *, window: str = "always",
            rejected: str = '"acme-brok*"', max_failures: int = 0) -> Path:
    (tmp_path / "policies").mkdir(parents=True, exist_ok=True)
    (tmp_path / "policies" / "lab.yml").write_text(POLICIES.format(
        hosts=", ".join(f'"{h}"' for h in hosts), window=window, rejected=rejected,
        max_failures=max_failures))
    write_config(tmp_path, lab.inventory_path, lab=lab)
    return tmp_path


def apply(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["--format", "json", "patch", "apply", "--group", "ring", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {"stderr": err}


def versions(lab, host: str) -> dict[str, str]:
    out = lab.ssh(host, "dpkg-query -W -f '${Package} ${Version}\\n' 'acme-*'").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def test_apply_installs_pinned_reboots_and_records(lab_fleet, lab_fresh_host, tmp_path,
                                                   monkeypatch, capsys) -> None:
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host]))
    boot = lab_fleet.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout
    code, out = apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert (h["host"], h["status"], h["rebooted"]) == (host, "done", True)
    assert {p["name"]: p["status"] for p in h["packages"]} == {
        "acme-agent": "installed", "acme-kernel": "installed", "acme-tls": "installed"}
    assert versions(lab_fleet, host) == {"acme-agent": "1.1", "acme-kernel": "1.1",
                                         "acme-tls": "1.0+sec1", "acme-broken": "1.0"}
    assert lab_fleet.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout != boot
    recs = records(capsys)
    installs = {(r["details"]["package"], r["details"]["version"]): r["status"]
                for r in recs if r["action"] == "patch.install"}
    assert installs == {("acme-agent", "1.1"): "installed", ("acme-kernel", "1.1"): "installed",
                        ("acme-tls", "1.0+sec1"): "installed"}
    # what the scan knew of each package stays with its install (reports: time to install)
    known = {r["details"]["package"]: (r["details"]["classification"], r["details"]["firstSeen"])
             for r in recs if r["action"] == "patch.install"}
    assert known["acme-tls"][0] == "security" and known["acme-agent"][0] != "security"
    assert all(len(seen) == 10 and seen[4] == "-" for _, seen in known.values())
    assert all("released" in r["details"] for r in recs if r["action"] == "patch.install")
    assert [r["status"] for r in recs if r["action"] == "reboot"] == ["done"]
    assert [r["status"] for r in recs if r["action"] == "health"] == ["ok"]
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "patch.apply"] == [
        (host, "done")]
    assert main(["log", "verify"]) == 0
    capsys.readouterr()
    # nothing approved is missing any more: a second apply touches nothing
    code, out = apply(capsys)
    assert code == 0 and [h["status"] for h in out["hosts"]] == ["up-to-date"]


def test_closed_window_does_nothing_and_check_changes_nothing(lab_fleet, lab_fresh_host,
                                                              tmp_path, monkeypatch,
                                                              capsys) -> None:
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host], window="never-now"))
    before = versions(lab_fleet, host)
    code, out = apply(capsys)
    assert code == 3 and out["status"] == "closed"
    assert [(r["action"], r["status"]) for r in records(capsys)] == [("skip", "closed")]
    code, out = apply(capsys, "--check")  # any time: nothing changes
    assert code == 0 and out["status"] == "check"
    [h] = out["hosts"]
    assert h["status"] == "would-install"
    assert {p["name"] for p in h["packages"]} == {"acme-agent", "acme-kernel", "acme-tls"}
    assert versions(lab_fleet, host) == before
    assert not [r for r in records(capsys) if r["action"] in ("patch.install", "patch.apply")]


def test_failed_package_spends_the_budget_and_stops_the_rollout(
        lab_fleet, lab_fresh_host, lab_fresh_rpm_host, tmp_path, monkeypatch, capsys) -> None:
    """acme-broken approved: its install fails on the first batch's host, which exhausts a
    budget of 0; the second host is skipped (budget-exhausted), untouched."""
    first, second = sorted([lab_fresh_host, lab_fresh_rpm_host])
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [first, second], rejected='"nothing"'))
    code, out = apply(capsys)
    assert code == 2
    hosts = {h["host"]: h for h in out["hosts"]}
    assert out["batches"] == [[first], [second]]
    assert hosts[first]["status"] == "failed" and "acme-broken" in hosts[first]["reason"]
    assert {p["name"]: p["status"] for p in hosts[first]["packages"]}["acme-broken"] == "failed"
    assert {p["name"]: p["status"] for p in hosts[first]["packages"]}["acme-agent"] \
        == "installed"
    assert hosts[second]["status"] == "budget-exhausted"
    recs = records(capsys)
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "skip"] == [
        (second, "budget-exhausted")]
    end = [r for r in recs if r["action"] == "patch.apply.end"][-1]
    assert end["status"] == "failed" and end["details"]["spentBy"][0][0] == first
    assert main(["log", "verify"]) == 0


def test_cutoff_between_batches_defers_and_deferred_go_first(
        lab_fleet, lab_fresh_host, lab_fresh_rpm_host, tmp_path, monkeypatch, capsys) -> None:
    """The clock passes the cutoff after the first batch: the second host is deferred, and
    the next rollout starts with it."""
    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.patching.apply import apply_group
    from orchestrator.windows.check import check_group

    first, second = sorted([lab_fresh_host, lab_fresh_rpm_host])
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [first, second]))
    app = AppContext(load_config(None))
    ps, inv = app.policies, app.inventory()
    real_now = datetime.now().astimezone()
    occ = check_group(ps, "ring", real_now).occurrence
    assert occ is not None
    ctx = app.run_context()

    def clock() -> datetime:  # the cutoff passes once the first host is done
        done = any(r.action == "patch.apply" for r in ctx.store.records())
        return occ.cutoff + timedelta(seconds=1) if done else real_now

    result = apply_group(ctx, ps, inv, "ring", occurrence=occ, clock=clock)
    assert [(h, o.status) for h, o in result.hosts.items()] == [(first, "done"),
                                                               (second, "deferred")]
    nxt = apply_group(app.run_context(), ps, inv, "ring", check=True)
    assert nxt.batches[0] == [second]  # deferred last time: first in line
    assert {h: o.status for h, o in nxt.hosts.items()} == {first: "up-to-date",
                                                           second: "would-install"}
    app.close()
