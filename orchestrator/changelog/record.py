"""A change-log record and its hash: sha256(prevHash + canonical JSON of the record)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# The fields a record's hash covers, in the JSON names of SPEC section 3 (`log --format json`).
HASHED_FIELDS = ("seq", "time", "run", "occurrence", "policyRevision", "actor", "host",
                 "group", "action", "status", "details")


@dataclass(frozen=True)
class Entry:
    """What a caller appends; the store adds seq, time, prevHash and hash."""

    run: str
    action: str
    status: str
    actor: str
    policy_revision: str
    host: str | None = None
    group: str | None = None
    occurrence: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    seq: int
    time: str  # ISO 8601 UTC with microseconds
    run: str
    occurrence: str | None
    policyRevision: str  # noqa: N815 - the JSON name
    actor: str
    host: str | None
    group: str | None
    action: str
    status: str
    details: dict[str, Any]
    prevHash: str  # noqa: N815
    hash: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_json(fields: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same bytes on every machine."""
    return json.dumps({k: fields[k] for k in HASHED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def seal(entry: Entry, seq: int, prev_hash: str, time: str | None = None) -> Record:
    """Make the record that follows `prev_hash` at position `seq`."""
    fields: dict[str, Any] = {
        "seq": seq,
        "time": time or now_iso(),
        "run": entry.run,
        "occurrence": entry.occurrence,
        "policyRevision": entry.policy_revision,
        "actor": entry.actor,
        "host": entry.host,
        "group": entry.group,
        "action": entry.action,
        "status": entry.status,
        # round-trip so that the hash covers exactly what is stored and read back
        "details": json.loads(json.dumps(entry.details, default=str, allow_nan=False)),
    }
    return Record(**fields, prevHash=prev_hash, hash=record_hash(prev_hash, fields))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None


def verify_chain(records: Any) -> VerifyResult:
    """Walk records in stored order; the first one whose chain does not hold is reported."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for rec in records:
        count += 1
        if rec.seq != expected_seq:
            return VerifyResult(False, count, rec.seq,
                                f"expected record {expected_seq} but found {rec.seq}: "
                                "records were removed or reordered")
        if rec.prevHash != prev:
            return VerifyResult(False, count, rec.seq,
                                "prevHash does not match the previous record's hash: "
                                "a record before it was altered, removed or reordered")
        fields = {k: getattr(rec, k) for k in HASHED_FIELDS}
        if record_hash(prev, fields) != rec.hash:
            return VerifyResult(False, count, rec.seq,
                                "hash does not match its contents: the record was altered")
        prev = rec.hash
        expected_seq += 1
    return VerifyResult(True, count)
