"""`log migrate --to URL`: copy a change log into another store, hashes verified on both
sides.

The source's chain is verified first (a broken log is not copied). Records are copied as
they are (seq, time, hashes: nothing is sealed again) in batches, each batch one
transaction that checks it follows the last record copied, into a target that must be
empty. Then the target's chain is verified, ending at the source's anchor, and the
first-seen dates of pending patches follow. Leases are not copied: they belong to runs
of the old store.

Stop the orchestrator's runs (schedulers) while migrating: records appended to the source
after its check are not copied, and are counted in the result. A copy that fails part way
leaves the records copied so far in the target (a valid, shorter chain): empty the target
(drop and create its database) and migrate again.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.changelog.record import Anchor
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.errors import StateError
from orchestrator.redact import redact

BATCH = 5000


@dataclass(frozen=True)
class Migrated:
    records: int
    first_seen: int
    anchor: str
    left_behind: int  # records appended to the source during the copy (not copied)


def migrate(source: ChangeLogStore, target: ChangeLogStore) -> Migrated:
    checked = source.verify()
    if not checked.ok or checked.last_seq is None or checked.last_hash is None:
        raise StateError(f"{redact(source.url)}: the change log to migrate is not intact "
                         f"({checked.reason}); run `orchestrator log verify` first")
    if target.latest(LogFilter()) is not None:
        raise StateError(f"{redact(target.url)}: already holds records; migrate into an "
                         "empty store")
    batch = []
    copied = 0
    for rec in source.records():
        if rec.seq > checked.last_seq:
            break  # appended after the check: not verified, not copied
        batch.append(rec)
        if len(batch) == BATCH:
            target.import_records(batch)
            copied += len(batch)
            batch = []
    target.import_records(batch)
    copied += len(batch)
    anchor = Anchor(checked.last_seq, checked.last_hash)
    result = target.verify(anchor)
    if not result.ok or result.checked != checked.checked:
        raise StateError(f"{redact(target.url)}: the copied log does not verify "
                         f"({result.reason or 'record count differs'})")
    rows = source.first_seen_rows()
    target.import_first_seen(rows)
    target.optimize()  # else the first reports plan for an empty table (PostgreSQL: 5x slower)
    last = source.latest(LogFilter())
    late = (last.seq - checked.last_seq) if last is not None else 0
    return Migrated(copied, len(rows), str(anchor), max(late, 0))
