"""PostgreSQL store: the shared store when several machines run the orchestrator.

The same interface and the same records as the SQLite store (changelog/sqlite.py):
- **One hash chain from many writers.** Each append is one transaction that first takes a
  transaction-level advisory lock (`pg_advisory_xact_lock`), then reads the last record and
  inserts after it: writers on any machine queue on the lock, so `seq` and `prevHash` never
  fork. A connection lost mid-append rolls the transaction back: a record is in the log
  whole or not at all; records appended before stay.
- **Leases across machines.** A lease is read and written under an advisory lock of its
  own key, so of two runs taking one occurrence, one wins; heartbeats are plain updates.
- `details` is kept as the exact JSON text that was hashed (not `jsonb`, which would
  reorder keys and renormalise numbers), so `log verify` recomputes the same hashes.
- Reads page through the log by `seq` (keyset pagination), so a million records stream
  with flat memory and no long-running transaction.

Errors are one line naming the server (password hidden) and what to do; the URL is any
libpq connection URI, so TLS is `?sslmode=verify-full&sslrootcert=...` (README).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

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
from orchestrator.redact import redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq BIGINT PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS records_occurrence ON records(occurrence);
CREATE INDEX IF NOT EXISTS records_action ON records(action);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
-- reports (compliance/queries.py): each host's last record of an action in a period,
-- read from the index alone
CREATE INDEX IF NOT EXISTS records_report ON records(action, time, grp, host, status);
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
CREATE TABLE IF NOT EXISTS patch_first_seen (
    grp TEXT NOT NULL,
    host TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (grp, package, version, host)
);
"""
# indexes an existing store may lack (added by later versions): name, statement
INDEXES = (("records_report", "CREATE INDEX IF NOT EXISTS records_report ON "
                              "records(action, time, grp, host, status)"),)
CHAIN_LOCK = 0x6F72636C  # "orcl": the advisory lock every appending transaction takes
SCHEMA_LOCK = 0x6F726373  # "orcs": creating the tables, once
PAGE = 5000  # records read per round trip
CONNECT_TIMEOUT = 10


