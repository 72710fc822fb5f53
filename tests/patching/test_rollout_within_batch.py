"""Inside one batch: hosts of one package manager share one playbook run whatever their
packages (each its own list), the window is judged again before every playbook run, and
hosts no work reached are deferred (a `skip`, not an outcome), never failed. A resumed run
gives hosts a dead run was working on their reboot, health check and records again.
No host is contacted: the scan and the playbook runs are stand-ins here (the lab tests run
the real ones)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as records

from orchestrator.cli.main import main
from orchestrator.patching import apply as apply_mod
from orchestrator.patching import guard as guard_mod

POLICIES = ALWAYS_WINDOW.format() + """---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {name: p}
spec:
  approval: {rules: [{classification: any, approveAfterDays: 0, deadlineDays: 30}]}
  reboot: never
  rollout: {serial: ["100%"], maxFailures: 0}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: ring}
spec:
  hosts: {patterns: ["web-*"]}
  patchPolicy: p
  windows: [always]
"""
PENDING = {"web-01": ("apt", ["acme-a"]), "web-02": ("apt", ["acme-b"]),
           "web-03": ("dnf", ["acme-c"])}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(POLICIES)
    (tmp_path / "inventory.ini").write_text(
        "[all]\n" + "".join(f"{h} ansible_host=127.0.0.1\n" for h in PENDING))
    write_config(tmp_path, 'inventory.ini', playbooks=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fake_scan(installed: set[str], pending: dict | None = None):
    """The scan: each host's PENDING packages (or `pending`'s), less those `installed` (host
    names: all of its packages; "host:package": that one)."""
    def run_scan(ctx, ps, jobs, **kw):
        hosts = []
        for job in jobs:
            manager, names = (pending or PENDING)[job.host]
            patches = [SimpleNamespace(
                update=SimpleNamespace(name=name, available="2.0", classification="security",
                                       released=date(2026, 11, 1)),
                first_seen=date(2026, 11, 2),
                decision=SimpleNamespace(state="approved")) for name in names
                if job.host not in installed and f"{job.host}:{name}" not in installed]
            hosts.append(SimpleNamespace(host=job.host, status="compliant", error=None,
                                         manager=manager, patches=patches))
        return SimpleNamespace(hosts=hosts)
    return run_scan


def result_event(host: str, packages: list[dict]) -> dict:
    return {"event": "runner_on_ok", "event_data": {
        "host": host, "task": apply_mod.RESULT_TASK, "res": {"orchestrator_result": {
            "packages": [{"name": p["name"], "wanted": p["version"], "before": "1.0",
                          "after": p["version"], "status": "installed"} for p in packages],
            "rebooted": False, "health": {"services": {}, "command_rc": None}}}}}


def setup(monkeypatch, calls: list, *, installed: set[str] = frozenset(),
          die_after: str | None = None, clock_after_first=None, pending: dict | None = None,
          then_time_out: bool = False):
    monkeypatch.setattr(apply_mod, "run_scan", fake_scan(set(installed), pending))

    def run_one(ctx, inv, manager, hosts, policy, events, check, cancel, may_start=None):
        calls.append((manager, list(hosts), {h: events.wanted[h] for h in hosts}))
        for h in hosts:
            events({"event": "runner_on_start", "event_data": {"host": h, "task": "x"}})
            if h == die_after:
                raise KeyboardInterrupt  # the run dies here, as under SIGKILL
            events(result_event(h, events.wanted[h]))
        if then_time_out:  # as _run_one does when the playbook run then times out
            for h in hosts:
                events.failures.setdefault(h, "the playbook did not finish in 14400 s")
        if clock_after_first is not None:
            clock_after_first()

    monkeypatch.setattr(apply_mod, "_run_one", run_one)


def run_apply(cwd: Path, clock) -> apply_mod.ApplyRun:
    from orchestrator.config import load_config
    from orchestrator.context import AppContext

    app = AppContext(load_config(None))
    try:
        return apply_mod.apply_group(app.run_context(), app.policies, app.inventory(), "ring",
                                     clock=clock)
    finally:
        app.close()


def test_one_playbook_run_per_manager_each_host_its_own_packages(cwd, monkeypatch,
                                                                 capsys) -> None:
    calls: list = []
    setup(monkeypatch, calls)
    result = run_apply(cwd, None)
    assert {h: o.status for h, o in result.hosts.items()} == dict.fromkeys(PENDING, "done")
    assert calls == [
        ("apt", ["web-01", "web-02"], {"web-01": [{"name": "acme-a", "version": "2.0"}],
                                       "web-02": [{"name": "acme-b", "version": "2.0"}]}),
        ("dnf", ["web-03"], {"web-03": [{"name": "acme-c", "version": "2.0"}]})]
    assert [(r["details"]["manager"], r["details"]["hosts"]) for r in records(capsys)
            if r["action"] == "patch.batch"] == [("apt", ["web-01", "web-02"]),
                                                 ("dnf", ["web-03"])]


def test_the_cutoff_is_judged_before_every_playbook_run_of_a_batch(cwd, monkeypatch,
                                                                   capsys) -> None:
    from orchestrator.policy.loader import load_policies
    from orchestrator.windows.check import check_group

    real = datetime.now().astimezone()
    occ = check_group(load_policies(cwd / "policies"), "ring", real).occurrence
    now = [real]
    calls: list = []
    setup(monkeypatch, calls,
          clock_after_first=lambda: now.__setitem__(0, occ.cutoff + timedelta(seconds=1)))
    result = run_apply(cwd, lambda: now[0])
    assert [c[0] for c in calls] == ["apt"]  # the dnf run would start after the cutoff
    assert {h: o.status for h, o in result.hosts.items()} == {
        "web-01": "done", "web-02": "done", "web-03": "deferred"}
    assert "cutoff" in result.hosts["web-03"].reason
    recs = records(capsys)
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "patch.apply"] == [
        ("web-01", "done"), ("web-02", "done")]
    assert [(r["host"], r["status"]) for r in recs if r["action"] == "skip"] == [
        ("web-03", "deferred")]
    [end] = [r for r in recs if r["action"] == "patch.apply.end"]
    assert end["details"]["deferred"] == ["web-03"] and end["status"] == "done"
    assert main(["log", "verify"]) == 0


def test_a_resumed_run_finishes_the_hosts_a_dead_run_was_working_on(cwd, monkeypatch,
                                                                    capsys) -> None:
    """The dead run installed web-02's package but died before its result (reboot, health,
    records): the next run of the occurrence gives web-02 the same pinned list again (the scan
    shows nothing missing), skips web-01 (finished) and does web-03."""
    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.policy.loader import load_policies
    from orchestrator.windows.check import check_group

    occ = check_group(load_policies(cwd / "policies"), "ring",
                      datetime.now().astimezone()).occurrence
    calls: list = []
    setup(monkeypatch, calls, die_after="web-02")
    app = AppContext(load_config(None))
    with pytest.raises(KeyboardInterrupt):
        apply_mod.apply_group(app.run_context(occurrence=occ.id), app.policies,
                              app.inventory(), "ring", occurrence=occ, resume=occ.id)
    app.close()
    # the dead run left its group lease behind (in-process here: give it back by hand)
    calls.clear()
    setup(monkeypatch, calls, installed={"web-02"})
    app = AppContext(load_config(None))
    result = apply_mod.apply_group(app.run_context(occurrence=occ.id), app.policies,
                                   app.inventory(), "ring", occurrence=occ, resume=occ.id)
    app.close()
    assert {h: o.status for h, o in result.hosts.items()} == {
        "web-01": "already-done", "web-02": "done", "web-03": "done"}
    assert calls[0] == ("apt", ["web-02"], {"web-02": [{"name": "acme-b", "version": "2.0"}]})
    recs = records(capsys)
    start = [r for r in recs if r["action"] == "patch.apply.start"][-1]
    assert start["details"]["resumed"] == ["web-02"]
    assert [r["host"] for r in recs if r["action"] == "patch.apply"].count("web-02") == 1


def test_an_outcome_written_stays_the_outcome(cwd, monkeypatch, capsys) -> None:
    """The host's result arrived (patch.apply done recorded); the playbook run then timed
    out: the host stays done, spends no budget, and has one outcome."""
    calls: list = []
    setup(monkeypatch, calls, then_time_out=True)
    result = run_apply(cwd, None)
    assert {h: o.status for h, o in result.hosts.items()} == dict.fromkeys(PENDING, "done")
    assert result.exit_code() == 0 and "0 failed" in result.budget
    recs = records(capsys)
    assert sorted(r["host"] for r in recs if r["action"] == "patch.apply") == sorted(PENDING)


def test_a_host_interrupted_half_way_gets_all_its_packages_again(cwd, monkeypatch,
                                                                 capsys) -> None:
    """The dead run installed acme-b1 of [acme-b1, acme-b2] on web-02; the scan now shows only
    acme-b2 missing: the resumed run installs both pins (acme-b1 is a no-op) so that both
    are recorded."""
    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.policy.loader import load_policies
    from orchestrator.windows.check import check_group

    pending = {**PENDING, "web-02": ("apt", ["acme-b1", "acme-b2"])}
    occ = check_group(load_policies(cwd / "policies"), "ring",
                      datetime.now().astimezone()).occurrence
    calls: list = []
    setup(monkeypatch, calls, die_after="web-02", pending=pending)
    app = AppContext(load_config(None))
    with pytest.raises(KeyboardInterrupt):
        apply_mod.apply_group(app.run_context(occurrence=occ.id), app.policies,
                              app.inventory(), "ring", occurrence=occ, resume=occ.id)
    app.close()
    calls.clear()
    setup(monkeypatch, calls, installed={"web-02:acme-b1"}, pending=pending)
    app = AppContext(load_config(None))
    apply_mod.apply_group(app.run_context(occurrence=occ.id), app.policies, app.inventory(),
                          "ring", occurrence=occ, resume=occ.id)
    app.close()
    assert calls[0][0:2] == ("apt", ["web-02"])
    assert sorted(p["name"] for p in calls[0][2]["web-02"]) == ["acme-b1", "acme-b2"]


def test_a_manual_apply_taking_over_a_dead_runs_group_lease_finishes_its_hosts(
        cwd, monkeypatch, capsys) -> None:
    """`patch apply` killed while web-02 was in flight; the next `patch apply` of the group
    (no window occurrence to resume) takes over the dead run's lease and finishes web-02
    first, with its pinned list."""
    import subprocess
    import sys

    from orchestrator.changelog.lease import _start_tick, this_owner
    from orchestrator.changelog.store import LeaseOwner
    from orchestrator.config import load_config
    from orchestrator.context import AppContext

    app = AppContext(load_config(None))
    dead = app.run_context(run_id="run-dead")
    dead.record("patch.batch", "started", group="ring", batch=1, manager="apt",
                hosts=["web-02"], packages={"web-02": [{"name": "acme-b", "version": "2.0"}]})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    tick = _start_tick(proc.pid)
    proc.wait()
    boot, pidns, _ = this_owner().started.split(":")
    assert app.store.acquire_lease("rollout:ring", "run-dead",
                                   datetime.now().astimezone() + timedelta(hours=9),
                                   owner=LeaseOwner(this_owner().node, proc.pid,
                                                    f"{boot}:{pidns}:{tick}"))
    app.close()
    calls: list = []
    setup(monkeypatch, calls, installed={"web-02"})
    result = run_apply(cwd, None)
    assert result.hosts["web-02"].status == "done"
    assert calls[0] == ("apt", ["web-02", "web-01"],
                        {"web-02": [{"name": "acme-b", "version": "2.0"}],
                         "web-01": [{"name": "acme-a", "version": "2.0"}]})
    start = [r for r in records(capsys) if r["action"] == "patch.apply.start"][-1]
    assert start["details"]["resumed"] == ["web-02"]


def test_losing_the_group_lease_cancels_work_in_flight() -> None:
    lease = SimpleNamespace(lost=False)
    cancel = guard_mod.canceller(None, "finish", datetime.now, lease)
    assert cancel is not None and not cancel()
    lease.lost = True
    assert cancel() and cancel.reason == "canceled: another run took over the group's lease"
    assert guard_mod.canceller(None, "finish", datetime.now) is None
