"""Records and leases from table rows: the column order both stores use (sqlite.py,
postgres.py)."""

from __future__ import annotations

import json

from orchestrator.changelog.record import Record
from orchestrator.changelog.store import Lease, LeaseOwner, LogFilter

RECORD_COLUMNS = ("seq, time, run, occurrence, policy_revision, actor, host, grp, action, "
                  "status, details, prev_hash, hash")
LEASE_FIELDS = "key, holder, acquired, until, heartbeat, node, pid, started, state"


def lease_from_row(row: tuple) -> Lease:
    owner = LeaseOwner(row[5], int(row[6]), row[7] or "") if row[5] and row[6] else None
    return Lease(key=row[0], holder=row[1], acquired=row[2], until=row[3], heartbeat=row[4],
                 owner=owner, state=row[8] or "done")


def record_from_row(row: tuple) -> Record:
    try:
        details = json.loads(row[10])
    except (TypeError, ValueError):
        details = {"_unreadable": str(row[10])}
    return Record(seq=row[0], time=row[1], run=row[2], occurrence=row[3], policyRevision=row[4],
                  actor=row[5], host=row[6], group=row[7], action=row[8], status=row[9],
                  details=details, prevHash=row[11], hash=row[12])


def record_row(rec: Record) -> tuple:
    """A record as a row, `details` as the exact JSON text its hash covers (compact, keys
    sorted: `log verify` checks it without parsing, record.canonical_from_row)."""
    text = getattr(rec, "details_text", None)  # set by seal(): the text hashed
    if text is None:
        text = json.dumps(rec.details, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
    return (rec.seq, rec.time, rec.run, rec.occurrence, rec.policyRevision, rec.actor, rec.host,
            rec.group, rec.action, rec.status, text, rec.prevHash, rec.hash)


def filter_sql(flt: LogFilter | None, mark: str) -> tuple[list[str], list[object]]:
    """A log filter as WHERE conditions and their arguments (`mark`: the driver's
    placeholder, ? or %s): `log` filters run in the database."""
    flt = flt or LogFilter()
    where: list[str] = []
    args: list[object] = []
    for column, value in (("host", flt.host), ("run", flt.run), ("action", flt.action),
                          ("occurrence", flt.occurrence), ("status", flt.status),
                          ("grp", flt.group)):
        if value is not None:
            where.append(f"{column} = {mark}")
            args.append(value)
    if flt.since is not None:
        where.append(f"time >= {mark}")
        args.append(flt.since)
    if flt.until is not None:
        where.append(f"time < {mark}")
        args.append(flt.until)
    if flt.upto is not None:
        where.append(f"seq <= {mark}")
        args.append(flt.upto)
    return where, args
