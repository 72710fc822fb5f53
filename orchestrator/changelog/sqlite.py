"""SQLite store in WAL mode: the embedded default.

Trust: the database decides whether a window already ran (its leases) and holds the change
log, so it is opened only when nobody but this user (or root) can have written or swapped
it: the folders and links on the way, the state folder (this user's or root's, not writable
by group or others), the database and its -wal, -shm and -journal files (regular files, not
links, this user's or root's, not writable by group or others). A new database is created
with O_EXCL|O_NOFOLLOW relative to the checked folder, never through a link. Anything else
is a one-line StateError naming the file (privatefs).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from orchestrator.changelog.record import (
    GENESIS,
    Anchor,
    Entry,
    Record,
    VerifyResult,
    seal,
    verify_rows,
)
from orchestrator.changelog.rows import (
    LEASE_FIELDS,
    RECORD_COLUMNS,
    filter_sql,
    lease_from_row,
    record_from_row,
    record_row,
)
from orchestrator.changelog.store import ChangeLogStore, Lease, LeaseOwner, LogFilter
from orchestrator.errors import StateError
from orchestrator.privatefs import check_entry, open_trusted_dir, private_dir, resolve_trusted

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
    until TEXT NOT NULL,
    heartbeat TEXT,
    node TEXT,
    pid INTEGER,
    started TEXT,
    state TEXT NOT NULL DEFAULT 'done'
);
CREATE INDEX IF NOT EXISTS records_occurrence ON records(occurrence);
CREATE INDEX IF NOT EXISTS records_action ON records(action);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
-- reports (compliance/queries.py): each host's last record of an action in a period,
-- read from the index alone
CREATE INDEX IF NOT EXISTS records_report ON records(action, time, grp, host, status);
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
COMPANIONS = ("-wal", "-shm", "-journal")  # what SQLite keeps beside the database
# Columns added to `leases` after its first release: (name, declaration); a database made by
# an older orchestrator gets them on open (its leases are finished runs: state done).
LEASE_COLUMNS = (("heartbeat", "TEXT"), ("node", "TEXT"), ("pid", "INTEGER"),
                 ("started", "TEXT"), ("state", "TEXT NOT NULL DEFAULT 'done'"))


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
        real = self._trusted_path()
        old = os.umask(0o077)  # WAL and shared-memory files too
        try:
            conn = sqlite3.connect(real, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            _migrate_leases(conn)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        finally:
            os.umask(old)
        return conn

    def _trusted_path(self) -> str:
        """Check that nobody but this user (or root) can have written the state folder, the
        database or its companion files, or can swap them; create the database if absent.
        Returns the database's resolved path, which is what SQLite opens."""
        folder, name = self.path.parent, self.path.name
        elsewhere = "point --state at a folder of this user's"
        try:
            if not os.path.lexists(folder):  # create folders only where nobody else leads us
                above = folder.parent
                while not os.path.lexists(above) and above != above.parent:
                    above = above.parent
                resolve_trusted(above, fix=elsewhere, judge_last=True)
                private_dir(folder)  # .orchestrator/ 0700, whoever creates it first
            real = resolve_trusted(folder, fix=elsewhere)
            dir_fd = open_trusted_dir(real, allow_root=True, kind="state folder",
                                      fix=_folder_fix)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the state database: "
                             f"{exc.strerror or exc}") from None
        try:
            if not os.path.lexists(os.path.join(real, name)):
                try:  # never through a link planted in its place
                    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                                 | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
                    os.close(fd)
                except FileExistsError:  # created meanwhile: judged below
                    pass
            for suffix in ("", *COMPANIONS):
                where = self.path.with_name(name + suffix)
                check_entry(dir_fd, name + suffix, where, allow_root=True,
                            kind="state database" if not suffix else "state file",
                            fix=_file_fix)
            if not os.access(name, os.R_OK, dir_fd=dir_fd):
                raise StateError(f"{self.path}: state database is not readable; check its "
                                 "permissions")
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the state database: "
                             f"{exc.strerror or exc}") from None
        finally:
            os.close(dir_fd)
        return os.path.join(real, name)

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE (writers queue here, before reading what
        they will write after), COMMIT when the block ends, ROLLBACK if it raises; SQLite
        errors become one-line StateErrors."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def append(self, entry: Entry) -> Record:
        return self.append_many([entry])[0]

    def append_many(self, entries: list[Entry]) -> list[Record]:
        """One transaction (one sync to disk) for all `entries`, chained in order."""
        out: list[Record] = []
        if not entries:
            return out
        with self._immediate() as conn:
            row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            for entry in entries:
                rec = seal(entry, seq, prev)
                out.append(rec)
                seq, prev = seq + 1, rec.hash
            conn.executemany(
                f"INSERT INTO records ({RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [record_row(rec) for rec in out])
        return out

    def records(self, flt: LogFilter | None = None, *, newest_first: bool = False,
                limit: int | None = None) -> Iterator[Record]:
        return (record_from_row(row) for row in self._rows(flt, newest_first, limit))

    def verify(self, expect: Anchor | None = None, upto: int | None = None) -> VerifyResult:
        """The chain checked from the rows' text, streaming (record.verify_rows), from the
        first record (through record `upto` if given)."""
        return verify_rows(self._rows(LogFilter(upto=upto), False, None), record_from_row,
                           expect)

    def _rows(self, flt: LogFilter | None, newest_first: bool, limit: int | None
              ) -> Iterator[tuple]:
        where, args = filter_sql(flt, "?")
        sql = f"SELECT {RECORD_COLUMNS} FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            cur = self._conn.execute(sql, args)
            yield from cur
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def latest(self, flt: LogFilter) -> Record | None:
        return next(self.records(flt, newest_first=True, limit=1), None)

    def record_at(self, seq: int) -> Record | None:
        try:
            row = self._conn.execute(f"SELECT {RECORD_COLUMNS} FROM records WHERE seq = ?",
                                     (seq,)).fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return record_from_row(row) if row else None

    def acquire_lease(self, key: str, holder: str, until: datetime,
                      now: datetime | None = None, *, owner: LeaseOwner | None = None,
                      replacing: Lease | None = None) -> bool:
        at = _utc(now or datetime.now(UTC))
        with self._immediate() as conn:
            row = conn.execute(f"SELECT {LEASE_FIELDS} FROM leases WHERE key = ?",
                               (key,)).fetchone()
            held = lease_from_row(row) if row is not None else None
            # a running lease is never just expired: only taken over from a holder judged
            # gone (`replacing`), however long its run takes
            if held is not None and (held.state == "running" or held.until > at):
                if replacing is None or (held.holder, held.heartbeat, held.state) != (
                        replacing.holder, replacing.heartbeat, replacing.state):
                    return False  # held: nothing written
            stamp = _utc(datetime.now(UTC))
            conn.execute(
                f"INSERT OR REPLACE INTO leases ({LEASE_FIELDS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (key, holder, stamp, _utc(until), stamp, owner.node if owner else None,
                 owner.pid if owner else None, owner.started if owner else None, "running"))
            return True

    def release_lease(self, key: str, holder: str) -> None:
        try:
            self._conn.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def lease(self, key: str) -> Lease | None:
        try:
            row = self._conn.execute(f"SELECT {LEASE_FIELDS} FROM leases WHERE key = ?",
                                     (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return lease_from_row(row) if row else None

    def heartbeat(self, key: str, holder: str) -> bool:
        try:
            cur = self._conn.execute(
                "UPDATE leases SET heartbeat = ? WHERE key = ? AND holder = ? AND "
                "state = 'running'", (_utc(datetime.now(UTC)), key, holder))
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return cur.rowcount == 1

    def finish_lease(self, key: str, holder: str) -> None:
        try:
            self._conn.execute("UPDATE leases SET state = 'done' WHERE key = ? AND holder = ?",
                               (key, holder))
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def first_seen(self, group: str, host: str, pending: Iterable[tuple[str, str]],
                   seen: date) -> dict[tuple[str, str], date]:
        items = sorted(set(pending))
        if not items:
            return {}
        out: dict[tuple[str, str], date] = {}
        with self._immediate() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO patch_first_seen (grp, host, package, version, "
                "first_seen) VALUES (?,?,?,?,?)",
                [(group, host, name, version, seen.isoformat()) for name, version in items])
            for name, version in items:
                row = conn.execute(
                    "SELECT MIN(first_seen) FROM patch_first_seen WHERE grp = ? AND "
                    "package = ? AND version = ?", (group, name, version)).fetchone()
                out[(name, version)] = date.fromisoformat(row[0])
        return out

    def import_records(self, records: list[Record]) -> None:
        if not records:
            return
        with self._immediate() as conn:
            row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0], row[1]) if row else (0, GENESIS)
            for rec in records:
                if rec.seq != seq + 1 or rec.prevHash != prev:
                    raise StateError(f"{self.path}: record {rec.seq} does not follow record "
                                     f"{seq} of this log; migrate into an empty store")
                conn.execute(
                    f"INSERT INTO records ({RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    record_row(rec))
                seq, prev = rec.seq, rec.hash

    def first_seen_rows(self) -> list[tuple[str, str, str, str, str]]:
        try:
            return [tuple(r) for r in self._conn.execute(  # type: ignore[misc]
                "SELECT grp, host, package, version, first_seen FROM patch_first_seen "
                "ORDER BY grp, host, package, version")]
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def import_first_seen(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        with self._immediate() as conn:
            conn.executemany("INSERT OR IGNORE INTO patch_first_seen (grp, host, package, "
                             "version, first_seen) VALUES (?,?,?,?,?)", rows)

    dialect = "sqlite"

    def optimize(self) -> None:
        try:
            self._conn.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def select(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            if "JSON" in str(exc):
                raise StateError(f"{self.path}: a record's details are not JSON ({exc}); "
                                 "run 'orchestrator log verify' to find it") from None
            raise self._fail(exc) from None

    def close(self) -> None:
        self._conn.close()


def _folder_fix(why: str) -> str:
    if "writable" in why:
        return "chmod 0700 it, or point --state at a folder of this user's"
    return "run as its owner, or point --state at a folder of this user's"


def _file_fix(why: str) -> str:
    """Never "remove it": it may hold the change log."""
    if "link" in why:
        return "put the file itself there, or point --state at it"
    if "writable" in why:
        return "chmod go-w it"
    if "owned" in why:
        return "if it is yours, chown it to this user; else run as its owner or point " \
               "--state elsewhere"
    return "move it away, or point --state elsewhere"


def _utc(t: datetime) -> str:
    """Fixed-width UTC text, so that leases compare correctly as strings."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _migrate_leases(conn: sqlite3.Connection) -> None:
    """Add the lease columns an older orchestrator's database lacks (one transaction: two
    processes opening it at once add them once)."""
    def missing() -> list[tuple[str, str]]:
        have = {row[1] for row in conn.execute("PRAGMA table_info(leases)")}
        return [(n, d) for n, d in LEASE_COLUMNS if n not in have]

    if not missing():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, decl in missing():
            conn.execute(f"ALTER TABLE leases ADD COLUMN {name} {decl}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

