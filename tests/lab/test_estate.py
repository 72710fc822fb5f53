"""The simulated estate (orchestrator/lab/estate.py): its log verifies, every record has the
shape the orchestrator's own code writes for its action, times follow the sequence, the same
seed gives the same log (on SQLite and on PostgreSQL), and what the reports read is there."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.changelog.record import Entry, Record
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.errors import LabError
from orchestrator.lab.estate import EstateSummary, generate_estate, write_estate

PKG = Path(__file__).resolve().parents[2] / "orchestrator"
START = date(2025, 3, 1)  # 30 days from here hold a 1st of the month (firmware scan)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> tuple[EstateSummary, list[Record]]:
    folder = tmp_path_factory.mktemp("estate")
    summary = write_estate(folder / "state.db", hosts=20, groups=5, start=START, days=30,
                           seed=7, batch=300)
    store = SqliteStore(folder / "state.db")
    try:
        records = list(store.records())
        assert store.verify().anchor == summary.anchor
        assert store.first_seen_rows()  # the scans' first-seen dates are kept too
    finally:
        store.close()
    return summary, records


def test_the_log_verifies_and_the_summary_says_what_was_written(estate) -> None:
    summary, records = estate
    assert summary.records == len(records) == sum(summary.by_action.values()) > 1000
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert summary.anchor == f"{records[-1].seq}:{records[-1].hash}"
    assert (summary.first_time, summary.last_time) == (records[0].time, records[-1].time)
    assert summary.hosts == 20 and summary.groups == ("web", "db", "app", "batch", "canary")
    assert summary.until == START + timedelta(days=30)


def test_times_follow_the_sequence_within_the_span(estate) -> None:
    summary, records = estate
    times = [r.time for r in records]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t) for t in times)
    assert times == sorted(times)
    assert times[0] >= START.isoformat()
    # window runs that begin on the last evening may end after midnight, never a day later
    assert times[-1] < (summary.until + timedelta(days=1)).isoformat()
    # each run's records are in its own order too: a window run begins with its start (an
    # override's reason first) and ends with its end
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for r in records:
        first.setdefault(r.run, r.action)
        last[r.run] = r.action
    ended = {r.run for r in records if r.action == "run.end"}
    assert ended and {first[run] for run in ended} <= {"run.start", "override"}
    assert {last[run] for run in ended} == {"run.end"}


def test_what_the_reports_read_is_there(estate) -> None:
    summary, records = estate
    by = Counter((r.action, r.status) for r in records)
    statuses = defaultdict(set)
    for action, status in by:
        statuses[action].add(status)
    assert {"compliant", "drift", "unreachable"} <= statuses["audit"]
    assert {"compliant", "overdue"} <= statuses["patch.scan"]
    assert {"installed", "failed"} <= statuses["patch.install"]
    assert {"done", "failed"} <= statuses["patch.apply"]
    assert {"frozen", "misfire", "already-done", "closed", "budget-exhausted"} <= statuses["skip"]
    assert {"done", "failed", "closed"} <= statuses["run.end"]
    assert statuses["override"] == {"ignore-window"} and by[("override", "ignore-window")] >= 2
    assert {"applied", "invalid"} <= statuses["policy.apply"]
    assert {"compliant", "outdated"} <= statuses["firmware.scan"]
    assert "updated" in statuses["firmware.update"]
    for action in ("reboot", "health", "patch.batch", "firmware.task", "firmware.reset"):
        assert statuses[action], action
    # every window's records carry its occurrence as run-window names it
    occurrences = {r.occurrence for r in records if r.occurrence}
    assert occurrences and all(re.fullmatch(
        r"(web|db|app|batch|canary)-weekly@2025-\d\d-\d\dT\d\d:00:00\+0[12]:00", o)
        for o in occurrences)
    # revisions change over the span, each a commit id; each applied one is a record's
    revisions = [r.policyRevision for r in records]
    assert all(re.fullmatch(r"[0-9a-f]{40}", v) for v in revisions)
    applied = [r.details["commit"] for r in records
               if r.action == "policy.apply" and r.status == "applied"]
    assert list(summary.revisions) == applied and len(set(revisions)) >= len(applied) >= 5
    # overrides give their reason; skips say why
    assert all(r.details["reason"] for r in records if r.action in ("override", "skip")
               and "reason" in r.details)
    # patch compliance moves: the scans do not all find the same share overdue
    shares = {round(r.details["overdue"] / r.details["hosts"], 2) for r in records
              if r.action == "patch.scan.end" and r.details["hosts"]}
    assert len(shares) > 2 and 0 in shares
    # a drift that recurs: the same host and check in several audits
    recurring = Counter((r.host, f["id"]) for r in records if r.action == "audit"
                        for f in r.details["findings"] if f["status"] == "drift")
    assert max(recurring.values()) >= 10
    # installs say what they installed, from when
    installs = [r for r in records if r.action == "patch.install"]
    assert {r.details["classification"] for r in installs} >= {"security", "other"}
    assert any(r.details["released"] is None for r in installs)  # apt gives no date
    assert all(r.details["firstSeen"] <= r.time[:10] for r in installs)


# ---------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Site:
    """One place in the orchestrator's code that writes a record."""

    where: str
    status: str | None  # when the call gives it as a constant
    keys: frozenset[str]  # the detail keys it names
    more: bool  # it passes more details (**dict) than it names
    host: bool  # it passes a host
    group: bool  # it passes a group


