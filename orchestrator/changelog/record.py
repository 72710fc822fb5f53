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


def sealed_right(rec: Record, before: Record | None) -> bool:
    """`rec` carries its own hash and follows `before` (the record at seq - 1; None for the
    first): the two links of the chain around one record, without walking it all."""
    prev = before.hash if before is not None else GENESIS
    if (before is None) != (rec.seq == 1):
        return False
    return rec.prevHash == prev and record_hash(rec.prevHash, rec.to_json()) == rec.hash


def seal(entry: Entry, seq: int, prev_hash: str, time: str | None = None) -> Record:
    """Make the record that follows `prev_hash` at position `seq`. The details are turned
    into their canonical JSON text once: the hash covers it, the stores write it
    (`details_text`), and the record carries it parsed back, exactly as it is read later."""
    # round-trip first (keys become text, tuples lists, other values text), as read back
    details = json.loads(json.dumps(entry.details, default=str, allow_nan=False))
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    row = (seq, time or now_iso(), entry.run, entry.occurrence, entry.policy_revision,
           entry.actor, entry.host, entry.group, entry.action, entry.status, text)
    digest = hashlib.sha256((prev_hash + canonical_from_row(row)).encode("utf-8")).hexdigest()
    rec = Record(seq=row[0], time=row[1], run=row[2], occurrence=row[3], policyRevision=row[4],
                 actor=row[5], host=row[6], group=row[7], action=row[8], status=row[9],
                 details=details, prevHash=prev_hash, hash=digest)
    object.__setattr__(rec, "details_text", text)  # not a field: not hashed, not shown
    return rec


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    last_seq: int | None = None  # the anchor: last record's seq and hash, when intact
    last_hash: str | None = None

    @property
    def anchor(self) -> str | None:
        return f"{self.last_seq}:{self.last_hash}" if self.ok and self.last_seq else None


@dataclass(frozen=True)
class Anchor:
    """A record's seq and hash kept elsewhere (`log verify --expect SEQ:HASH`)."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """SEQ:HASH with SEQ >= 1 and HASH 64 hex digits; ValueError otherwise."""
        seq, sep, digest = text.strip().partition(":")
        digest = digest.lower()
        if (not sep or not seq.isascii() or not seq.isdigit() or len(seq) > 18
                or int(seq) < 1 or len(digest) != 64
                or any(c not in "0123456789abcdef" for c in digest)):
            raise ValueError("expected SEQ:HASH, e.g. 42:<64 hex digits> as printed by "
                             "'log verify'")
        return cls(int(seq), digest)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


_quote = json.encoder.encode_basestring  # the C encoder json.dumps uses (ensure_ascii=False)


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return _quote(v)
    return json.dumps(v)


def canonical_from_row(row: tuple) -> str:
    """The canonical JSON of a stored row (the stores' column order, details as the compact
    sorted JSON text the stores write): what canonical_json gives for the record, built
    from the row's text without parsing it (`log verify` of a million records)."""
    seq, time, run, occurrence, revision, actor, host, group, action, status, details = row[:11]
    return ('{"action":' + _value(action) + ',"actor":' + _value(actor) + ',"details":'
            + details + ',"group":' + _value(group) + ',"host":' + _value(host)
            + ',"occurrence":' + _value(occurrence) + ',"policyRevision":' + _value(revision)
            + ',"run":' + _value(run) + ',"seq":' + str(seq) + ',"status":' + _value(status)
            + ',"time":' + _value(time) + "}")


def verify_rows(rows: Any, to_record: Any, expect: Anchor | None = None) -> VerifyResult:
    """verify_chain over stored rows, streaming: each row's hash is checked from its text
    (canonical_from_row); a row whose text is not in that form (details written by an
    older version, with spaces) is parsed (`to_record`) and checked as verify_chain does.
    As before, details text that parses to the same value (other spacing or key order)
    is accepted: the hash covers the value, not its spelling."""
    sha = hashlib.sha256

    def records() -> Any:
        for row in rows:
            try:
                text = canonical_from_row(row)
                if sha((row[11] + text).encode("utf-8")).hexdigest() == row[12]:
                    yield _Hashed(row[0], row[11], row[12])
                    continue
            except (TypeError, ValueError, UnicodeError):
                pass  # not text where text belongs: judged the slow way, and fails there
            if not _stored_form(row[10]):
                yield _Altered(row[0], row[11], row[12])
                continue
            yield to_record(row)

    return verify_chain(records(), expect)


def _reject_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key twice")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stored_form(text: Any) -> bool:
    """Details text as this program writes it, and so read the same way by every JSON
    reader: a string that is exactly the compact canonical JSON of its value (or the spaced
    form the first versions wrote), with no key twice (Python keeps the last, SQLite's
    json_extract the first), no key spelled with escapes (SQLite does not match
    "rel\\u0065ased" to released, Python does), no NaN or Infinity. Anything else counts as
    altered: a record could verify while a report read another value."""
    if not isinstance(text, str):
        return False
    try:
        value = json.loads(text, object_pairs_hook=_reject_repeats,
                           parse_constant=_reject_constant)
        return text in (json.dumps(value, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False),
                        json.dumps(value, sort_keys=True, ensure_ascii=False))
    except (ValueError, RecursionError):
        return False


@dataclass(frozen=True)
class _Altered:
    """A row whose details are not in the form this program writes: counted as altered."""

    seq: int
    prevHash: str  # noqa: N815
    hash: str


@dataclass(frozen=True)
class _Hashed:
    """A row whose hash was already checked from its text."""

    seq: int
    prevHash: str  # noqa: N815
    hash: str


def verify_chain(records: Any, expect: Anchor | None = None) -> VerifyResult:
    """Walk records in stored order; the first one whose chain does not hold is reported.

    An empty log is not intact: nothing proves that records were never there. With `expect`,
    the record at its seq must carry its hash, which shows a rebuilt chain or removed last
    records since the anchor was taken."""
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
        try:
            good = isinstance(rec, _Hashed) or (not isinstance(rec, _Altered) and record_hash(
                prev, {k: getattr(rec, k) for k in HASHED_FIELDS}) == rec.hash)
        except (TypeError, ValueError):  # a value no record can hold
            good = False
        if not good:
            return VerifyResult(False, count, rec.seq,
                                "hash does not match its contents: the record was altered")
        if expect is not None and rec.seq == expect.seq and rec.hash != expect.hash:
            return VerifyResult(False, count, rec.seq,
                                f"hash {rec.hash} is not the expected {expect.hash}: the "
                                "chain was rebuilt or rewritten up to this record")
        prev = rec.hash
        expected_seq += 1
    if count == 0:
        return VerifyResult(False, 0, None, "the change log is empty: nothing shows that "
                            "records were never written")
    if expect is not None and count < expect.seq:
        return VerifyResult(False, count, None,
                            f"the log ends at record {count} but the expected anchor is "
                            f"record {expect.seq}: the last records were removed")
    return VerifyResult(True, count, last_seq=expected_seq - 1, last_hash=prev)
