"""`patch scan` against real lab hosts: apt refreshes and lists, approval by the policy,
first-seen dates kept in the store, overdue and a failing refresh as SPEC's exit codes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from patchwork import log_records as records
from patchwork import write_config

from orchestrator.cli.main import main

POLICIES = """
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: security, approveAfterDays: 0, deadlineDays: 3}}
      - {{classification: any, approveAfterDays: 7, deadlineDays: 30}}
    approved: [acme-agent]
    rejected: ["acme-brok*"]
  rollout: {{serial: [1], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: patch-age}}
spec:
  platform: linux
  thresholds:
    pendingPatchAgeDays: {{max: 30}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: fleet}}
spec:
  hosts: {{patterns: [{hosts}]}}
  baselines: [patch-age]
  patchPolicy: lab
"""


def workdir(tmp_path: Path, lab, hosts: list[str]) -> Path:
    (tmp_path / "policies").mkdir(parents=True)
    (tmp_path / "policies" / "lab.yml").write_text(
        POLICIES.format(hosts=", ".join(f'"{h}"' for h in hosts)))
    write_config(tmp_path, lab.inventory_path, lab=lab, playbooks=False)
    return tmp_path


def scan(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["--format", "json", "patch", "scan", *extra])
    return code, json.loads(capsys.readouterr()[0])


def test_scan_lists_judges_and_records(lab_fleet, tmp_path, monkeypatch, capsys) -> None:
    host = lab_fleet.shared_hosts[0]
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host]))
    code, out = scan(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert (h["host"], h["status"], h["manager"], h["error"]) == (host, "compliant", "apt", None)
    today = date.today().isoformat()
    got = {p["name"]: (p["current"], p["available"], p["classification"], p["state"],
                       p["firstSeen"], p["approvedOn"], p["dueOn"], p["overdue"])
           for p in h["patches"]}
    in3, in7, in37 = (str(date.today() + timedelta(days=n)) for n in (3, 7, 37))
    assert got == {
        "acme-tls": ("1.0", "1.0+sec1", "security", "missing", today, today, in3, False),
        "acme-agent": ("1.0", "1.1", "other", "missing", today, today, in30(), False),
        "acme-kernel": ("1.0", "1.1", "other", "not_approved", today, in7, in37, False),
        "acme-broken": ("1.0", "1.1", "other", "rejected", today, None, None, False),
    }
    assert h["thresholds"] == [{"id": "threshold.pendingPatchAgeDays", "status": "pass",
                                "expected": "<= 30 days", "actual": h["thresholds"][0]["actual"]}]
    recs = records(capsys)
    assert [(r["action"], r["status"], r["host"]) for r in recs] == [
        ("patch.scan.start", "started", None), ("patch.scan", "compliant", host),
        ("patch.scan.end", "finished", None)]
    assert {p["name"]: p["state"] for p in recs[1]["details"]["patches"]} == {
        "acme-tls": "missing", "acme-agent": "missing", "acme-kernel": "not_approved",
        "acme-broken": "rejected"}
    assert main(["log", "verify"]) == 0


def in30() -> str:
    return str(date.today() + timedelta(days=30))


def test_first_seen_is_kept_and_overdue_is_exit_2(lab_fleet, tmp_path, monkeypatch,
                                                 capsys) -> None:
    """A later scan keeps the first-seen date, so the age grows: 40 days on, the security
    update is overdue (due 3 days after approval) and older than the 30-day threshold."""
    from orchestrator.patching import scan as scan_mod

    host = lab_fleet.shared_hosts[0]
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [host]))
    assert scan(capsys)[0] == 0
    real_run_scan = scan_mod.run_scan
    later = date.today() + timedelta(days=40)
    monkeypatch.setattr(scan_mod, "run_scan",
                        lambda *a, **k: real_run_scan(*a, **{**k, "today": later}))
    code, out = scan(capsys, "--no-refresh")
    assert code == 2
    [h] = out["hosts"]
    assert h["status"] == "overdue"
    tls = next(p for p in h["patches"] if p["name"] == "acme-tls")
    assert (tls["firstSeen"], tls["overdue"], tls["ageDays"]) == (date.today().isoformat(),
                                                                  True, 40)
    assert h["thresholds"][0]["status"] == "drift"
    assert "40 days" in h["thresholds"][0]["actual"]


def test_a_failing_refresh_is_an_error_never_compliant(lab_fleet, lab_fresh_host, tmp_path,
                                                      monkeypatch, capsys) -> None:
    lab_fleet.ssh(lab_fresh_host,
                  "echo 'deb [trusted=yes] http://127.0.0.1:9/ nowhere main' "
                  "> /etc/apt/sources.list.d/dead.list")
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [lab_fresh_host]))
    code, out = scan(capsys)
    assert code == 4
    [h] = out["hosts"]
    assert h["status"] == "error" and h["patches"] == []
    assert "apt-get update failed" in h["error"]


def test_an_unreachable_host_is_incomplete(lab_fleet, tmp_path, monkeypatch, capsys) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("[lab_linux]\nghost ansible_host=127.0.0.1 ansible_port=9\n")
    work = workdir(tmp_path, lab_fleet, ["ghost"])
    cfg = work / "orchestrator.yml"
    cfg.write_text(cfg.read_text().replace(str(lab_fleet.inventory_path), str(inv)))
    monkeypatch.chdir(work)
    code, out = scan(capsys)
    assert code == 4
    assert [(h["host"], h["status"]) for h in out["hosts"]] == [("ghost", "unreachable")]


def test_nothing_matched_is_incomplete(lab_fleet, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, [lab_fleet.shared_hosts[0]]))
    code, out = scan(capsys, "--limit", "nothing-*", "--no-refresh")
    assert code == 4 and out["hosts"] == []


def test_run_window_dry_run_plans_from_the_last_scan(lab_fleet, tmp_path, monkeypatch,
                                                     capsys) -> None:
    """--dry-run contacts no host and records nothing: the plan comes from the last scan."""
    host = lab_fleet.shared_hosts[0]
    work = workdir(tmp_path, lab_fleet, [host])
    policy = work / "policies" / "lab.yml"
    policy.write_text(policy.read_text().replace("  patchPolicy: lab\n", (
        "  patchPolicy: lab\n  windows: [anytime]\n---\napiVersion: orchestrator/v1\n"
        "kind: Window\nmetadata: {name: anytime}\nspec: {schedule: {cron: '0 * * * *'}, "
        "timezone: UTC, duration: 1h, cutoff: 0m}\n")))
    monkeypatch.chdir(work)
    assert main(["--format", "json", "run-window", "anytime", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr()[0])["groups"][0]["patch"]
    assert plan["notScanned"] == [host] and plan["batches"] == []
    assert scan(capsys)[0] == 0
    before = len(records(capsys))
    assert main(["--format", "json", "run-window", "anytime", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr()[0])["groups"][0]["patch"]
    assert plan["approved"] == {host: ["acme-agent 1.1", "acme-tls 1.0+sec1"]}
    assert plan["batches"] == [[host]] and plan["notScanned"] == []
    assert len(records(capsys)) == before