def _utc(t: datetime) -> str:
    """Fixed-width UTC text, as the SQLite store writes it (leases compare as strings)."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


class PostgresStore(ChangeLogStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._shown = redact(url)
        try:
            import psycopg
        except ImportError:
            raise StateError(f"{self._shown}: the PostgreSQL store needs psycopg; run pip "
                             "install 'psycopg[binary]'") from None
        self._psycopg = psycopg
        self._conn = self._connect()
        encoding = self._query("SHOW server_encoding")[0][0]
        if isinstance(encoding, bytes):  # psycopg hands SQL_ASCII text over undecoded
            encoding = encoding.decode("ascii", "replace")
        if str(encoding).upper() not in ("UTF8", "UTF-8"):
            raise StateError(f"{self._shown}: the database's encoding is {encoding}, not UTF8; "
                             "create it with ENCODING 'UTF8' (records hold any text)")
        tables = ("records", "leases", "patch_first_seen")
        found = self._query("SELECT " + ", ".join(f"to_regclass('{n}')" for n in tables))[0]
        if any(f is None for f in found):  # only then: a role with rights on the tables
            with self._tx() as cur:       # alone may use a store created beforehand
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                cur.execute(SCHEMA)
        else:
            self._add_indexes()

    def _add_indexes(self) -> None:
        """Indexes a newer version added to an existing store (they speed reads, nothing
        depends on them): made when this role may, else left to the DBA (README: CREATE
        INDEX CONCURRENTLY), without stopping the command."""
        missing = [(name, sql) for name, sql in INDEXES
                   if self._query("SELECT to_regclass(%s)", (name,))[0][0] is None]
        for name, sql in missing:
            try:
                with self._tx() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    cur.execute(sql)
            except StateError as exc:
                print(f"warning: {self._shown}: index {name} is missing and could not be "
                      f"created ({exc.message.rsplit(': ', 1)[-1]}); reports are slower "
                      "until a DBA creates it (README: The PostgreSQL store)", file=sys.stderr)

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            # the advisory lock must come before the snapshot that reads the chain's end
            conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            return conn
        except psycopg.Error as exc:
            raise StateError(f"{self._shown}: cannot connect to the PostgreSQL store: "
                             f"{_scrubbed(_first_line(exc), self.url)}; check the URL, that "
                             "the server is up and reachable, and the credentials") from None
        except ValueError as exc:  # a malformed URI
            raise StateError(f"{self._shown}: not a PostgreSQL connection URI ({exc}); use "
                             "postgresql://USER@HOST[:PORT]/DB[?sslmode=verify-full]") from None

    def _live(self) -> Any:
        """The connection, opened again if it was lost (a server restart, a failover): the
        next operation after a loss works again; the one that met it failed whole."""
        if self._conn.closed or getattr(self._conn, "broken", False):
            self._conn = self._connect()
        return self._conn

    # ------------------------------------------------------------------ plumbing
    def _fail(self, exc: Exception) -> StateError:
        first = _scrubbed(_first_line(exc), self.url)
        if isinstance(exc, self._psycopg.OperationalError):
            return StateError(f"{self._shown}: lost the PostgreSQL store: {first}; records "
                              "written before are kept and nothing was half-written (one "
                              "whose commit was under way may or may not be in the log: see "
                              "`orchestrator log`); check the server")
        return StateError(f"{self._shown}: PostgreSQL store error: {first}")

    class _Tx:
        def __init__(self, store: PostgresStore) -> None:
            self.store = store

        def __enter__(self) -> Any:
            try:
                conn = self.store._live()
                self.tx = conn.transaction()
                self.tx.__enter__()
                self.cur = conn.cursor()
            except self.store._psycopg.Error as exc:
                raise self.store._fail(exc) from None
            return self.cur

        def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
            try:
                self.cur.close()
                self.tx.__exit__(kind, exc, tb)
            except self.store._psycopg.Error as err:
                raise self.store._fail(err) from None
            if isinstance(exc, self.store._psycopg.Error):
                raise self.store._fail(exc) from None
            return False

    def _tx(self) -> PostgresStore._Tx:
        """One transaction: COMMIT when the block ends, ROLLBACK if it raises; errors of
        the server or the connection become one-line StateErrors."""
        return PostgresStore._Tx(self)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._live().cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        except self._psycopg.Error as exc:
            raise self._fail(exc) from None

    # ------------------------------------------------------------------ records
    def append(self, entry: Entry) -> Record:
        return self.append_many([entry])[0]

    def append_many(self, entries: list[Entry]) -> list[Record]:
        out: list[Record] = []
        if not entries:
            return out
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            cur.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
            row = cur.fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            rows = []
            for entry in entries:
                rec = seal(entry, seq, prev)
                rows.append(record_row(rec))
                out.append(rec)
                seq, prev = seq + 1, rec.hash
            _insert(cur, rows)
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
        where, args = filter_sql(flt, "%s")
        left = limit
        last: int | None = None
        while left is None or left > 0:
            page = PAGE if left is None else min(PAGE, left)
            cond = list(where)
            cargs = list(args)
            if last is not None:
                cond.append("seq < %s" if newest_first else "seq > %s")
                cargs.append(last)
            sql = f"SELECT {RECORD_COLUMNS} FROM records"
            if cond:
                sql += " WHERE " + " AND ".join(cond)
            sql += (" ORDER BY seq DESC" if newest_first else " ORDER BY seq") + f" LIMIT {page}"
            rows = self._query(sql, tuple(cargs))
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def latest(self, flt: LogFilter) -> Record | None:
        return next(self.records(flt, newest_first=True, limit=1), None)

    def record_at(self, seq: int) -> Record | None:
        rows = self._query(f"SELECT {RECORD_COLUMNS} FROM records WHERE seq = %s", (seq,))
        return record_from_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ leases
    def acquire_lease(self, key: str, holder: str, until: datetime,
                      now: datetime | None = None, *, owner: LeaseOwner | None = None,
                      replacing: Lease | None = None) -> bool:
        at = _utc(now or datetime.now(UTC))
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("lease:" + key,))
            cur.execute(f"SELECT {LEASE_FIELDS} FROM leases WHERE key = %s", (key,))
            row = cur.fetchone()
            held = lease_from_row(row) if row is not None else None
            if held is not None and (held.state == "running" or held.until > at):
                if replacing is None or (held.holder, held.heartbeat, held.state) != (
                        replacing.holder, replacing.heartbeat, replacing.state):
                    return False
            stamp = _utc(datetime.now(UTC))
            cur.execute(
                f"INSERT INTO leases ({LEASE_FIELDS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, acquired = "
                "EXCLUDED.acquired, until = EXCLUDED.until, heartbeat = EXCLUDED.heartbeat, "
                "node = EXCLUDED.node, pid = EXCLUDED.pid, started = EXCLUDED.started, "
                "state = EXCLUDED.state",
                (key, holder, stamp, _utc(until), stamp, owner.node if owner else None,
                 owner.pid if owner else None, owner.started if owner else None, "running"))
            return True

    def release_lease(self, key: str, holder: str) -> None:
        self._query("DELETE FROM leases WHERE key = %s AND holder = %s", (key, holder))

    def lease(self, key: str) -> Lease | None:
        rows = self._query(f"SELECT {LEASE_FIELDS} FROM leases WHERE key = %s", (key,))
        return lease_from_row(rows[0]) if rows else None

    def heartbeat(self, key: str, holder: str) -> bool:
        rows = self._query("UPDATE leases SET heartbeat = %s WHERE key = %s AND holder = %s "
                           "AND state = 'running' RETURNING key",
                           (_utc(datetime.now(UTC)), key, holder))
        return len(rows) == 1

    def finish_lease(self, key: str, holder: str) -> None:
        self._query("UPDATE leases SET state = 'done' WHERE key = %s AND holder = %s",
                    (key, holder))

    # ------------------------------------------------------------------ patches
    def first_seen(self, group: str, host: str, pending: Iterable[tuple[str, str]],
                   seen: date) -> dict[tuple[str, str], date]:
        items = sorted(set(pending))
        if not items:
            return {}
        out: dict[tuple[str, str], date] = {}
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO patch_first_seen (grp, host, package, version, first_seen) "
                "VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                [(group, host, name, version, seen.isoformat()) for name, version in items])
            for name, version in items:
                cur.execute("SELECT MIN(first_seen) FROM patch_first_seen WHERE grp = %s AND "
                            "package = %s AND version = %s", (group, name, version))
                out[(name, version)] = date.fromisoformat(cur.fetchone()[0])
        return out

    def import_records(self, records: list[Record]) -> None:
        if not records:
            return
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            cur.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
            row = cur.fetchone()
            seq, prev = (row[0], row[1]) if row else (0, GENESIS)
            for rec in records:
                if rec.seq != seq + 1 or rec.prevHash != prev:
                    raise StateError(f"{self._shown}: record {rec.seq} does not follow record "
                                     f"{seq} of this log; migrate into an empty store")
                seq, prev = rec.seq, rec.hash
            _insert(cur, [record_row(r) for r in records])

    def first_seen_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [tuple(r) for r in self._query(  # type: ignore[misc]
            "SELECT grp, host, package, version, first_seen FROM patch_first_seen "
            "ORDER BY grp, host, package, version")]

    def import_first_seen(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        with self._tx() as cur:
            cur.executemany("INSERT INTO patch_first_seen (grp, host, package, version, "
                            "first_seen) VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING", rows)

    dialect = "postgresql"

    def optimize(self) -> None:
        """ANALYZE the tables (a role that does not own them gets a server warning, no
        error: autovacuum does it later)."""
        self._query("ANALYZE records")
        self._query("ANALYZE patch_first_seen")

    def select(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._query(sql, args)

    def close(self) -> None:
        try:
            self._conn.close()
        except self._psycopg.Error:
            pass


def _insert(cur: Any, rows: list[tuple]) -> None:
    """Insert record rows: COPY for a batch (several times faster), INSERT for a few."""
    if len(rows) > 20:
        with cur.copy(f"COPY records ({RECORD_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cur.executemany(f"INSERT INTO records ({RECORD_COLUMNS}) VALUES "
                        "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)


def _scrubbed(text: str, url: str) -> str:
    """A libpq message about `url` with the password gone: libpq quotes the parts of a URI
    it cannot parse, which may be the password itself, so every quoted part goes, and so
    does the password wherever it stands."""
    import re
    from urllib.parse import unquote, urlsplit

    text = re.sub(r'"[^"]*"', '"***"', text)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password)} if password else ():
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(exc: Exception) -> str:
    return redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])

