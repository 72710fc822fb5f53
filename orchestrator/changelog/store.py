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

    @abstractmethod
    def acquire_lease(self, key: str, holder: str, until: datetime,
                      now: datetime | None = None) -> bool:
        """Take the lease `key` unless someone holds it at `now` (default: the clock). A lease
        held until an occurrence's end makes the occurrence run once. True if taken."""

    @abstractmethod
    def release_lease(self, key: str, holder: str) -> None:
        """Give back `key` if `holder` holds it (a run that failed before finishing)."""

    @abstractmethod
    def lease_holder(self, key: str) -> str | None:
        """Who holds `key`, if anyone."""

    @abstractmethod
    def first_seen(self, group: str, host: str, pending: Iterable[tuple[str, str]],
                   seen: date) -> dict[tuple[str, str], date]:
        """Note that `host` of `group` has each (package, version) of `pending` pending on
        `seen` (kept per group, host, package and version; a date already kept stays), and
        return for each the first date any host of the group had it pending: a patch's age
        where its source gives no release date (SPEC: "first seen pending in that group")."""

    @abstractmethod
    def close(self) -> None: ...

    def verify(self, expect: Anchor | None = None) -> VerifyResult:
        return verify_chain(self.records(), expect)
