"""The SQLite change log: append, filters, hash chain, tamper detection, bad files."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from orchestrator.changelog.record import Entry, record_hash
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import LogFilter
from orchestrator.errors import StateError


def entry(action: str = "audit", host: str | None = "web-01", run: str = "r-1",
          **details: object) -> Entry:
    return Entry(run=run, action=action, status="ok", actor="tester@ci",
                 policy_revision="abc123+dirty", host=host, group="web", details=dict(details))


@pytest.fixture
def store(stores):
    """The store under test: SQLite and PostgreSQL in turn (tests/changelog/conftest.py)."""
    return stores()


def test_records_chain_and_round_trip(store: SqliteStore) -> None:
    first = store.append(entry("run.start", host=None))
    second = store.append(entry("audit", findings=["package.absent:telnetd"]))
    # the literal of SPEC section 4, not the module's constant: a wrong constant fails here
    assert first.seq == 1 and first.prevHash == "0000000000000000000000000000000000000000" \
        "000000000000000000000000"
    assert len(first.prevHash) == 64 and set(first.prevHash) == {"0"}
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
    assert [r.seq for r in store.records(LogFilter(host="b"), newest_first=True,
                                         limit=1)] == [3]
    assert store.latest(LogFilter(action="audit")).seq == 3  # type: ignore[union-attr]
    assert store.record_at(2).action == "install"  # type: ignore[union-attr]
    assert store.record_at(9) is None


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
    # past its end but still running (its run goes on): not taken by just asking
    assert not store.acquire_lease("other", "run-d", until)
    store.finish_lease("other", "run-c")
    assert store.acquire_lease("other", "run-d", until)  # a finished, expired lease is


def _by_hand(prev: str, rec) -> str:
    """sha256(prevHash + canonical JSON) computed here, not with the module's functions:
    sorted keys at every level, no spaces, UTF-8 kept."""
    body = {"seq": rec.seq, "time": rec.time, "run": rec.run, "occurrence": rec.occurrence,
            "policyRevision": rec.policyRevision, "actor": rec.actor, "host": rec.host,
            "group": rec.group, "action": rec.action, "status": rec.status,
            "details": rec.details}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + text).encode("utf-8")).hexdigest()


def test_unsorted_details_hash_over_sorted_canonical_json(store: SqliteStore) -> None:
    details = {"zeta": 1, "alpha": {"y": 2, "b": [3, {"d": 4, "c": 5}]}, "mid": "é ✓",
               "Beta": None}
    assert list(details) != sorted(details)  # inserted unsorted on purpose
    rec = store.append(entry(**details))
    assert rec.hash == _by_hand("0" * 64, rec)
    # and the exact bytes for a fixed record, written out by hand
    from orchestrator.changelog.record import seal

    fixed = seal(Entry(run="r", action="audit", status="ok", actor="a", policy_revision="p",
                       details={"z": 1, "a": {"y": 2, "b": 3}}), 1, "0" * 64,
                 time="2026-01-01T00:00:00.000000Z")
    canonical = ('{"action":"audit","actor":"a","details":{"a":{"b":3,"y":2},"z":1},'
                 '"group":null,"host":null,"occurrence":null,"policyRevision":"p","run":"r",'
                 '"seq":1,"status":"ok","time":"2026-01-01T00:00:00.000000Z"}')
    assert fixed.hash == hashlib.sha256(("0" * 64 + canonical).encode()).hexdigest()
    # read back from SQLite, the chain verifies and the hash is unchanged
    second = store.append(entry(**{"k2": 2, "k1": 1}))
    assert second.hash == _by_hand(rec.hash, second)
    result = store.verify()
    assert result.ok and result.checked == 2
    assert result.last_seq == 2 and result.last_hash == second.hash
    assert [r.hash for r in store.records()] == [rec.hash, second.hash]


def test_empty_log_is_not_intact(store: SqliteStore) -> None:
    result = store.verify()
    assert not result.ok and result.checked == 0 and "empty" in (result.reason or "")
    assert result.anchor is None


def test_anchor_shows_rebuilt_chain_and_removed_records(tmp_path: Path) -> None:
    from orchestrator.changelog.record import Anchor

    path = tmp_path / "state.db"
    s = SqliteStore(path)
    recs = [s.append(entry(n=i)) for i in range(4)]
    assert s.verify().anchor == f"4:{recs[3].hash}"
    assert s.verify(Anchor(2, recs[1].hash)).ok
    assert s.verify(Anchor(4, recs[3].hash)).ok
    # the last records removed: the chain itself still holds, the anchor does not
    s.close()
    _tamper(path, "DELETE FROM records WHERE seq >= 3")
    s = SqliteStore(path)
    assert s.verify().ok
    short = s.verify(Anchor(4, recs[3].hash))
    assert not short.ok and short.checked == 2 and "last records were removed" in short.reason
    # rebuilt: a whole new chain of the same length, every hash consistent
    s.close()
    path.unlink()
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    s = SqliteStore(path)
    for i in range(4):
        s.append(entry(n=i, forged=True))
    assert s.verify().ok
    rebuilt = s.verify(Anchor(4, recs[3].hash))
    assert not rebuilt.ok and rebuilt.broken_seq == 4 and "rebuilt" in rebuilt.reason
    s.close()


@pytest.mark.parametrize("text", ["4", "x:" + "a" * 64, "0:" + "a" * 64, "4:abc",
                                  "4:" + "g" * 64, "-1:" + "a" * 64, "٤:" + "a" * 64])
def test_anchor_parse_rejects(text: str) -> None:
    from orchestrator.changelog.record import Anchor

    with pytest.raises(ValueError, match="expected SEQ:HASH"):
        Anchor.parse(text)


class _PausingConnection:
    """A connection whose lease read waits (between read and write) until `release` is set
    or a moment has passed; every other call goes to the real connection."""

    def __init__(self, conn: sqlite3.Connection, read_done: threading.Event,
                 release: threading.Event | None) -> None:
        self._conn = conn
        self.read_done = read_done
        self.release = release

    def execute(self, sql: str, *args: object):
        cur = self._conn.execute(sql, *args)
        if sql.startswith("SELECT") and "FROM leases" in sql:
            rows = cur.fetchall()
            self.read_done.set()
            if self.release is not None:
                self.release.wait(1.0)
            return _Rows(rows)
        return cur

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


class _Rows:
    def __init__(self, rows: list) -> None:
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


def test_lease_race_with_pause_between_read_and_write(tmp_path: Path) -> None:
    """Store A reads the lease, then pauses before writing while store B tries the same
    lease. Within one immediate transaction, B waits for A and then sees A's lease; without
    it, B reads too, and both win or one fails with 'database is locked'."""
    from datetime import UTC, datetime, timedelta

    path = tmp_path / "state.db"
    a, b = SqliteStore(path), SqliteStore(path)
    a_read, b_read = threading.Event(), threading.Event()
    a._conn = _PausingConnection(a._conn, a_read, release=b_read)  # type: ignore[assignment]
    b._conn = _PausingConnection(b._conn, b_read, release=None)  # type: ignore[assignment]
    until = datetime.now(UTC) + timedelta(hours=1)
    results: dict[str, object] = {}

    def take(name: str, store: SqliteStore) -> None:
        try:
            results[name] = store.acquire_lease("w@occurrence", f"run-{name}", until)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[name] = exc

    ta = threading.Thread(target=take, args=("a", a))
    ta.start()
    assert a_read.wait(10)  # A has read and now pauses before its write
    tb = threading.Thread(target=take, args=("b", b))
    tb.start()
    ta.join(20)
    tb.join(20)
    a.close()
    b.close()
    assert not ta.is_alive() and not tb.is_alive()
    assert not any(isinstance(r, Exception) for r in results.values()), results
    assert sorted(results.values()) == [False, True], results
    s = SqliteStore(path)
    assert s.lease_holder("w@occurrence") == f"run-{'a' if results['a'] else 'b'}"
    s.close()


def test_import_keeps_records_as_sealed_and_refuses_gaps(stores) -> None:
    source, target = stores("source"), stores("target")
    recs = source.append_many([entry("audit", host=f"h{i}") for i in range(4)])
    with pytest.raises(StateError, match="record 2 does not follow record 0"):
        target.import_records(recs[1:])
    assert list(target.records()) == []  # nothing of the refused batch
    target.import_records(recs[:2])
    target.import_records(recs[2:])
    assert list(target.records()) == recs and target.verify().ok


TRICKY = [{"s": 'quote " backslash \\ tab \t newline \n nul \x00 del \x7f é 𝄞 \u2028'},
          {"b": [True, False, None], "n": [0, -1, 1.5, 1e300, 12345678901234567890]},
          {"z": {"y": {"x": []}}, "a": ""}, {}]


@pytest.mark.parametrize("details", TRICKY)
def test_rows_verify_from_their_text_as_the_record_hash_says(details: dict) -> None:
    from orchestrator.changelog.record import canonical_from_row, canonical_json, seal
    from orchestrator.changelog.rows import record_row

    rec = seal(Entry(run="r\u00e9", action="a\"b", status="ok", actor="x\\y",
                     policy_revision="p", host=None, group="g\n", occurrence="o@1",
                     details=details), 7, "0" * 64)
    assert canonical_from_row(record_row(rec)) == canonical_json(rec.to_json())


def test_rows_written_by_an_older_version_still_verify(stores) -> None:
    import json

    store = stores()
    recs = store.append_many([entry("audit", host=f"h{i}", n=i) for i in range(3)])
    # the details text as version 0.1 wrote it: keys sorted, with spaces
    old = json.dumps(recs[1].details, sort_keys=True, ensure_ascii=False)
    sql = ("UPDATE records SET details = ? WHERE seq = 2" if stores.backend == "sqlite"
           else "UPDATE records SET details = %s WHERE seq = 2")
    store._conn.execute(sql, (old,))  # both connections write at once (autocommit)
    assert '"n": 1' in old and store.verify().ok
    store._conn.execute(sql, (old.replace('"n": 1', '"n": 9'),))
    result = store.verify()
    assert not result.ok and result.broken_seq == 2


def test_the_record_hash_is_the_documented_one_for_odd_details() -> None:
    """seal() hashes sha256(prevHash + canonical JSON of the record as read back): int keys
    become text before sorting, tuples lists, other values their text."""
    from orchestrator.changelog.record import record_hash, seal

    rec = seal(Entry(run="r", action="a", status="s", actor="x", policy_revision="p",
                     details={10: "ten", 9: ("nine",), "d": date(2026, 1, 2)}), 1, "0" * 64)
    assert rec.details == {"10": "ten", "9": ["nine"], "d": "2026-01-02"}
    assert rec.hash == record_hash("0" * 64, rec.to_json())