def _defaults(fn: ast.FunctionDef) -> dict[str, str]:
    positional = fn.args.posonlyargs + fn.args.args
    args = positional + fn.args.kwonlyargs
    values = [None] * (len(positional) - len(fn.args.defaults)) + list(fn.args.defaults) \
        + list(fn.args.kw_defaults)
    return {a.arg: v.value for a, v in zip(args, values, strict=True)
            if isinstance(v, ast.Constant) and isinstance(v.value, str)}


def code_sites() -> dict[str, list[Site]]:
    """Every `ctx.record(ACTION, STATUS, ...)` / `ctx.entry(...)` of the orchestrator (the
    lab excepted), by action; an action given as a parameter counts with its default."""
    sites: dict[str, list[Site]] = defaultdict(list)
    for path in sorted(PKG.rglob("*.py")):
        if path.relative_to(PKG).parts[0] == "lab":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            defaults = _defaults(fn)
            for call in ast.walk(fn):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in ("record", "entry") and call.args):
                    continue
                first = call.args[0]
                action = first.value if isinstance(first, ast.Constant) else \
                    defaults.get(first.id) if isinstance(first, ast.Name) else None
                if not isinstance(action, str):
                    continue
                second = call.args[1] if len(call.args) > 1 else None
                names = {k.arg for k in call.keywords if k.arg is not None}
                sites[action].append(Site(
                    f"{path.relative_to(PKG.parent)}:{call.lineno}",
                    second.value if isinstance(second, ast.Constant) else None,
                    frozenset(names - {"host", "group"}),
                    any(k.arg is None for k in call.keywords),
                    "host" in names or len(call.args) > 2, "group" in names or len(call.args) > 3))
    return sites


def builder_keys() -> dict[str, set[str]]:
    """The details that the code passes on as a dict (**details), from the code that builds
    them; and the keys of the lists inside the records the reports read."""
    from orchestrator.audit.result import AuditRun, CheckResult
    from orchestrator.audit.waivers import waiver_json
    from orchestrator.facts.updates import PendingUpdate
    from orchestrator.firmware.model import ComponentState, HostFirmware
    from orchestrator.firmware.scan import FirmwareScan
    from orchestrator.patching.model import Decision
    from orchestrator.patching.scan import HostScan, PatchFinding, ScanRun

    update = PendingUpdate("openssl", "3.0.1", "3.0.2", "security", "high", START, "dnf")
    finding = PatchFinding(update, START, Decision("approved", "rule 1", 1, START, START))
    scan = HostScan("h", "g", "linux", "p", "compliant", None, "dnf", [finding])
    comp = ComponentState("BIOS", "2.0", "http://x/bios.bin", "outdated", "BIOS", "BIOS", "1.0")
    fw = HostFirmware("h", "g", "p", "redfish", "outdated", None, "On", [comp])
    waiver = SimpleNamespace(name="w", expires=START, justification="j")
    return {
        "patch.scan": set(scan.record_details()),
        "patch.scan/patches": set(scan.record_details()["patches"][0]),
        "patch.scan.end": set(ScanRun("r").summary()),
        "audit.end": set(AuditRun("r").summary()),
        "audit/findings": set(CheckResult("c", "drift", 1, 2).to_json()),
        "audit/findings/waiver": set(waiver_json(waiver, True)),  # type: ignore[arg-type]
        "firmware.scan": set(fw.record_details()),
        "firmware.scan/components": set(comp.to_json()),
        "firmware.scan.end": set(FirmwareScan("r").summary()),
        # the patch playbooks' health result (playbook contract), passed on as it is
        "health": {"command_rc", "services"},
        # gitops/apply.py: commit_info's fields, then what the apply adds
        "policy.apply": {"commit", "author", "authored", "committer", "committed", "message",
                         "ref", "path", "previous", "plan", "schedule"},
        # what each install says of the package beside what install_entries names (issue 12)
        "patch.install": {"classification", "released", "firstSeen"},
    }


