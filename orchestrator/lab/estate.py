"""A simulated estate's change log (by default a year of 500 hosts), for the report benchmark
and the report tests: `generate_estate(store, ...)` and `write_estate(path or URL, ...)`.

The records have the shapes the orchestrator writes (tests/lab/test_estate.py checks them
against the code that writes them). Per simulated day: a drift audit of every host. Every
Monday: a patch scan of every host. On the 1st of each month: a firmware scan of the hosts
with a BMC. Each group's weekly window: the run-window sequence (run.start; the group's audit,
patch scan and rollout with installs, reboots and health checks; its firmware scan and rollout
where the group has a firmware policy; the audit after; run.end), some occurrences skipped
(freezes, misfires, a second scheduler finding the occurrence done, a manual trigger outside
the window), a few overrides with their reasons, a failure budget spent once in a while.
`policy.apply` records change the policy revision later runs carry; they bump firmware
versions, add a freeze and extend a waiver. Hosts drift (a few for months, others for a day
or two), go unreachable, fail installs; patches are released through the year, so overdue
patches pile up between windows (and during freezes) and fall after them.

Times are the simulated ones: stores stamp the clock on `append_many`, so records are sealed
here (record.seal with the simulated time; the hash chain is real) and written with the
store's own `import_records` (which keeps seq, time and hashes) in batches, in time order.
The first-seen dates of pending patches go into the store too, as scans keep them.
Deterministic for a seed.
"""

from __future__ import annotations

import heapq
import random
import time as clock
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from orchestrator.changelog.record import GENESIS, Entry, Record, seal
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.errors import LabError
from orchestrator.lab.estate_model import (
    APPLY_MESSAGES,
    CANARY_RULES,
    CHECKS,
    DRIFTS,
    FIRMWARE,
    FIRMWARE_FAILURE,
    FORKS,
    GROUP_NAMES,
    MANAGERS,
    MISFIRE_GRACE,
    OPERATORS,
    OVERRIDE_REASONS,
    PACKAGES,
    PERSISTENT,
    PIPELINE,
    REBOOTING,
    RULES,
    SCHEDULER,
    SECOND_SCHEDULER,
    SSH_PACKAGE,
    TEMPLATES,
    TRANSIENT,
    ZONE,
    Group,
    Host,
    Pending,
    Release,
    Template,
)
from orchestrator.patching.rollout import FailureBudget, batches
from orchestrator.redact import redact


@dataclass(frozen=True)
class EstateSummary:
    """What was written: counts, the span, the chain's anchor, the revisions."""

    records: int
    hosts: int
    groups: tuple[str, ...]
    start: date
    until: date  # the day after the last simulated day
    first_time: str
    last_time: str
    anchor: str  # SEQ:HASH of the last record (`log verify --expect`)
    revisions: tuple[str, ...]  # the policy revisions applied, in order
    by_action: dict[str, int]
    seconds: float


@dataclass
class _Run:
    id: str
    actor: str
    revision: str
    occurrence: str | None = None


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Writer:
    """Records in time order: pushed as runs make them (runs overlap), sealed and stored in
    batches once no later run can write before them."""

    def __init__(self, store: ChangeLogStore, batch: int) -> None:
        self.store, self.batch = store, batch
        self.heap: list[tuple[datetime, int, Entry]] = []
        self.n = 0
        self.seq, self.prev = 1, GENESIS
        self.ready: list[Record] = []
        self.count = 0
        self.first: str | None = None
        self.last: str | None = None
        self.actions: Counter[str] = Counter()

    def push(self, at: datetime, entry: Entry) -> None:
        heapq.heappush(self.heap, (at, self.n, entry))
        self.n += 1

    def flush(self, before: datetime | None = None) -> None:
        heap = self.heap
        while heap and (before is None or heap[0][0] < before):
            at, _, entry = heapq.heappop(heap)
            rec = seal(entry, self.seq, self.prev, time=_iso(at))
            self.seq, self.prev = self.seq + 1, rec.hash
            self.ready.append(rec)
            self.actions[entry.action] += 1
            if self.first is None:
                self.first = rec.time
            self.last = rec.time
            if len(self.ready) >= self.batch:
                self._store()
        if before is None:
            self._store()

    def _store(self) -> None:
        if self.ready:
            self.store.import_records(self.ready)
            self.count += len(self.ready)
            self.ready = []


