"""The store interface: what every backend (SQLite, PostgreSQL) provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from orchestrator.changelog.record import Anchor, Entry, Record, VerifyResult, verify_chain


@dataclass(frozen=True)
class LogFilter:
    host: str | None = None
    run: str | None = None
    since: str | None = None  # ISO 8601 UTC, compared with record time
    action: str | None = None
    occurrence: str | None = None
    status: str | None = None
    until: str | None = None  # ISO 8601 UTC: records strictly before this time
    group: str | None = None
    upto: int | None = None  # records up to this sequence number (log verify over a prefix)


@dataclass(frozen=True)
class LeaseOwner:
    """Where a lease's holder runs: the machine (`node`), its process id and that process's
    start (`BOOT:PIDNS:TICK`: boot id, pid namespace and start tick, so that neither a reused
    pid nor a process in another container of the same machine is taken for the holder)."""

    node: str
    pid: int
    started: str


@dataclass(frozen=True)
class Lease:
    """A lease as stored. `state`: running (the holder is at work and beats `heartbeat`) or
    done (the run finished; the lease stays until `until` so that the occurrence runs once)."""

    key: str
    holder: str
    acquired: str
    until: str
    heartbeat: str | None
    owner: LeaseOwner | None
    state: str


class ChangeLogStore(ABC):
    """Append-only records with a hash chain, plus leases (one run per occurrence)."""

    url: str

    @abstractmethod
    def append(self, entry: Entry) -> Record:
        """Seal and store one record atomically, as it happens."""

    def append_many(self, entries: list[Entry]) -> list[Record]:
        """Seal and store `entries` in order, all or none (backends make it one transaction:
        one disk sync for records that are ready together)."""
        return [self.append(e) for e in entries]

    @abstractmethod
    def records(self, flt: LogFilter | None = None) -> Iterator[Record]:
        """Records in seq order, filtered."""

    def record_at(self, seq: int) -> Record | None:
        """The record with sequence number `seq` (backends answer from the key)."""
        return next((r for r in self.records() if r.seq == seq), None)

    def latest(self, flt: LogFilter) -> Record | None:
        """The last record matching `flt` (backends answer from an index)."""
        found = None
        for found in self.records(flt):  # noqa: B007 - the last one is wanted
            pass
        return found

    @abstractmethod
    def acquire_lease(self, key: str, holder: str, until: datetime,
                      now: datetime | None = None, *, owner: LeaseOwner | None = None,
                      replacing: Lease | None = None) -> bool:
        """Take the lease `key` unless someone holds it at `now` (default: the clock). A lease
        held until an occurrence's end makes the occurrence run once. True if taken. A
        running lease (its run has not finished) is held whatever its end says.

        `replacing`: take over that lease (its holder is gone), only if it is still exactly
        that lease (same holder, same last heartbeat): of two runs taking over at once, one
        wins."""

    @abstractmethod
    def release_lease(self, key: str, holder: str) -> None:
        """Give back `key` if `holder` holds it (a run that failed before finishing)."""

    @abstractmethod
    def lease(self, key: str) -> Lease | None:
        """The lease `key`, if any."""

    def lease_holder(self, key: str) -> str | None:
        """Who holds `key`, if anyone."""
        held = self.lease(key)
        return held.holder if held else None

    @abstractmethod
    def heartbeat(self, key: str, holder: str) -> bool:
        """`holder` is alive: note the time on its lease. False if it no longer holds it."""

    @abstractmethod
    def finish_lease(self, key: str, holder: str) -> None:
        """`holder` finished its run: the lease stays (until its end) but is no longer
        running, so nobody takes it over."""

    @abstractmethod
    def first_seen(self, group: str, host: str, pending: Iterable[tuple[str, str]],
                   seen: date) -> dict[tuple[str, str], date]:
        """Note that `host` of `group` has each (package, version) of `pending` pending on
        `seen` (kept per group, host, package and version; a date already kept stays), and
        return for each the first date any host of the group had it pending: a patch's age
        where its source gives no release date (SPEC: "first seen pending in that group")."""

    @abstractmethod
    def import_records(self, records: list[Record]) -> None:
        """Store records sealed elsewhere exactly as they are (a migration), in one
        transaction; each must follow the last one stored (seq and prevHash), else
        StateError and nothing is stored."""

    @abstractmethod
    def first_seen_rows(self) -> list[tuple[str, str, str, str, str]]:
        """Every kept (group, host, package, version, first seen date)."""

    @abstractmethod
    def import_first_seen(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        """Keep these first-seen rows (a date already kept stays)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def optimize(self) -> None:
        """After a bulk load (migrate): refresh the query planner's statistics, so that the
        first reports do not run on a plan made for an empty table."""

    #: "sqlite" or "postgresql": the SQL dialect of `select` (orchestrator/compliance/sql.py)
    dialect: str = ""

    @abstractmethod
    def select(self, sql: str, args: tuple = ()) -> list[tuple]:
        """A read-only query in the store's dialect (reports: aggregates computed in the
        database). Errors are one-line StateErrors."""

    def verify(self, expect: Anchor | None = None, upto: int | None = None) -> VerifyResult:
        """The chain from the first record (through record `upto` if given)."""
        return verify_chain(self.records(LogFilter(upto=upto)), expect)
