"""The SQLite change log: append, filters, hash chain, tamper detection, bad files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.changelog.record import GENESIS, Entry, record_hash
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import LogFilter
from orchestrator.errors import StateError


def entry(action: str = "audit", host: str | None = "web-01", run: str = "r-1",
          **details: object) -> Entry:
    return Entry(run=run, action=action, status="ok", actor="tester@ci",
                 policy_revision="abc123+dirty", host=host, group="web", details=dict(details))


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "state" / "state.db")
    yield s
    s.close()


def test_records_chain_and_round_trip(store: SqliteStore) -> None:
    first = store.append(entry("run.start", host=None))
    second = store.append(entry("audit", findings=["package.absent:telnetd"]))
    assert first.seq == 1 and first.prevHash == GENESIS
    assert second.seq == 2 and second.prevHash == first.hash
    fields = {k: getattr(second, k) for k in ("seq", "time", "run", "occurrence",
                                              "policyRevision", "actor", "host", "group",
                                              "action", "status", "details")}
    assert record_hash(first.hash, fields) == second.hash
    stored = list(store.records())
    assert stored == [first, second]
    assert store.verify().ok and store.verify().checked == 2


def test_filters(store: SqliteStore) -> None:
    store.append(entry("audit", host="a", run="r-1"))
    store.append(entry("install", host="b", run="r-1"))
    store.append(entry("audit", host="b", run="r-2"))
    assert [r.seq for r in store.records(LogFilter(host="b"))] == [2, 3]
    assert [r.seq for r in store.records(LogFilter(run="r-1", action="audit"))] == [1]
    assert [r.seq for r in store.records(LogFilter(since="2999-01-01T00:00:00Z"))] == []


def test_state_files_are_private(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "db" / "state.db")
    s.append(entry())
    for name in ("state.db", "state.db-wal"):
        path = tmp_path / "db" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == 0o700
    s.close()


def _tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "broken_at", "word"),
    [
        ("UPDATE records SET status = 'ok-edited' WHERE seq = 2", 2, "altered"),
        ("UPDATE records SET details = '{\"x\": 1}' WHERE seq = 3", 3, "altered"),
        ("DELETE FROM records WHERE seq = 2", 3, "removed"),
        ("UPDATE records SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 ELSE seq END", 2,
         "prevHash"),
    ],
    ids=["edited-status", "edited-details", "removed", "reordered"],
)
def test_verify_detects_tampering(tmp_path: Path, sql: str, broken_at: int, word: str) -> None:
    path = tmp_path / "state.db"
    s = SqliteStore(path)
    for i in range(4):
        s.append(entry(n=i))
    s.close()
    if "CASE" in sql:  # swap two rows through a free seq to respect the primary key
        _tamper(path, "UPDATE records SET seq = 100 WHERE seq = 2")
        _tamper(path, "UPDATE records SET seq = 2 WHERE seq = 3")
        _tamper(path, "UPDATE records SET seq = 3 WHERE seq = 100")
    else:
        _tamper(path, sql)
    s = SqliteStore(path)
    result = s.verify()
    s.close()
    assert not result.ok
    assert result.broken_seq == broken_at
    assert word in (result.reason or "")


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match=r"state\.db: not a usable SQLite state database"):
        SqliteStore(path)


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot create the state database"):
        SqliteStore(blocker / "state.db")


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
"""


def test_locked_by_another_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    monkeypatch.setattr("orchestrator.changelog.sqlite.BUSY_TIMEOUT_MS", 200)
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(StateError, match="locked by another orchestrator process"):
            s = SqliteStore(path)
            s.append(entry())
    finally:
        proc.communicate("\n", timeout=10)
    assert os.path.exists(path)


def test_lease_taken_once(store: SqliteStore) -> None:
    from datetime import UTC, datetime, timedelta

    until = datetime.now(UTC) + timedelta(hours=1)
    assert store.acquire_lease("w@2026-11-14T22:00:00+01:00", "run-a", until)
    assert not store.acquire_lease("w@2026-11-14T22:00:00+01:00", "run-b", until)
    assert store.lease_holder("w@2026-11-14T22:00:00+01:00") == "run-a"
    expired = datetime.now(UTC) - timedelta(seconds=1)
    assert store.acquire_lease("other", "run-c", expired)
    assert store.acquire_lease("other", "run-d", until)  # the expired lease is taken over
