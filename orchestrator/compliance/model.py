"""The compliance report as data: what reporting/ renders (html, markdown, json) and
nothing else decides. Every figure carries its Trace: the records it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEQ_LIMIT = 1000  # sequence numbers listed per figure; beyond, the log query finds them all
TRACE_KEYS = {"query", "seqs", "count", "note", "first", "last", "exact"}


@dataclass(frozen=True)
class Trace:
    """The records a figure came from: `count` records, listed in `seqs` (up to SEQ_LIMIT)
    when the figure picks them one by one, else every record the `query` (an
    `orchestrator log` command line) returns, `first` to `last`; when not `exact`, the query
    returns more records and `count` of them, as `note` says, made the figure."""

    query: str
    seqs: tuple[int, ...] = ()
    count: int = 0
    note: str = ""
    first: int | None = None
    last: int | None = None
    exact: bool = True

    @classmethod
    def of(cls, query: str, seqs: list[int], note: str = "") -> Trace:
        """A figure made of exactly these records."""
        ordered = sorted(set(seqs))
        return cls(query, tuple(ordered[:SEQ_LIMIT]), len(ordered), note,
                   ordered[0] if ordered else None, ordered[-1] if ordered else None)

    @classmethod
    def span(cls, query: str, count: int, first: int, last: int, note: str,
             exact: bool = True) -> Trace:
        """A figure aggregating the `count` records `query` returns (`exact`), or `count`
        of the records it returns, picked as `note` says."""
        return cls(query, (), int(count), note, first, last, exact)

    def describe(self) -> str:
        """The records, for a person: listed, or counted by their query."""
        if self.seqs:
            return f"records {self.ranges()}"
        if not self.count:
            return "no records"
        if self.exact:
            return f"the {self.count} records of the query, {self.first} to {self.last}"
        return f"{self.count} of the query's records, {self.first} to {self.last}"

    def ranges(self) -> str:
        """`12-40, 57, 90-91`: the listed sequence numbers, short."""
        out: list[str] = []
        seqs = list(self.seqs)
        i = 0
        while i < len(seqs):
            j = i
            while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
                j += 1
            out.append(str(seqs[i]) if i == j else f"{seqs[i]}-{seqs[j]}")
            i = j + 1
        more = self.count - len(self.seqs)
        return ", ".join(out) + (f" and {more} more" if more > 0 else "")


@dataclass
class Section:
    """The figures of one asset group, or of all of them (`group` None)."""

    group: str | None
    patch: dict[str, Any] = field(default_factory=dict)
    patch_trend: list[dict[str, Any]] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    drift_trend: list[dict[str, Any]] = field(default_factory=list)
    recurring: list[dict[str, Any]] = field(default_factory=list)
    time_to_install: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    firmware: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    period: dict[str, Any]  # from, until, group, generated, store, periodDays
    chain: dict[str, Any]  # log verify over 1..the range's last record
    revisions: list[dict[str, Any]]
    applies: list[dict[str, Any]]
    overall: Section
    groups: list[Section]
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return bool(self.chain.get("intact"))

    def headline(self) -> str:
        """The first line of every format: whether the change log behind it holds."""
        c = self.chain
        if c.get("intact"):
            return (f"Change log intact through record {c.get('lastSeq')} "
                    f"(anchor {c.get('anchor')}).")
        where = f" at record {c['brokenAt']}" if c.get("brokenAt") is not None else ""
        return (f"WARNING: the change log is BROKEN{where}: {c.get('reason')}. The figures "
                f"below come from records that cannot be trusted.")

    def to_json(self) -> dict[str, Any]:
        def section(s: Section) -> dict[str, Any]:
            out = _camel(asdict(s))
            return out

        return _jsonable({
            "headline": self.headline(),
            "period": self.period,
            "chain": self.chain,
            "policyRevisions": self.revisions,
            "policyApplies": self.applies,
            "overall": section(self.overall),
            "groups": [section(g) for g in self.groups],
            "notes": self.notes,
        })


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    names = {"patch_trend": "patchTrend", "drift_trend": "driftTrend",
             "time_to_install": "timeToInstall", "overdue": "overduePatches",
             "patch": "patchCompliance"}
    return {names.get(k, k): v for k, v in d.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Trace):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        if set(value) == TRACE_KEYS:  # a Trace after asdict
            return {**value, "seqs": list(value["seqs"])}
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
