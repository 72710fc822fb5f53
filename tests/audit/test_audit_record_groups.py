"""Host records that finish together share one change-log transaction, and none waits long."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from orchestrator import hostpool
from orchestrator.audit import run as audit_run
from orchestrator.audit.host import HostJob
from orchestrator.audit.result import HostAudit
from orchestrator.changelog.record import Entry, Record
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.context import RunContext


class CountingStore(SqliteStore):
    """A real SQLite store that notes each transaction: its actions and when it committed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.transactions: list[tuple[float, list[str]]] = []

    def append_many(self, entries: list[Entry]) -> list[Record]:
        out = super().append_many(entries)
        self.transactions.append((time.monotonic(),
                                  [f"{e.action}:{e.host}" if e.host else e.action
                                   for e in entries]))
        return out


def context(store: SqliteStore, tmp_path: Path) -> RunContext:
    return RunContext(run_id="r-1", actor="tester", policy_revision="rev", store=store,
                      settings=None, forks=8, inventory_path=None, playbooks=tmp_path)


def jobs(n: int) -> list[HostJob]:
    return [HostJob(f"web-{i:02d}", ("web",), "linux", {}) for i in range(1, n + 1)]


def test_hosts_finishing_together_are_one_transaction(tmp_path, monkeypatch):
    monkeypatch.setattr(hostpool, "GROUP_WINDOW", 5.0)  # generous: the hosts finish at once
    monkeypatch.setattr(audit_run, "audit_host", lambda job, *a, **k: HostAudit(
        job.host, job.groups, job.platform, "compliant"))
    store = CountingStore(tmp_path / "state.db")
    seen: list[tuple[str, int]] = []
    result = audit_run.run_audit(context(store, tmp_path), jobs(6),
                                 progress=lambda res, n, total: seen.append((res.host, n)))
    assert [t[1] for t in store.transactions] == [
        ["audit.start"], [f"audit:web-{i:02d}" for i in range(1, 7)], ["audit.end"]]
    assert [n for _, n in seen] == [1, 2, 3, 4, 5, 6]
    assert result.exit_code() == 0
    records = list(store.records())
    assert [r.seq for r in records] == list(range(1, 9))
    assert all(b.prevHash == a.hash for a, b in zip(records, records[1:], strict=False))
    assert store.verify().ok


def test_no_record_waits_for_a_slow_host(tmp_path, monkeypatch):
    """web-01 finishes at once, web-02 a second later: web-01's record is written within
    GROUP_WINDOW of its finish, not with web-02's."""
    monkeypatch.setattr(hostpool, "GROUP_WINDOW", 0.1)
    finished: dict[str, float] = {}

    def audit_host(job, *a, **k):
        if job.host == "web-02":
            time.sleep(1.0)
        finished[job.host] = time.monotonic()
        return HostAudit(job.host, job.groups, job.platform, "compliant")

    monkeypatch.setattr(audit_run, "audit_host", audit_host)
    store = CountingStore(tmp_path / "state.db")
    audit_run.run_audit(context(store, tmp_path), jobs(2))
    written = {actions[0]: at for at, actions in store.transactions}
    assert [t[1] for t in store.transactions][1:3] == [["audit:web-01"], ["audit:web-02"]]
    assert written["audit:web-01"] - finished["web-01"] < 0.5
    assert written["audit:web-01"] < finished["web-02"]


def test_a_host_that_raises_is_recorded_with_the_others(tmp_path, monkeypatch):
    monkeypatch.setattr(hostpool, "GROUP_WINDOW", 5.0)
    gate = threading.Barrier(3)

    def audit_host(job, *a, **k):
        gate.wait(timeout=10)
        if job.host == "web-02":
            raise RuntimeError("bug")
        return HostAudit(job.host, job.groups, job.platform, "compliant")

    monkeypatch.setattr(audit_run, "audit_host", audit_host)
    store = CountingStore(tmp_path / "state.db")
    result = audit_run.run_audit(context(store, tmp_path), jobs(3))
    assert [t[1] for t in store.transactions][1] == ["audit:web-01", "audit:web-02",
                                                     "audit:web-03"]
    assert [h.status for h in result.hosts] == ["compliant", "error", "compliant"]
    rec = next(r for r in store.records() if r.host == "web-02")
    assert rec.details["error"] == "internal error: RuntimeError: bug"


def test_append_many_is_all_or_nothing(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    entry = Entry(run="r", action="audit", status="compliant", actor="a", policy_revision="p")
    first = store.append(entry)
    bad = Entry(run="r", action="audit", status="x", actor="a", policy_revision="p",
                details={"not json": float("nan")})
    with pytest.raises(ValueError):
        store.append_many([entry, bad])
    assert [r.seq for r in store.records()] == [1]
    recs = store.append_many([entry, entry])
    assert [r.seq for r in recs] == [2, 3]
    assert recs[0].prevHash == first.hash and recs[1].prevHash == recs[0].hash
    assert store.append_many([]) == []
    assert store.verify().ok
    store.close()