class _Estate:
    def __init__(self, store: ChangeLogStore, *, hosts: int, groups: int, start: date,
                 days: int, seed: int, batch: int) -> None:
        self.rng = random.Random(seed)
        self.start, self.days = start, days
        self.zone = _zone()
        self.out = _Writer(store, batch)
        self.revision = ""
        self.revisions: list[str] = []
        self.first_seen: dict[tuple[str, str, str], date] = {}
        self.host_seen: dict[tuple[str, str, str, str], date] = {}
        self.handles = 0
        self.catalog = self._catalog()
        self.groups = self._groups(hosts, groups)
        self.hosts = [h for g in self.groups for h in g.hosts]
        self.bmc_groups = [g for g in self.groups if g.template.firmware]
        self.fw_wanted = {g.template.firmware: {c: 2 for c in FIRMWARE}
                          for g in self.bmc_groups}
        self.waivers = self._waivers()
        self.freezes = self._freezes()
        self.applies = self._applies()
        self.incidents = self._incidents()

    # ------------------------------------------------------------------ the estate
    def _catalog(self) -> dict[tuple[str, str], tuple[list[Release], list[int]]]:
        rng = self.rng
        out = {}
        extras = [(t.manager, p) for t in TEMPLATES.values() for p in t.extra]
        for manager in MANAGERS:
            for name, base, mean in (*PACKAGES[manager],
                                     *(p for m, p in extras if m == manager)):
                rels = [Release(_version(manager, base, 0), "other", None, None, -400)]
                day = -120 + rng.randint(0, mean)
                while day < self.days:
                    rels.append(self._release(manager, base, len(rels), day))
                    day += max(3, int(rng.expovariate(1 / mean)))
                out[(manager, name)] = (rels, [r.day for r in rels])
        return out

    def _release(self, manager: str, base: str, k: int, day: int) -> Release:
        rng = self.rng
        published = self.start + timedelta(days=day)
        if manager == "apt":  # the Debian security suite, or not: no severity, no date
            cls = "security" if rng.random() < 0.6 else "other"
            return Release(_version(manager, base, k), cls, None, None, day)
        cls = rng.choices(("security", "bugfix", "enhancement", "other"), (45, 35, 15, 5))[0]
        sev = (rng.choices(("critical", "high", "medium", "low"), (15, 35, 35, 15))[0]
               if cls == "security" else None)
        return Release(_version(manager, base, k), cls, sev,
                        published - timedelta(days=rng.randint(0, 3)), day)

    def _groups(self, hosts: int, count: int) -> list[Group]:
        names = list(GROUP_NAMES[:count]) + [f"group{i + 1}" for i in range(5, count)]
        sizes = _sizes(hosts, names)
        rng = self.rng
        out = []
        for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
            t = TEMPLATES.get(name) or Template(MANAGERS[i % 3], i % 7, 22)
            pkgs = sorted([p[0] for p in PACKAGES[t.manager]] + [p[0] for p in t.extra])
            canary = name == "canary"
            g = Group(name, t, pkgs, CANARY_RULES if canary else RULES,
                       ["100%"] if canary else [2, "20%", "40%"], 1 if canary else "5%")
            width = max(3, len(str(size)))
            for n in range(1, size + 1):
                lag = rng.choice((0, 0, 0, 7, 14, 30, 60))
                installed = {}
                for p in pkgs:
                    rels, days = self.catalog[(t.manager, p)]
                    installed[p] = max(0, bisect_right(days, -lag - 1) - 1)
                fw = {c: rng.choices((2, 1, 0), (85, 12, 3))[0] for c in FIRMWARE}
                g.hosts.append(Host(f"{name}-{n:0{width}d}", g, installed, bool(t.firmware),
                                     fw, round(rng.uniform(18, 70), 1),
                                     round(rng.uniform(20, 75), 1), round(rng.uniform(8, 60), 1)))
            out.append(g)
        self._troubles(out)
        return out

    def _troubles(self, groups: list[Group]) -> None:
        """Drift that recurs for months on a few hosts, a stuck package, spares, flaky BMCs."""
        rng, days = self.rng, self.days
        hosts = [h for g in groups for h in g.hosts]
        for h in rng.sample(hosts, max(1, len(hosts) * 3 // 100)):
            first = rng.randint(0, max(0, days // 2))
            h.drifts.append((rng.choice(PERSISTENT), first,
                             first + rng.randint(max(7, days // 6), max(14, days // 2))))
        db = next((g for g in groups if g.name == "db"), None)
        if db is not None:  # replication needs forwarding: waived, for a while
            for h in db.hosts[:2]:
                h.drifts.append(("ip-forward", 0, days))
        batch = next((g for g in groups if g.name == "batch"), None)
        if batch is not None:
            for h in batch.hosts[:2]:
                h.drifts.append(("disk-var", 0, days))
            if len(batch.hosts) > 2:
                batch.hosts[-1].powered_off = True
        for g in groups:
            if g.name == "canary" or len(g.hosts) < 2:
                continue
            h = g.hosts[rng.randrange(len(g.hosts))]
            first = rng.randint(0, max(0, days // 2))
            h.stuck = (rng.choice([p for p in g.packages if p not in REBOOTING]), first,
                       first + max(14, days // 8))
            if g.template.firmware:
                bmc = g.hosts[rng.randrange(len(g.hosts))]
                first = rng.randint(0, max(0, days - 1))
                bmc.bmc_outages.append((first, first + max(3, days // 12)))

    def _waivers(self) -> list[dict[str, Any]]:
        """Waivers: (name, groups, check id, justification, expiries by the day they apply)."""
        out = []
        if any(g.name == "db" for g in self.groups):
            out.append({"name": "db-replication-forwarding", "groups": ("db",),
                        "check": "sysctl:net.ipv4.ip_forward",
                        "justification": "Replication traffic is forwarded until the DB VLAN "
                                         "move (CHG0040712)",
                        "expires": [(0, self._day(self.days * 55 // 100)),
                                    (self.days * 62 // 100, self._day(self.days + 60))]})
        if any(g.name == "batch" for g in self.groups):
            out.append({"name": "batch-var-spool", "groups": ("batch",),
                        "check": "threshold.diskUsedPercent:/var",
                        "justification": "Batch spool volume is being resized (CHG0041990)",
                        "expires": [(0, self._day(self.days + 20))]})
        return out

    def _freezes(self) -> list[tuple[str, str, date, date, tuple[str, ...], int]]:
        """(name, reason, first day, day after the last, groups, the day it is in force)."""
        names = tuple(g.name for g in self.groups)
        out = []
        for year in range(self.start.year - 1, self._day(self.days).year + 1):
            out.append(("year-end", "Year-end change freeze", date(year, 12, 20),
                        date(year + 1, 1, 4), names, -1))
            if "db" in names:
                for month in (3, 6, 9, 12):
                    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1))
                    out.append(("quarter-close", "Quarter close: finance databases are frozen",
                                last - timedelta(days=4), last + timedelta(days=1), ("db",), -1))
        frozen = tuple(n for n in names if n in ("web", "app")) or names[:1]
        first = self.days * 60 // 100
        out.append(("release-freeze", "Release 2025.3 rollout (CHG0043120)", self._day(first),
                    self._day(first + 8), frozen, self.days * 55 // 100))
        return out

    def _applies(self) -> dict[int, list[str]]:
        """Which policy.apply runs happen on which day (per cent of the span)."""
        plan = [(0, "initial"), (12, "bios"), (25, "baseline"), (38, "bmc"), (50, "invalid"),
                (50, "fix"), (55, "freeze"), (62, "waiver"), (75, "nic"), (88, "bios")]
        out: dict[int, list[str]] = {}
        for percent, kind in plan:
            if kind in ("bios", "bmc", "nic") and not self.bmc_groups:
                continue
            if kind == "waiver" and not any(w["name"].startswith("db-") for w in self.waivers):
                continue
            out.setdefault(self.days * percent // 100, []).append(kind)
        return out

    def _incidents(self) -> dict[tuple[int, str], str]:
        """Window occurrences that go otherwise (misfire, a second scheduler, a spent budget,
        an override) and days with other events, spread over the span."""
        occs = [(d, g.name) for d in range(self.days) for g in self.groups
                if self._day(d).weekday() == g.template.weekday]
        occs.sort(key=lambda o: (o[0], self._occ_start(self._group(o[1]), o[0])))
        out: dict[tuple[int, str], str] = {}
        span = self.days
        for kind, phase, count in (("duplicate", 0.2, span // 45), ("misfire", 0.3, span // 60),
                                   ("budget", 0.5, span // 180),
                                   ("override-window", 0.8, span // 120)):
            count = max(1, count)
            for k in range(count):
                pos = int((k + phase) / count * len(occs))
                for d, g in occs[pos:] + occs[:pos]:
                    grp = self._group(g)
                    if (d, g) in out or self._frozen(grp, d) is not None:
                        continue
                    if kind == "budget" and (grp.name == "canary" or len(grp.hosts) < 3):
                        continue
                    out[(d, g)] = kind
                    break
        others = [g for g in self.groups if g.name != "canary"] or self.groups
        for kind, phase, count in (("override-apply", 0.45, span // 120),
                                   ("closed", 0.7, span // 90), ("outage", 0.35, span // 180)):
            count = max(1, count)
            for k in range(count):
                d = min(span - 1, int((k + phase) / count * span))
                g = others[(k + len(kind)) % len(others)]
                if kind == "override-apply":  # the day an urgent fix comes out
                    d = self._urgent(g, d)
                out[(d, kind)] = g.name
        return out

    def _urgent(self, g: Group, d: int) -> int:
        """The first day from d on when a critical or high security fix (any security fix
        where the source gives no severity) for the group's packages is published, else d."""
        days = [r.day for p in g.packages for r in self.catalog[(g.manager, p)][0]
                if d <= r.day < self.days and r.classification == "security"
                and r.severity in ("critical", "high", None)]
        return min(days, default=d)

    # ------------------------------------------------------------------ time
    def _day(self, d: int) -> date:
        return self.start + timedelta(days=d)

    def _at(self, d: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(self._day(d), time(hour, minute), tzinfo=UTC)

    def _occ_start(self, g: Group, d: int) -> datetime:
        return datetime.combine(self._day(d), time(g.template.hour), tzinfo=self.zone)

    def _local(self, t: datetime) -> str:
        return t.astimezone(self.zone).isoformat()

    def _occ_id(self, g: Group, d: int) -> str:
        return f"{g.window}@{self._occ_start(g, d).isoformat()}"

    def _group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    def _run(self, at: datetime, actor: str = SCHEDULER, occurrence: str | None = None,
             revision: str | None = None) -> _Run:
        rid = f"r-{at:%Y%m%dT%H%M%SZ}-{self.rng.getrandbits(32):08x}"
        return _Run(rid, actor, revision or self.revision, occurrence)

    def _emit(self, at: datetime, run: _Run, action: str, status: str, host: str | None = None,
              group: str | None = None, **details: Any) -> None:
        self.out.push(at, Entry(run=run.id, action=action, status=status, actor=run.actor,
                                policy_revision=run.revision, host=host, group=group,
                                occurrence=run.occurrence, details=details))

    def _spread(self, t: datetime, n: int, per: float) -> list[datetime]:
        """When each of n parallel jobs (FORKS at a time, `per` seconds each) finishes."""
        rng = self.rng
        return [t + timedelta(seconds=(i // FORKS) * per + rng.uniform(0.2, per))
                for i in range(n)]

    # ------------------------------------------------------------------ the days
    def run(self) -> None:
        for d in range(self.days):
            self._new_troubles(d)
            for _, _, fn in sorted(self._jobs(d), key=lambda j: (j[0], j[1])):
                fn()
            self.out.flush(self._at(d, 0) + timedelta(days=1))
        self.out.flush()
        rows = [(g, h, p, v, s.isoformat()) for (g, h, p, v), s in self.host_seen.items()]
        for lo in range(0, len(rows), 20_000):
            self.out.store.import_first_seen(rows[lo:lo + 20_000])

    def _jobs(self, d: int) -> list[tuple[datetime, int, Callable[[], None]]]:
        """Day d's runs: (when it starts, its place, what makes its records). They run in
        that order, so that each sees what the earlier ones changed."""
        jobs: list[tuple[datetime, int, Callable[[], None]]] = []

        def job(at: datetime, fn: Callable[..., None], *args: Any) -> None:
            jobs.append((at, len(jobs), partial(fn, *args)))

        day = self._day(d)
        for k, kind in enumerate(self.applies.get(d, [])):
            at = (self._at(d, 0, 30) if kind == "initial" else self._at(d, 13)
                  + timedelta(minutes=50 * k + self.rng.randint(0, 40))) \
                + timedelta(seconds=self.rng.uniform(0, 59))
            job(at, self._policy_apply, at, kind)
        job(self._at(d, 1), self._audit_all, d)
        if day.day == 1 and self.bmc_groups:
            job(self._at(d, 2, 30), self._firmware_scan_all, d)
        if day.weekday() == 0:
            job(self._at(d, 3), self._scan_all, d)
        for g in self.groups:
            if day.weekday() == g.template.weekday:
                job(self._occ_start(g, d).astimezone(UTC), self._window, g, d,
                    self.incidents.get((d, g.name)))
        for kind, hour, fn in (("override-apply", 11, self._override_apply),
                               ("closed", 10, self._closed)):
            name = self.incidents.get((d, kind))
            if name is not None:
                at = self._at(d, hour, self.rng.randint(0, 59))
                job(at, fn, at, self._group(name), d)
        return jobs

    def _new_troubles(self, d: int) -> None:
        """Today's new troubles: a host down, a drift for a day or a few, a package whose
        install fails on a host for weeks."""
        rng = self.rng
        for h in self.hosts:
            r = rng.random()
            if r < 0.0006:
                h.outages.append((d, d + rng.randint(0, 2)))
            elif r < 0.0056:
                h.drifts.append((rng.choice(TRANSIENT), d, d + rng.randint(0, 3)))
            elif r < 0.006 and (h.stuck is None or h.stuck[2] < d):
                h.stuck = (rng.choice([p for p in h.group.packages if p not in REBOOTING]), d,
                           d + rng.randint(14, 42))
        name = self.incidents.get((d, "outage"))
        if name is not None:  # a rack loses power for a day
            hosts = self._group(name).hosts
            for h in hosts[: max(1, len(hosts) // 12)]:
                h.outages.append((d, d))

    # ------------------------------------------------------------------ audits
    def _audit_details(self, h: Host, d: int) -> tuple[str, dict[str, Any]]:
        if h.down(d):
            return "unreachable", {"checks": 0, "error": _ssh_down(h.name), "findings": [],
                                   "passed": {}}
        rng = self.rng
        bad: dict[str, Any] = {}
        for kind, first, last in h.drifts:
            if first <= d <= last:
                bad.update(DRIFTS[kind])
        findings = []
        passed: dict[str, Any] = {}
        status = "compliant"
        ssh = SSH_PACKAGE[h.group.manager]
        rels, _ = self.catalog[(h.group.manager, ssh)]
        passed[f"package.installed:{ssh}"] = rels[h.installed[ssh]].version
        for cid, expected, good in CHECKS:
            if cid in bad:
                waiver = self._waiver(h, cid, d)
                state = "waived" if waiver is not None and not waiver.get("expired") else "drift"
                if state == "drift":
                    status = "drift"
                findings.append({"id": cid, "status": state, "expected": expected,
                                 "actual": bad[cid], "waiver": waiver})
                continue
            if good is None:
                base = {"/": h.disk_root, "/var": h.disk_var}.get(cid.rpartition(":")[2],
                                                                   h.memory)
                good = round(min(84.0, base + rng.uniform(-2, 2) + (d % 30) * 0.1), 1)
            passed[cid] = good
        return status, {"checks": len(CHECKS) + 1, "error": None, "findings": findings,
                        "passed": passed}

    def _waiver(self, h: Host, cid: str, d: int) -> dict[str, Any] | None:
        for w in self.waivers:
            if w["check"] != cid or h.group.name not in w["groups"]:
                continue
            expires = [e for since, e in w["expires"] if since <= d][-1]
            out = {"name": w["name"], "expires": expires.isoformat(),
                   "justification": w["justification"]}
            if self._day(d) > expires:
                out["expired"] = True
                out["note"] = (f"waiver {w['name']} expired on {expires.isoformat()}; it no "
                               "longer applies")
            return out
        return None

    def _audit(self, t: datetime, run: _Run, hosts: list[Host], d: int) -> tuple[datetime, int]:
        """One audit run over `hosts`: (when it ended, hosts unreachable or in error)."""
        self._emit(t, run, "audit.start", "started", hosts=len(hosts))
        counts = {"hosts": len(hosts), "compliant": 0, "drift": 0, "unreachable": 0, "error": 0}
        times = sorted(self._spread(t + timedelta(seconds=0.3), len(hosts), 4.0))
        for h, at in zip(hosts, times, strict=True):
            status, details = self._audit_details(h, d)
            counts[status] += 1
            self._emit(at, run, "audit", status, h.name, h.group.name, **details)
        end = (times[-1] if times else t) + timedelta(seconds=0.05)
        self._emit(end, run, "audit.end", "finished", **counts)
        return end, counts["unreachable"] + counts["error"]

    def _audit_all(self, d: int) -> None:
        t = self._at(d, 1) + timedelta(seconds=self.rng.uniform(0.2, 3))
        self._audit(t, self._run(t), self.hosts, d)

    # ------------------------------------------------------------------ patch scans
    def _pending(self, h: Host, d: int) -> list[Pending]:
        today = self._day(d)
        g = h.group
        out = []
        for name in g.packages:
            rels, days = self.catalog[(g.manager, name)]
            top = bisect_right(days, d) - 1
            cur = h.installed[name]
            if top <= cur:
                continue
            rel = rels[top]
            seen = self.first_seen.setdefault((g.name, name, rel.version), today)
            self.host_seen.setdefault((g.name, h.name, name, rel.version), today)
            state, due, overdue, age = g.decide(name, rel, seen, today)
            out.append(Pending(name, rels[cur].version, rel, top, seen, state, due, overdue,
                                age))
        return out

    def _scan(self, t: datetime, run: _Run, hosts: list[Host], d: int
              ) -> tuple[datetime, dict[str, tuple[str, str | None, list[Pending]]]]:
        """One patch scan: (when it ended, each host's status, error and pending patches)."""
        self._emit(t, run, "patch.scan.start", "started", hosts=len(hosts), refresh=True)
        counts = {"hosts": len(hosts), "compliant": 0, "overdue": 0, "unreachable": 0,
                  "error": 0}
        states: Counter[str] = Counter()
        overdue_patches = 0
        result = {}
        times = sorted(self._spread(t + timedelta(seconds=0.5), len(hosts), 9.0))
        for h, at in zip(hosts, times, strict=True):
            g = h.group
            if h.down(d):
                error = _ssh_down(h.name)
                result[h.name] = ("unreachable", error, [])
                counts["unreachable"] += 1
                self._emit(at, run, "patch.scan", "unreachable", h.name, g.name, manager=None,
                           error=error, patchPolicy=g.policy, patches=[], thresholds=[])
                continue
            pending = self._pending(h, d)
            thresholds = []
            if g.template.age_limit is not None:
                aged = [p for p in pending if p.state != "rejected"]
                oldest = max(aged, key=lambda p: p.age, default=None)
                thresholds.append({
                    "id": "threshold.pendingPatchAgeDays",
                    "status": "drift" if oldest and oldest.age > g.template.age_limit
                    else "pass",
                    "expected": f"<= {g.template.age_limit} days",
                    "actual": f"{oldest.age} days ({oldest.name} {oldest.release.version})"
                    if oldest else "no pending update"})
            late = any(p.overdue for p in pending) or any(x["status"] == "drift"
                                                          for x in thresholds)
            status = "overdue" if late else "compliant"
            counts[status] += 1
            states.update(p.state for p in pending)
            overdue_patches += sum(p.overdue for p in pending)
            result[h.name] = (status, None, pending)
            self._emit(at, run, "patch.scan", status, h.name, g.name, manager=g.manager,
                       error=None, patchPolicy=g.policy,
                       patches=[p.to_json() for p in pending], thresholds=thresholds)
        end = (times[-1] if times else t) + timedelta(seconds=0.05)
        self._emit(end, run, "patch.scan.end", "finished", **counts,
                   pending=sum(states.values()), missing=states["missing"],
                   notApproved=states["not_approved"], rejected=states["rejected"],
                   overduePatches=overdue_patches)
        return end, result

    def _scan_all(self, d: int) -> None:
        t = self._at(d, 3) + timedelta(seconds=self.rng.uniform(0.2, 3))
        self._scan(t, self._run(t), self.hosts, d)

    # ------------------------------------------------------------------ patch rollout
    def _rollout(self, t: datetime, run: _Run, g: Group, d: int, *, spoil: bool = False
                 ) -> tuple[datetime, str, list[Host]]:
        """A group's patch rollout (scan first): (when it ended, status, hosts changed).
        `spoil`: the package most hosts install is broken (the failure budget is spent)."""
        rng = self.rng
        t, scanned = self._scan(t, run, g.hosts, d)
        outcome: dict[str, tuple[str, str]] = {}
        wanted: dict[str, list[Pending]] = {}
        for h in g.hosts:
            status, error, pending = scanned[h.name]
            todo = [p for p in pending if p.state == "missing"]
            if status == "unreachable":
                outcome[h.name] = ("failed", f"scan: {error}")
            elif not todo:
                outcome[h.name] = ("up-to-date", "nothing approved is missing")
            else:
                wanted[h.name] = todo
        plan = batches(list(wanted), g.serial) if wanted else []
        bad = None
        if spoil and wanted:
            common = Counter(p.name for todo in wanted.values() for p in todo)
            bad = min(common, key=lambda name: (-common[name], name))
        budget = FailureBudget(g.max_failures, len(g.hosts))
        for name, (status, reason) in outcome.items():
            if status == "failed":
                budget.spend(name, reason)
        t += timedelta(seconds=0.01)
        self._emit(t, run, "patch.apply.start", "started", group=g.name, policy=g.policy,
                   batches=plan, budget=budget.describe(), deferredFirst=[], resumed=[])
        by_name = {h.name: h for h in g.hosts}
        changed: list[Host] = []
        for n, batch in enumerate(plan, 1):
            t += timedelta(seconds=0.02)
            if budget.exhausted:
                reason = f"failure budget exhausted: {budget.describe()}"
                for name in (h for b in plan[n - 1:] for h in b):
                    outcome[name] = ("budget-exhausted", reason)
                    self._emit(t, run, "skip", "budget-exhausted", name, g.name, reason=reason)
                break
            self._emit(t, run, "patch.batch", "started", group=g.name, batch=n,
                       manager=g.manager, hosts=batch,
                       packages={h: [{"name": p.name, "version": p.release.version}
                                     for p in wanted[h]] for h in batch})
            ends = []
            for name in batch:
                h = by_name[name]
                done = t + timedelta(seconds=rng.uniform(60, 420))
                status, reason = self._install(done, run, h, wanted[name], d, n, bad)
                outcome[name] = (status, reason)
                if status == "failed":
                    budget.spend(name, reason)
                changed.append(h)
                ends.append(done)
            t = max(ends) + timedelta(seconds=0.5)
        counts = Counter(s for s, _ in outcome.values())
        status = "failed" if counts["failed"] else "done"
        t += timedelta(seconds=0.01)
        self._emit(t, run, "patch.apply.end", status, group=g.name, deferred=[],
                   budget=budget.describe(), spentBy=budget.spent_by, hosts=dict(counts))
        return t, status, changed

    def _install(self, t: datetime, run: _Run, h: Host, todo: list[Pending], d: int,
                 n: int, bad: str | None) -> tuple[str, str]:
        """One host's installs, reboot and health check: (its status, reason)."""
        rng = self.rng
        g = h.group
        stuck = h.stuck[0] if h.stuck and h.stuck[1] <= d <= h.stuck[2] else None
        failing = {p.name for p in todo if p.name == stuck
                   or (p.name == bad and rng.random() < 0.9)}
        if not failing and rng.random() < 0.002:
            failing.add(rng.choice(todo).name)
        ok = [p for p in todo if p.name not in failing]
        reboot = any(p.name in REBOOTING for p in ok)
        if reboot:
            self._emit(t - timedelta(seconds=rng.uniform(5, 30)), run, "reboot", "done",
                       h.name, g.name, elapsed=rng.randint(35, 140))
        for p in todo:
            good = p.name not in failing
            if good:
                h.installed[p.name] = p.index
            r = p.release
            self._emit(t, run, "patch.install", "installed" if good else "failed", h.name,
                       g.name, package=p.name, version=r.version, before=p.current,
                       after=r.version if good else p.current, classification=r.classification,
                       released=r.released.isoformat() if r.released else None,
                       firstSeen=p.first_seen.isoformat())
        health = {"command_rc": None,
                  "services": {s: "ok" for s in g.template.services}}
        if g.template.services and not failing and rng.random() < 0.001:
            health["services"][g.template.services[0]] = "failed"
        healthy = all(v == "ok" for v in health["services"].values())
        self._emit(t, run, "health", "ok" if healthy else "failed", h.name, g.name, **health)
        if failing:
            status, reason = "failed", f"install failed: {', '.join(sorted(failing))}"
        elif not healthy:
            status, reason = "failed", f"health check failed: {health}"
        else:
            status, reason = "done", ""
        self._emit(t, run, "patch.apply", status, h.name, g.name, batch=n, reason=reason,
                   rebooted=reboot)
        return status, reason

    # ------------------------------------------------------------------ firmware
    def _components(self, h: Host) -> list[dict[str, Any]]:
        policy = h.group.template.firmware
        assert policy is not None
        out = []
        for cid, (name, match, versions, _) in FIRMWARE.items():
            want = self.fw_wanted[policy][cid]
            have = h.firmware[cid]
            out.append({"match": match, "id": cid, "name": name, "installed": versions[have],
                        "wanted": versions[want],
                        "status": "current" if have == want else "outdated" if have < want
                        else "ahead", "image": _image(policy, cid, versions[want])})
        return out

    def _firmware_scan(self, t: datetime, run: _Run, hosts: list[Host], d: int
                       ) -> tuple[datetime, dict[str, tuple[str, str | None, list[Any]]]]:
        self._emit(t, run, "firmware.scan.start", "started", hosts=len(hosts))
        counts = {"hosts": len(hosts), "compliant": 0, "outdated": 0, "unknown": 0,
                  "unreachable": 0, "error": 0}
        comp_states: Counter[str] = Counter()
        result = {}
        times = sorted(self._spread(t + timedelta(seconds=0.3), len(hosts), 3.0))
        for h, at in zip(hosts, times, strict=True):
            policy = h.group.template.firmware
            if h.bmc_down(d):
                error = f"{h.name}: bmc-{h.name}.mgmt.example.net unreachable: timed out"
                counts["unreachable"] += 1
                result[h.name] = ("unreachable", error, [])
                self._emit(at, run, "firmware.scan", "unreachable", h.name, h.group.name,
                           firmwarePolicy=policy, method="redfish", error=error,
                           powerState=None, components=[])
                continue
            comps = self._components(h)
            status = "outdated" if any(c["status"] == "outdated" for c in comps) \
                else "compliant"
            counts[status] += 1
            comp_states.update(c["status"] for c in comps)
            result[h.name] = (status, None, comps)
            self._emit(at, run, "firmware.scan", status, h.name, h.group.name,
                       firmwarePolicy=policy, method="redfish", error=None,
                       powerState="Off" if h.powered_off else "On", components=comps)
        end = (times[-1] if times else t) + timedelta(seconds=0.05)
        self._emit(end, run, "firmware.scan.end", "finished", **counts,
                   **{f"components{s.capitalize()}": comp_states[s]
                      for s in ("current", "outdated", "ahead", "unknown")})
        return end, result

    def _firmware_scan_all(self, d: int) -> None:
        t = self._at(d, 2, 30) + timedelta(seconds=self.rng.uniform(0.2, 3))
        self._firmware_scan(t, self._run(t), [h for g in self.bmc_groups for h in g.hosts], d)

    def _firmware_rollout(self, t: datetime, run: _Run, g: Group, d: int
                          ) -> tuple[datetime, str, list[Host]]:
        rng = self.rng
        policy = g.template.firmware
        t, scanned = self._firmware_scan(t, run, g.hosts, d)
        outcome: dict[str, tuple[str, str]] = {}
        wanted: dict[str, list[dict[str, Any]]] = {}
        for h in g.hosts:
            status, error, comps = scanned[h.name]
            todo = [{"id": c["id"], "match": c["match"],
                     "uri": f"/redfish/v1/UpdateService/FirmwareInventory/{c['id']}",
                     "version": c["wanted"], "image": c["image"], "name": c["name"]}
                    for c in comps if c["status"] == "outdated"]
            if status == "unreachable":
                outcome[h.name] = ("failed", f"scan: {error}")
            elif not todo:
                outcome[h.name] = ("up-to-date", "every component is at its version or ahead")
            else:
                wanted[h.name] = todo
        plan = batches(list(wanted), ["25%"]) if wanted else []
        budget = FailureBudget("10%", len(g.hosts))
        for name, (status, reason) in outcome.items():
            if status == "failed":
                budget.spend(name, reason)
        t += timedelta(seconds=0.01)
        self._emit(t, run, "firmware.apply.start", "started", group=g.name, policy=policy,
                   method="redfish", batches=plan, budget=budget.describe(), deferredFirst=[],
                   resumed=[])
        by_name = {h.name: h for h in g.hosts}
        changed = []
        for n, batch in enumerate(plan, 1):
            t += timedelta(seconds=0.02)
            if budget.exhausted:
                reason = f"failure budget exhausted: {budget.describe()}"
                for name in (h for b in plan[n - 1:] for h in b):
                    outcome[name] = ("budget-exhausted", reason)
                    self._emit(t, run, "skip", "budget-exhausted", name, g.name, reason=reason,
                               step="firmware")
                break
            self._emit(t, run, "firmware.batch", "started", group=g.name, batch=n, hosts=batch,
                       components={h: wanted[h] for h in batch})
            ends = []
            for name in batch:
                h = by_name[name]
                at = t + timedelta(seconds=rng.uniform(5, 60))
                end, status, reason = self._flash(at, run, h, wanted[name], n)
                outcome[name] = (status, reason)
                if status == "failed":
                    budget.spend(name, reason)
                if not h.powered_off:  # the playbook worked on it: audited again
                    changed.append(h)
                ends.append(end)
            t = max(ends) + timedelta(seconds=1)
        counts = Counter(s for s, _ in outcome.values())
        status = "failed" if counts["failed"] else "done"
        t += timedelta(seconds=0.01)
        self._emit(t, run, "firmware.apply.end", status, group=g.name, deferred=[],
                   budget=budget.describe(), spentBy=budget.spent_by, hosts=dict(counts))
        return t, status, changed

    def _flash(self, t: datetime, run: _Run, h: Host, todo: list[dict[str, Any]], n: int
               ) -> tuple[datetime, str, str]:
        """One host's firmware updates: (when it ended, its status, reason)."""
        rng = self.rng
        g = h.group.name
        if h.powered_off:
            reason = ("power state is Off; the firmware policy requires On, so nothing is "
                      "flashed")
            t += timedelta(seconds=20)
            self._emit(t, run, "firmware.apply", "failed", h.name, g, batch=n, reason=reason,
                       powerState="Off")
            return t, "failed", reason
        failed = ""
        for c in todo:
            self.handles += 1
            handle = f"/redfish/v1/TaskService/TaskMonitors/JID_{self.handles:06d}"
            self._emit(t, run, "firmware.task", "started", h.name, g, batch=n,
                       component=c["id"], image=c["image"], version=c["version"], handle=handle)
            t += timedelta(seconds=rng.uniform(240, 700))
            name, match, versions, reset = FIRMWARE[c["id"]]
            before = versions[h.firmware[c["id"]]]
            if rng.random() < 0.03:
                self._emit(t, run, "firmware.update", "failed", h.name, g, batch=n,
                           component=c["id"], match=match, wanted=c["version"], before=before,
                           after=before, reason=FIRMWARE_FAILURE, handle=handle)
                failed = f"{c['id']}: failed: {FIRMWARE_FAILURE}"
                break
            h.firmware[c["id"]] = versions.index(c["version"])
            self._emit(t, run, "firmware.update", "updated", h.name, g, batch=n,
                       component=c["id"], match=match, wanted=c["version"], before=before,
                       after=c["version"], reason="", handle=handle)
            if reset is not None:
                t += timedelta(seconds=rng.uniform(1, 5))
                self._emit(t, run, "firmware.reset", "done", h.name, g, component=c["id"],
                           target=reset[1], resetType=reset[0])
        t += timedelta(seconds=rng.uniform(20, 90))
        self._emit(t, run, "firmware.apply", "failed" if failed else "done", h.name, g,
                   batch=n, reason=failed, powerState="On")
        return t, "failed" if failed else "done", failed

    # ------------------------------------------------------------------ windows
    def _frozen(self, g: Group, d: int) -> str | None:
        """Why the group's occurrence on day d is frozen, as check_group says it, or None."""
        day = self._day(d)
        for name, reason, first, until, groups, since in self.freezes:
            if g.name in groups and first <= day < until and d >= since:
                end = datetime.combine(until, time(0), tzinfo=self.zone)
                nxt = until + timedelta(days=(g.template.weekday - until.weekday()) % 7)
                nxt_d = (nxt - self.start).days
                return (f"frozen by freeze {name} ({reason}) until {end.isoformat()}; it blocks "
                        f"{self._occ_id(g, d)}; next opens "
                        f"{self._occ_start(g, nxt_d).isoformat()} ({self._occ_id(g, nxt_d)})")
        return None

    def _window(self, g: Group, d: int, incident: str | None) -> None:
        rng = self.rng
        start = self._occ_start(g, d).astimezone(UTC)
        occ = self._occ_id(g, d)
        if incident == "misfire":  # the scheduler's machine was down at the start
            at = start + MISFIRE_GRACE + timedelta(minutes=rng.randint(5, 90))
            run = self._run(at, occurrence=occ)
            limit = self._local(start + MISFIRE_GRACE)
            self._emit(at, run, "skip", "misfire", window=g.window,
                       reason=f"misfire: trigger at {self._local(at)} is later than start + "
                              f"misfireGrace (1h) = {limit} for {occ}; nothing done",
                       trigger=at.isoformat())
            return
        if incident == "override-window":  # someone runs it by hand before it opens
            self._override_window(g, d, start)
        at = start + timedelta(seconds=rng.uniform(0.5, 4))
        run = self._run(at, occurrence=occ)
        t = self._run_start(at, run, g)
        if incident == "duplicate":  # a second hub fires the same window
            again = at + timedelta(seconds=rng.uniform(1, 20))
            self._emit(again, self._run(again, SECOND_SCHEDULER, occ), "skip", "already-done",
                       window=g.window, holder=run.id)
        frozen = self._frozen(g, d)
        if frozen is not None:
            self._emit(t, run, "skip", "frozen", group=g.name, reason=frozen)
            self._emit(t + timedelta(seconds=0.01), run, "run.end", "closed", window=g.window,
                       error=None, groups={g.name: "frozen"})
            return
        t, status = self._group_work(t, run, g, d, spoil=incident == "budget")
        self._emit(t + timedelta(seconds=0.05), run, "run.end", status, window=g.window,
                   error=None, groups={g.name: status})

    def _run_start(self, at: datetime, run: _Run, g: Group, override: bool = False
                   ) -> datetime:
        t = at + timedelta(seconds=0.2)
        self._emit(t, run, "run.start", "started", window=g.window, groups=[g.name],
                   trigger=at.isoformat(), kind="run-window", override=override, takeover=None)
        return t + timedelta(seconds=0.1)

    def _override_window(self, g: Group, d: int, start: datetime) -> None:
        """`run-window --ignore-window --reason` hours before the occurrence opens: the
        override first, then the whole run (no lease, no occurrence, no freeze check)."""
        rng = self.rng
        at = start - timedelta(hours=3, minutes=rng.randint(0, 50))
        run = self._run(at, rng.choice(OPERATORS))
        self._emit(at, run, "override", "ignore-window", window=g.window,
                   reason=OVERRIDE_REASONS[d % len(OVERRIDE_REASONS)],
                   guard=f"no occurrence of window {g.window} is open at {at.isoformat()}; "
                         f"nothing done; the next occurrence starts {self._local(start)}",
                   trigger=at.isoformat())
        t = self._run_start(at, run, g, override=True)
        t, status = self._group_work(t, run, g, d, spoil=False)
        self._emit(t + timedelta(seconds=0.05), run, "run.end", status, window=g.window,
                   error=None, groups={g.name: status})

    def _group_work(self, t: datetime, run: _Run, g: Group, d: int, spoil: bool
                    ) -> tuple[datetime, str]:
        """One group of a window run: audit, patches, firmware, the audit after."""
        t, unhealthy = self._audit(t, run, g.hosts, d)
        t, patched, changed = self._rollout(t + timedelta(seconds=0.05), run, g, d,
                                            spoil=spoil)
        failed = unhealthy > 0 or patched == "failed"
        if g.template.firmware:
            t, flashed, more = self._firmware_rollout(t + timedelta(seconds=0.05), run, g, d)
            failed = failed or flashed == "failed"
            changed += [h for h in more if h not in changed]
        if changed:
            t, unhealthy = self._audit(t + timedelta(seconds=0.05), run, changed, d)
            failed = failed or unhealthy > 0
        return t, "failed" if failed else "done"

    def _override_apply(self, at: datetime, g: Group, d: int) -> None:
        """`patch apply --ignore-window --reason` by an operator, outside the window."""
        run = self._run(at, self.rng.choice(OPERATORS))
        reason = OVERRIDE_REASONS[(d + 1) % len(OVERRIDE_REASONS)]
        self._emit(at, run, "override", "ignore-window", group=g.name, reason=reason,
                   command="patch apply")
        self._rollout(at + timedelta(seconds=0.3), run, g, d)

    def _closed(self, at: datetime, g: Group, d: int) -> None:
        """Someone triggers the window (or patch apply) by hand while it is closed."""
        run = self._run(at, self.rng.choice(OPERATORS))
        ahead = (g.template.weekday - self._day(d).weekday()) % 7
        nxt = self._occ_start(g, d + ahead)
        if nxt.astimezone(UTC) <= at:
            nxt = self._occ_start(g, d + ahead + 7)
        if d % 2:
            self._emit(at, run, "skip", "closed", window=g.window,
                       reason=f"no occurrence of window {g.window} is open at {at.isoformat()}; "
                              f"nothing done; the next occurrence starts {nxt.isoformat()}",
                       trigger=at.isoformat())
        else:
            self._emit(at, run, "skip", "closed", group=g.name,
                       reason=f"no window of group {g.name} is open; next opens "
                              f"{nxt.isoformat()} ({g.window}@{nxt.isoformat()})")

    # ------------------------------------------------------------------ policy revisions
    def _policy_apply(self, at: datetime, kind: str) -> None:
        rng = self.rng
        commit = f"{rng.getrandbits(160):040x}"
        run = self._run(at, PIPELINE, revision=commit)
        policies = sorted(g.template.firmware or "" for g in self.bmc_groups)
        web = next((g.name for g in self.groups if g.name in ("web", "app")), self.groups[0].name)
        message = APPLY_MESSAGES[kind].format(version=self._bump(kind),
                                              policies=", ".join(policies),
                                              groups=", ".join(self.freezes[-1][4]))
        if kind == "invalid":
            self._emit(at, run, "policy.apply", "invalid", commit=commit, ref="origin/main",
                       problems=1, first=f"windows/{web}.yml:7: duration 'PT4X' is not a "
                                         "duration (e.g. 4h, 90m, PT4H)")
            return
        authored = at - timedelta(minutes=rng.randint(20, 600))
        committed = at - timedelta(minutes=rng.randint(2, 15))
        previous = self.revisions[-1] if self.revisions else None
        windows = sorted(g.window for g in self.groups)
        hosts = len(self.hosts)
        touched = {"bios": "firmwarePolicy", "bmc": "firmwarePolicy", "nic": "firmwarePolicy",
                   "baseline": "baselines", "freeze": "windows", "fix": "windows"}.get(kind)
        affected = (hosts if kind in ("initial", "baseline") else
                    sum(len(g.hosts) for g in self.bmc_groups) if touched == "firmwarePolicy"
                    else len(self.groups[0].hosts) if touched == "windows" else 0)
        summary = {
            "objects": {"added": 0 if previous else 20 + len(self.groups) * 3, "removed": 0,
                        "changed": 1 if previous else 0},
            "hosts": {"affected": affected,
                      **{c: affected if c == touched or kind == "initial" else 0
                         for c in ("baselines", "patchPolicy", "firmwarePolicy", "windows")}},
            "occurrences": {"appears": 0, "disappears": 0,
                            "blocked": 2 if kind == "freeze" else 0, "unblocked": 0},
            "freezes": {"added": 1 if kind == "freeze" else 0, "lifted": 0, "changed": 0},
            "waivers": {"added": len(self.waivers) if kind == "initial" else 0, "removed": 0,
                        "extended": 1 if kind == "waiver" else 0, "shortened": 0, "changed": 0,
                        "expiring": 0},
            "newlyDrifting": 0, "newlyOverdue": 0}
        self._emit(at, run, "policy.apply", "applied", commit=commit,
                   author="Dana Ops <dana.ops@example.net>", authored=self._local(authored),
                   committer="GitLab <gitlab@example.net>", committed=self._local(committed),
                   message=message, ref="origin/main", path=".", previous=previous,
                   plan=summary, schedule={
                       "format": "systemd", "output": "/etc/systemd/system",
                       "files": sorted(f"orchestrator-window-{w}.{s}" for w in windows
                                       for s in ("service", "timer"))})
        self.revision = commit
        self.revisions.append(commit)

    def _bump(self, kind: str) -> str:
        """A firmware bump applied now: the component's new wanted version ("" otherwise)."""
        cid = {"bios": "BIOS", "bmc": "BMC", "nic": "NIC"}.get(kind)
        if cid is None:
            return ""
        versions = FIRMWARE[cid][2]
        for wanted in self.fw_wanted.values():
            wanted[cid] = min(len(versions) - 1, wanted[cid] + 1)
        return versions[next(iter(self.fw_wanted.values()))[cid]]


def _version(manager: str, base: str, k: int) -> str:
    if manager == "apt":
        return f"{base}-1~deb12u{k + 1}"
    if manager == "dnf":
        return f"{base}-{k + 1}.el9_5"
    return f"{base}-150600.{k + 1}.1"


def _image(policy: str, cid: str, version: str) -> str:
    return f"https://firmware.example.net/{policy}/{cid.lower()}-{version}.bin"


def _ssh_down(host: str) -> str:
    return f"{host}: ssh: connect to host {host} port 22: Connection timed out"


def _sizes(hosts: int, names: list[str]) -> list[int]:
    """Hosts per group: canary a small share, the others evenly."""
    sizes = [0] * len(names)
    rest = hosts
    if "canary" in names and len(names) > 1:
        i = names.index("canary")
        sizes[i] = max(1, hosts // 25)
        rest -= sizes[i]
    others = [i for i, n in enumerate(names) if not (n == "canary" and len(names) > 1)]
    for k, i in enumerate(others):
        sizes[i] = rest // len(others) + (1 if k < rest % len(others) else 0)
    return sizes


def _zone() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(ZONE)
    except (ImportError, KeyError, ValueError, OSError):
        return UTC  # no time zone data here: windows are set in UTC


def generate_estate(store: ChangeLogStore, *, hosts: int = 500, groups: int = 5,
                    start: date, days: int = 365, seed: int = 0, batch: int = 5000
                    ) -> EstateSummary:
    """Write `days` of an estate of `hosts` hosts in `groups` groups, from `start`, into the
    empty `store` (see the module's text). Returns what was written."""
    if groups < 1 or hosts < groups:
        raise LabError(f"estate: {hosts} hosts in {groups} groups; give at least one group "
                       "and one host per group")
    if days < 1 or batch < 1:
        raise LabError(f"estate: days ({days}) and batch ({batch}) must be at least 1")
    if store.latest(LogFilter()) is not None:
        raise LabError(f"{redact(store.url)}: already holds records; generate an estate into "
                       "an empty store")
    began = clock.perf_counter()
    estate = _Estate(store, hosts=hosts, groups=groups, start=start, days=days, seed=seed,
                     batch=batch)
    estate.run()
    store.optimize()  # the planner's statistics, as a store in use has them
    out = estate.out
    return EstateSummary(
        records=out.count, hosts=len(estate.hosts), groups=tuple(g.name for g in estate.groups),
        start=start, until=start + timedelta(days=days), first_time=out.first or "",
        last_time=out.last or "", anchor=f"{out.seq - 1}:{out.prev}",
        revisions=tuple(estate.revisions), by_action=dict(sorted(out.actions.items())),
        seconds=clock.perf_counter() - began)


def write_estate(target: str | Path, **kwargs: Any) -> EstateSummary:
    """generate_estate into a new store: an SQLite file (a path or sqlite:///PATH) or a
    PostgreSQL URL (postgresql://...), which must hold no records yet."""
    from orchestrator.changelog.open import open_store

    url = str(target)
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        url = f"sqlite:///{Path(url).resolve()}"
    store = open_store(url)
    try:
        return generate_estate(store, **kwargs)
    finally:
        store.close()


__all__ = ["EstateSummary", "generate_estate", "write_estate"]