def _fits(site: Site, rec: Record) -> bool:
    keys = set(rec.details)
    return ((site.status is None or site.status == rec.status)
            and (site.host or rec.host is None) and (site.group or rec.group is None)
            and (keys == site.keys if not site.more else site.keys <= keys))


def test_the_check_finds_the_code_that_writes_records() -> None:
    """Guard against a vacuous check: known writers are found with their keys."""
    sites = code_sites()
    start = sites["run.start"]
    assert [s.keys for s in start] == [frozenset({"window", "groups", "trigger", "kind",
                                                  "override", "takeover"})]
    assert {s.status for s in sites["skip"]} >= {"frozen", "already-done", "closed", None}
    assert any(s.keys == {"error", "checks", "findings", "passed"} for s in sites["audit"])
    assert all(s.more for s in sites["patch.scan"])


def test_every_record_has_the_shape_the_code_writes(estate) -> None:
    _, records = estate
    sites = code_sites()
    built = builder_keys()
    seen: dict[tuple[str, str, frozenset[str]], Record] = {}
    for r in records:
        seen.setdefault((r.action, r.status, frozenset(r.details)), r)
    for (action, status, keys), r in sorted(seen.items(), key=lambda kv: kv[0][:2]):
        fits = [s for s in sites.get(action, []) if _fits(s, r)]
        assert fits, f"{action} {status} {sorted(keys)}: no writer in the code has this shape"
        if all(s.more for s in fits):  # what the code passes as a dict: from its builder
            extra = keys - min((s.keys for s in fits), key=len)
            want = built[action] - min((s.keys for s in fits), key=len)
            assert extra == want, f"{action} {status}: {sorted(extra)} != {sorted(want)}"
    for r in records:
        if r.action == "patch.scan":
            assert all(set(p) == built["patch.scan/patches"] for p in r.details["patches"])
        elif r.action == "firmware.scan":
            assert all(set(c) == built["firmware.scan/components"]
                       for c in r.details["components"])
        elif r.action == "audit":
            for f in r.details["findings"]:
                assert set(f) == built["audit/findings"]
                assert f["waiver"] is None or set(f["waiver"]) <= built["audit/findings/waiver"]


# ---------------------------------------------------------------------- determinism
def _small(store, seed: int) -> EstateSummary:
    return generate_estate(store, hosts=8, groups=5, start=date(2025, 12, 10), days=12,
                           seed=seed, batch=97)


def test_the_same_seed_gives_the_same_log(tmp_path: Path) -> None:
    stores = [SqliteStore(tmp_path / f"{n}.db") for n in ("a", "b", "c")]
    try:
        a, b, c = _small(stores[0], 11), _small(stores[1], 11), _small(stores[2], 12)
        assert a.anchor == b.anchor and a.records == b.records
        assert [r.hash for r in stores[0].records()] == [r.hash for r in stores[1].records()]
        assert c.anchor != a.anchor
        assert stores[0].first_seen_rows() == stores[1].first_seen_rows()
    finally:
        for s in stores:
            s.close()


def test_postgresql_holds_the_same_chain(tmp_path: Path, pg_url: str) -> None:
    from orchestrator.changelog.postgres import PostgresStore

    lite, pg = SqliteStore(tmp_path / "a.db"), PostgresStore(pg_url)
    try:
        on_sqlite, on_pg = _small(lite, 5), _small(pg, 5)
        assert on_pg.anchor == on_sqlite.anchor
        checked = pg.verify()
        assert checked.ok and checked.anchor == on_pg.anchor
        assert pg.first_seen_rows() == lite.first_seen_rows()
    finally:
        lite.close()
        pg.close()


def test_write_estate_takes_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'url.db'}"
    done = write_estate(url, hosts=5, groups=5, start=START, days=2, seed=1)
    store = SqliteStore(tmp_path / "url.db")
    try:
        assert store.verify().anchor == done.anchor
    finally:
        store.close()


def test_a_store_with_records_is_refused_untouched(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "busy.db")
    try:
        store.append(Entry("r-1", "audit.start", "started", "t", "0" * 40, details={"hosts": 1}))
        with pytest.raises(LabError, match="already holds records"):
            _small(store, 1)
        assert [r.seq for r in store.records()] == [1]
    finally:
        store.close()


@pytest.mark.parametrize(("hosts", "groups", "days"), [(3, 5, 10), (10, 0, 10), (10, 5, 0)])
def test_impossible_estates_are_refused(tmp_path: Path, hosts: int, groups: int,
                                        days: int) -> None:
    store = SqliteStore(tmp_path / "x.db")
    try:
        with pytest.raises(LabError, match="estate"):
            generate_estate(store, hosts=hosts, groups=groups, start=START, days=days)
        assert store.verify().checked == 0
    finally:
        store.close()
