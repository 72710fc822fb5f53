"""SQLite store in WAL mode: the embedded default."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from orchestrator.changelog.record import GENESIS, Entry, Record, seal
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.errors import StateError
from orchestrator.privatefs import private_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    run TEXT NOT NULL,
    occurrence TEXT,
    policy_revision TEXT NOT NULL,
    actor TEXT NOT NULL,
    host TEXT,
    grp TEXT,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_host ON records(host);
CREATE INDEX IF NOT EXISTS records_run ON records(run);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired TEXT NOT NULL,
    until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS patch_first_seen (
    grp TEXT NOT NULL,
    host TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (grp, package, version, host)
);
"""
BUSY_TIMEOUT_MS = 10_000
COLUMNS = ("seq, time, run, occurrence, policy_revision, actor, host, grp, action, status, "
           "details, prev_hash, hash")


class SqliteStore(ChangeLogStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._conn = self._open()

    def _fail(self, exc: sqlite3.Error) -> StateError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StateError(f"{self.path}: state database is locked by another orchestrator "
                              "process; wait for it to finish and try again")
        if "not a database" in text or "malformed" in text:
            return StateError(f"{self.path}: not a usable SQLite state database ({text}); "
                              "restore it from backup or point --state elsewhere")
        if "readonly" in text or "unable to open" in text:
            return StateError(f"{self.path}: cannot write the state database ({text}); "
                              "check its permissions")
        return StateError(f"{self.path}: state database error: {text}")

    def _open(self) -> sqlite3.Connection:
        try:
            private_dir(self.path.parent)  # .orchestrator/ 0700, whoever creates it first
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            if not os.access(self.path, os.R_OK):
                raise StateError(f"{self.path}: state database is not readable; check its "
                                 "permissions")
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the state database: "
                             f"{exc.strerror or exc}") from None
        old = os.umask(0o077)  # WAL and shared-memory files too
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        finally:
            os.umask(old)
        return conn

    def append(self, entry: Entry) -> Record:
        return self.append_many([entry])[0]

    def append_many(self, entries: list[Entry]) -> list[Record]:
        """One transaction (one sync to disk) for all `entries`, chained in order."""
        out: list[Record] = []
        if not entries:
            return out
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                for entry in entries:
                    rec = seal(entry, seq, prev)
                    self._conn.execute(
                        f"INSERT INTO records ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (rec.seq, rec.time, rec.run, rec.occurrence, rec.policyRevision,
                         rec.actor, rec.host, rec.group, rec.action, rec.status,
                         json.dumps(rec.details, sort_keys=True, ensure_ascii=False),
                         rec.prevHash, rec.hash))
                    out.append(rec)
                    seq, prev = seq + 1, rec.hash
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return out

    def records(self, flt: LogFilter | None = None) -> Iterator[Record]:
        flt = flt or LogFilter()
        where, args = [], []
        for column, value in (("host", flt.host), ("run", flt.run), ("action", flt.action)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if flt.since is not None:
            where.append("time >= ?")
            args.append(flt.since)
        sql = f"SELECT {COLUMNS} FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        try:
            cur = self._conn.execute(sql, args)
            for row in cur:
                yield _row_to_record(row, self.path)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def acquire_lease(self, key: str, holder: str, until: datetime,
                      now: datetime | None = None) -> bool:
        at = _utc(now or datetime.now(UTC))
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT until FROM leases WHERE key = ?",
                                         (key,)).fetchone()
                if row is not None and row[0] > at:
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "INSERT OR REPLACE INTO leases (key, holder, acquired, until) "
                    "VALUES (?,?,?,?)", (key, holder, _utc(datetime.now(UTC)), _utc(until)))
                self._conn.execute("COMMIT")
                return True
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def release_lease(self, key: str, holder: str) -> None:
        try:
            self._conn.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def lease_holder(self, key: str) -> str | None:
        try:
            row = self._conn.execute("SELECT holder FROM leases WHERE key = ?",
                                     (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return row[0] if row else None

    def first_seen(self, group: str, host: str, pending: Iterable[tuple[str, str]],
                   seen: date) -> dict[tuple[str, str], date]:
        items = sorted(set(pending))
        if not items:
            return {}
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO patch_first_seen (grp, host, package, version, "
                    "first_seen) VALUES (?,?,?,?,?)",
                    [(group, host, name, version, seen.isoformat()) for name, version in items])
                out: dict[tuple[str, str], date] = {}
                for name, version in items:
                    row = self._conn.execute(
                        "SELECT MIN(first_seen) FROM patch_first_seen WHERE grp = ? AND "
                        "package = ? AND version = ?", (group, name, version)).fetchone()
                    out[(name, version)] = date.fromisoformat(row[0])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return out

    def close(self) -> None:
        self._conn.close()


def _utc(t: datetime) -> str:
    """Fixed-width UTC text, so that leases compare correctly as strings."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _row_to_record(row: tuple, path: Path) -> Record:
    try:
        details = json.loads(row[10])
    except (TypeError, ValueError):
        details = {"_unreadable": str(row[10])}
    return Record(seq=row[0], time=row[1], run=row[2], occurrence=row[3], policyRevision=row[4],
                  actor=row[5], host=row[6], group=row[7], action=row[8], status=row[9],
                  details=details, prevHash=row[11], hash=row[12])
