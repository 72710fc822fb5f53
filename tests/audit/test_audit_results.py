"""Audit answers without a lab: host status, summary counts, exit codes and waiver expiry,
from fake results (each assertion has exactly one right answer)."""

from __future__ import annotations

import json
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestrator.audit.host import HostJob, judge
from orchestrator.audit.result import AuditRun, CheckResult, HostAudit, host_status
from orchestrator.audit.waivers import apply_waivers, matching_waiver
from orchestrator.cli.main import main
from orchestrator.policy.model import Location, Meta, Waiver
from orchestrator.reporting.audit_text import audit_text

DRIFT = CheckResult("file.mode:/etc/hostname", "drift", "0644", "0600")
ERROR = CheckResult("package.installed:acme-tls", "error", "installed", "dpkg-query: garbage")
PASS = CheckResult("service.running:ssh", "pass", "running", "running")


def host(name: str, status: str, checks: tuple = (), error: str | None = None) -> HostAudit:
    return HostAudit(name, ("web",), "linux", status, error, checks)  # type: ignore[arg-type]


# ---------------------------------------------------------------- host status
def test_host_with_a_drifting_and_an_erroring_check_is_error() -> None:
    assert host_status([DRIFT, ERROR]) == "error"
    assert host_status([ERROR, DRIFT]) == "error"
    assert host_status([PASS, DRIFT]) == "drift"
    assert host_status([PASS]) == "compliant"
    waived = CheckResult(DRIFT.id, "waived", "0644", "0600", {"name": "w"})
    assert host_status([PASS, waived]) == "compliant"


# ---------------------------------------------------------------- summary and exit code
def test_drift_on_one_host_and_unreachable_another_exits_2() -> None:
    run = AuditRun("r-1", [host("web-01", "drift", (PASS, DRIFT)),
                           host("web-02", "unreachable", error="web-02: connection refused")])
    assert run.summary() == {"hosts": 2, "compliant": 0, "drift": 1, "unreachable": 1,
                             "error": 0}
    assert run.exit_code() == 2


def test_drift_on_a_host_in_error_is_counted_and_exits_2() -> None:
    """The host is `error` (one check could not be judged) but its drift is not hidden: the
    summary counts it under drift as well and the audit exits 2, not 4."""
    run = AuditRun("r-2", [host("web-01", "error", (PASS, DRIFT, ERROR)),
                           host("web-02", "unreachable", error="web-02: timed out")])
    assert run.hosts[0].status == "error"
    assert run.summary() == {"hosts": 2, "compliant": 0, "drift": 1, "unreachable": 1,
                             "error": 1}
    assert run.exit_code() == 2
    assert run.to_json()["summary"]["drift"] == 1
    last = audit_text(run).splitlines()[-1]
    assert last == ("2 hosts: 0 compliant, 1 drift, 1 unreachable, 1 error "
                    "(1 of the error hosts also drifted)")


def test_drift_on_a_host_in_transport_error_counts() -> None:
    """A host whose facts failed but whose ansible check mode found a change."""
    changed = CheckResult("ansible:banner", "drift", "unchanged", "changed")
    run = AuditRun("r-3", [host("web-01", "error", (changed,), error="web-01: timed out"),
                           host("web-02", "compliant", (PASS,))])
    assert run.summary()["drift"] == 1 and run.summary()["error"] == 1
    assert run.exit_code() == 2


@pytest.mark.parametrize(("hosts", "code"), [
    ([host("a", "compliant", (PASS,)), host("b", "compliant", (PASS,))], 0),
    ([host("a", "compliant", (PASS,)), host("b", "unreachable", error="b: refused")], 4),
    ([host("a", "compliant", (PASS,)), host("b", "error", (PASS, ERROR))], 4),
    ([host("a", "drift", (DRIFT,)), host("b", "compliant", (PASS,))], 2),
    ([host("a", "unreachable", error="a: refused"), host("b", "drift", (DRIFT,))], 2),
    ([host("a", "error", (ERROR,)), host("b", "error", (DRIFT, ERROR))], 2),
    ([], 4),
])
def test_exit_codes(hosts: list[HostAudit], code: int) -> None:
    assert AuditRun("r", hosts).exit_code() == code


def test_compliant_error_and_unreachable_counts_without_drift() -> None:
    run = AuditRun("r", [host("a", "compliant", (PASS,)), host("b", "error", (PASS, ERROR)),
                         host("c", "unreachable", error="c: refused")])
    assert run.summary() == {"hosts": 3, "compliant": 1, "drift": 0, "unreachable": 1,
                             "error": 1}
    assert audit_text(run).splitlines()[-1] == (
        "3 hosts: 1 compliant, 0 drift, 1 unreachable, 1 error")


# ---------------------------------------------------------------- the whole command
def test_audit_command_exits_2_with_drift_and_unreachable(tmp_path: Path, monkeypatch,
                                                          capsys) -> None:
    """`orchestrator audit` end to end with fake host results: drift on web-01, web-02
    unreachable -> exit 2 and the JSON summary counts the drift."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(textwrap.dedent("""\
        apiVersion: orchestrator/v1
        kind: Baseline
        metadata: {name: base}
        spec: {platform: linux, packages: {absent: [telnetd]}}
        ---
        apiVersion: orchestrator/v1
        kind: AssetGroup
        metadata: {name: web}
        spec: {hosts: {patterns: ["web-*"]}, baselines: [base]}
        """))
    (tmp_path / "inventory.yml").write_text(textwrap.dedent("""\
        all:
          hosts:
            web-01: {ansible_host: 192.0.2.1}
            web-02: {ansible_host: 192.0.2.2}
        """))
    (tmp_path / "orchestrator.yml").write_text(
        "policies: policies/\ninventory: inventory.yml\nstate: sqlite:///state.db\n")
    fake = {"web-01": ("drift", (PASS, DRIFT), None),
            "web-02": ("unreachable", (), "web-02: connection refused")}

    def audit_host(job: HostJob, settings, timeout, today) -> HostAudit:
        status, checks, error = fake[job.host]
        return HostAudit(job.host, job.groups, job.platform, status, error, checks)

    monkeypatch.setattr("orchestrator.audit.run.audit_host", audit_host)
    monkeypatch.chdir(tmp_path)
    code = main(["--format", "json", "--no-progress", "audit"])
    data = json.loads(capsys.readouterr().out)
    assert {h["host"]: h["status"] for h in data["hosts"]} == {"web-01": "drift",
                                                               "web-02": "unreachable"}
    assert data["summary"] == {"hosts": 2, "compliant": 0, "drift": 1, "unreachable": 1,
                               "error": 0}
    assert code == 2


# ---------------------------------------------------------------- waiver expiry
EXPIRES = date(2027, 3, 31)


def waiver(expires: date = EXPIRES) -> Waiver:
    return Waiver(meta=Meta("tools-optional", None, Location(Path("w.yml"), 1, 1)),
                  checks=("file.mode:*",), justification="legacy", expires=expires,
                  hosts=("web-01",))


@pytest.mark.parametrize(("today", "live"), [
    (EXPIRES - timedelta(days=1), True),
    (EXPIRES, True),  # the expiry date itself: still live
    (EXPIRES + timedelta(days=1), False),  # the day after: expired
])
def test_waiver_is_live_through_its_expiry_date(today: date, live: bool) -> None:
    w = waiver()
    assert w.expired(today) is (not live)
    found, expired = matching_waiver([w], "web-01", ("web",), DRIFT.id, today)
    assert found is w and expired is (not live)
    result = apply_waivers(DRIFT, (w,), "web-01", ("web",), today)
    assert result.status == ("waived" if live else "drift")
    assert result.waiver is not None and result.waiver["name"] == "tools-optional"
    assert result.waiver.get("expired", False) is (not live)
    run = AuditRun("r", [host("web-01", host_status([PASS, result]), (PASS, result))])
    assert run.exit_code() == (0 if live else 2)


def test_judge_applies_the_waiver_on_its_expiry_date_only_until_then() -> None:
    """Through `judge` (the audit's own path): facts give drift, the waiver decides."""
    from orchestrator.audit.checks import Check

    mode = Check(id=DRIFT.id, expected="0644", needs=(), baseline="base",
                 judge=lambda facts: (facts["mode"] == "0644", facts["mode"]))
    job = HostJob("web-01", ("web",), "linux", {}, (), (waiver(),))
    on = judge([mode], {"mode": "0600"}, job, EXPIRES)
    after = judge([mode], {"mode": "0600"}, job, EXPIRES + timedelta(days=1))
    assert [c.status for c in on] == ["waived"]
    assert [c.status for c in after] == ["drift"]
    assert after[0].waiver["expired"] is True
