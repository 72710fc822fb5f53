"""`orchestrator report`: the figures of a period, computed in the store (queries.py), each
with the records it came from, the whole chain verified, and the policy revisions the
period's records were written under.

Dates shown (title, trend periods, days overdue, waivers' days left) are in the zone of the
period's bounds as given (the CLI gives this machine's local time); records compare in UTC."""

from __future__ import annotations

import json
import shlex
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

from orchestrator.changelog.record import VerifyResult
from orchestrator.changelog.store import ChangeLogStore
from orchestrator.compliance.model import Report, Section, Trace
from orchestrator.compliance.queries import RECURRING_RUNS, Queries, Scope
from orchestrator.errors import StateError
from orchestrator.policy.model import PolicySet

WAIVER_DAYS = 30  # waivers expiring within this many days of the period's end are listed
DEFAULT_DAYS = 30  # the period when --from is not given


def record_time(t: datetime) -> str:
    """A time as records store it (fixed-width UTC text)."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


MOST_PERIODS = 1000  # trend periods at most (each is two bound parameters of one query)


def period_days(lo: datetime, hi: datetime) -> int:
    """The trend's period: a day up to a month, a week up to 400 days, else 30 days (longer
    when that would make more than MOST_PERIODS)."""
    span = (hi - lo).total_seconds() / 86400
    days = 1 if span <= 31 else 7 if span <= 400 else 30
    return max(days, int(span // MOST_PERIODS) + 1) if span / days > MOST_PERIODS else days


def build_report(store: ChangeLogStore, *, since: datetime, until: datetime,
                 group: str | None, policies: PolicySet | None, store_name: str,
                 notes: list[str] | None = None, now: datetime | None = None,
                 verifier: Callable[[int], VerifyResult] | None = None) -> Report:
    """The report of [since, until). `verifier(upto)`: `log verify` through record `upto`
    (the log's last) on a connection of its own, run while the figures are computed (the
    chain check reads every record and costs as much as all the figures); by default on
    `store`, after them. A figure the store cannot compute (a tampered record that is not
    JSON) is a note when the chain is broken, the error otherwise."""
    days = period_days(since, until)
    periods = []
    p0 = since
    while p0 < until:
        try:
            p1 = min(p0 + timedelta(days=days), until)
        except OverflowError:  # the year 9999
            p1 = until
        periods.append((len(periods), record_time(p0), record_time(p1)))
        p0 = p1
    scope = Scope(record_time(since), record_time(until), group, tuple(periods))
    q = Queries(store, scope)
    b = _Builder(q, since, until, days, policies)
    upto = q.last_seq()
    with ThreadPoolExecutor(max_workers=1) as pool:
        chain = pool.submit(b.chain, upto, verifier) if verifier is not None else None
        report = _fill(b, q, since, until, days, group, store_name, notes, now,
                       chain.result if chain is not None else lambda: b.chain(upto, None))
    return report


def _fill(b: _Builder, q: Queries, since: datetime, until: datetime, days: int,
          group: str | None, store_name: str, notes: list[str] | None,
          now: datetime | None, chain: Callable[[], dict[str, Any]]) -> Report:
    count, first, last = q.totals()
    last_day = (until - timedelta(microseconds=1)).date().isoformat()
    period = {"from": since.isoformat(), "until": until.isoformat(), "lastDay": last_day,
              "group": group,
              "generated": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
              "store": store_name, "periodDays": days, "records": count,
              "firstSeq": first, "lastSeq": last}
    report = Report(period, {}, b.revisions(), b.applies(), Section(None), [],
                    list(notes or []))
    errors = b.fill(report)
    report.chain = chain()
    if errors and report.intact:
        raise errors[0][1]
    for what, exc in errors:
        report.notes.append(f"{what}: not computed ({exc.message})")
    return report


class _Builder:
    def __init__(self, q: Queries, since: datetime, until: datetime, days: int,
                 policies: PolicySet | None) -> None:
        self.q, self.since, self.until, self.days, self.ps = q, since, until, days, policies
        self.lo, self.hi = q.scope.lo, q.scope.hi
        self.end_day = (until - timedelta(microseconds=1)).date()  # in the bounds' zone

    # ------------------------------------------------------------------ traces
    def query(self, action: str | None = None, *, group: str | None = None,
              grouped: bool = True,
              host: str | None = None, lo: str | None = None, hi: str | None = None,
              status: str | None = None) -> str:
        parts = ["orchestrator", "log"]
        if grouped and group is None:  # records of no group (run-window's) have no --group
            group = self.q.scope.group
        for flag, value in (("--action", action), ("--host", host), ("--status", status),
                            ("--group", group), ("--since", lo or self.lo),
                            ("--until", hi or self.hi)):
            if value is not None:
                parts += [flag, value]
        return shlex.join(parts)

    # ------------------------------------------------------------------ header
    def chain(self, upto: int | None,
              verifier: Callable[[int], VerifyResult] | None) -> dict[str, Any]:
        if upto is None:
            return {"intact": False, "through": None, "records": 0, "lastSeq": None,
                    "lastHash": None, "anchor": None, "brokenAt": None,
                    "reason": "the change log is empty: nothing shows records were never "
                              "written"}
        r = verifier(upto) if verifier is not None else self.q.store.verify(upto=upto)
        return {"intact": r.ok, "through": upto, "records": r.checked, "lastSeq": r.last_seq,
                "lastHash": r.last_hash, "anchor": r.anchor, "brokenAt": r.broken_seq,
                "reason": r.reason}

    def revisions(self) -> list[dict[str, Any]]:
        return [{"revision": rev, "records": n, "firstSeq": a, "lastSeq": z, "first": t0,
                 "last": t1} for rev, n, a, z, t0, t1 in self.q.revisions()]

    def applies(self) -> list[dict[str, Any]]:
        return [{"seq": seq, "time": t, "status": st, "commit": commit, "actor": actor}
                for seq, t, st, commit, actor in self.q.applies()]

    # ------------------------------------------------------------------ sections
    def fill(self, report: Report) -> list[tuple[str, StateError]]:
        """Every figure; a figure the store could not compute is returned with its error."""
        groups: dict[str | None, Section] = {}
        errors: list[tuple[str, StateError]] = []

        def section(g: str | None) -> Section:
            if g not in groups:
                groups[g] = Section(g)
            return groups[g]

        for what, step in (
                ("patch compliance", lambda: self._patch(section)),
                ("patch compliance over time", lambda: self._trend(
                    section, "patch.scan", "compliant", None, "patch_trend", "min")),
                ("drift", lambda: self._drift(section)),
                ("drift over time", lambda: self._trend(
                    section, "audit", "drift", "findings", "drift_trend", "max")),
                ("recurring failures", lambda: self._recurring(section)),
                ("time to install", lambda: self._install(section)),
                ("windows", lambda: self._windows(section)),
                ("overrides", lambda: self._overrides(section)),
                ("waivers", lambda: self._waivers(section)),
                ("firmware", lambda: self._firmware(section))):
            try:
                step()
            except (StateError, ValueError, TypeError, KeyError, RecursionError,
                    OverflowError) as exc:
                errors.append((what, exc if isinstance(exc, StateError) else
                               StateError(f"{type(exc).__name__}: {exc}")))
        report.overall = section(None)
        report.groups = [groups[g] for g in sorted(g for g in groups if g is not None)]
        if self.q.scope.group is not None:
            report.groups = [s for s in report.groups if s.group == self.q.scope.group]
        return errors

    def _patch(self, section: Any) -> None:
        rows = self.q.latest("patch.scan")
        by_host: dict[str, list[tuple]] = defaultdict(list)
        per_group: dict[str, list[tuple]] = defaultdict(list)
        for row in rows:
            by_host[row[2]].append(row)
            per_group[row[1]].append(row)
            if row[3] == "overdue":
                for p in _overdue(row, self.end_day):
                    section(row[1]).overdue.append(p)
                    section(None).overdue.append(p)
        for g, grows in per_group.items():
            section(g).patch = self._compliance(
                {r[2]: r[3] for r in grows}, [r[0] for r in grows], g)
        merged = {h: _worst([r[3] for r in hr]) for h, hr in by_host.items()}
        section(None).patch = self._compliance(merged, [r[0] for r in rows], None)
        for s in _sections(section, per_group):
            s.overdue.sort(key=lambda p: (-(p["daysOverdue"] or 0), str(p["host"] or ""),
                                          str(p["name"] or "")))

    def _compliance(self, status: dict[str, str], seqs: list[int], g: str | None
                    ) -> dict[str, Any]:
        c = Counter(status.values())
        hosts = len(status)
        return {"hosts": hosts, "compliant": c["compliant"], "overdue": c["overdue"],
                "unknown": hosts - c["compliant"] - c["overdue"],
                "percent": _pct(c["compliant"], hosts),
                "records": Trace.of(self.query("patch.scan", group=g), seqs,
                                    "each host's last patch.scan record of the period")}

    def _trend(self, section: Any, action: str, good: str, count_key: str | None,
               attr: str, overall: str) -> None:
        for b, g, hosts, n_good, n_items, a, z in self.q.trend(action, good, count_key,
                                                                overall):
            p0 = self.since + timedelta(days=self.days * int(b))
            try:
                p1 = min(p0 + timedelta(days=self.days), self.until)
            except OverflowError:
                p1 = self.until
            entry: dict[str, Any] = {
                "from": p0.isoformat(), "until": p1.isoformat(), "hosts": int(hosts),
                "records": Trace.span(self.query(action, group=g, lo=record_time(p0),
                                                 hi=record_time(p1)), int(hosts), a, z,
                                      f"each host's last {action} record of the period",
                                      exact=False)}
            if action == "patch.scan":
                entry.update(compliant=int(n_good or 0), percent=_pct(int(n_good or 0),
                                                                      int(hosts)))
            else:
                entry.update(drifting=int(n_good or 0), findings=int(n_items or 0))
            getattr(section(g), attr).append(entry)

    def _drift(self, section: Any) -> None:
        rows = self.q.latest("audit")
        per_group: dict[str | None, list[tuple]] = defaultdict(list)
        for row in rows:
            per_group[row[1]].append(row)
            per_group[None].append(row)
        for g, grows in per_group.items():
            by_check: dict[str, dict[str, Any]] = {}
            status: dict[str, str] = {}
            for seq, _grp, host, st, details in grows:
                status[host] = st if host not in status else _worst_audit(status[host], st)
                if st != "drift":
                    continue
                for f in _list(_details(details).get("findings")):
                    if isinstance(f, dict) and f.get("status") == "drift":
                        e = by_check.setdefault(str(f.get("id")), {"hosts": set(), "seqs": []})
                        e["hosts"].add(host)
                        e["seqs"].append(seq)
            c = Counter(status.values())
            section(g).drift = {
                "hosts": len(status), "compliant": c["compliant"], "drifting": c["drift"],
                "unknown": len(status) - c["compliant"] - c["drift"],
                "percentCompliant": _pct(c["compliant"], len(status)),
                "records": Trace.of(self.query("audit", group=g), [r[0] for r in grows],
                                    "each host's last audit record of the period"),
                "byCheck": [{"check": k, "hosts": sorted(v["hosts"]),
                             "records": Trace.of(self.query("audit", group=g), v["seqs"],
                                                 "the drifting hosts' last audit records")}
                            for k, v in sorted(by_check.items(),
                                               key=lambda kv: (-len(kv[1]["hosts"]), kv[0]))]}

    def _recurring(self, section: Any) -> None:
        for g, host, chk, runs, n, a, z, t0, t1 in self.q.recurring_checks():
            e = {"kind": "drift", "group": g, "host": host, "what": chk, "runs": int(runs),
                 "records": Trace.span(self.query("audit", host=host, group=g,
                                                  status="drift"), n, a, z,
                                       "the drift records naming this check", exact=False),
                 "first": t0, "last": t1}
            section(g).recurring.append(e)
            section(None).recurring.append(e)
        for g, host, action, runs, n, a, z, t0, t1 in self.q.recurring_failures():
            e = {"kind": "failure", "group": g, "host": host, "what": action,
                 "runs": int(runs),
                 "records": Trace.span(self.query(action, host=host, group=g), n, a, z,
                                       "the records with status unreachable, error or "
                                       "failed", exact=False),
                 "first": t0, "last": t1}
            section(g).recurring.append(e)
            section(None).recurring.append(e)
        for s in _sections(section, None):
            s.recurring.sort(key=lambda e: (-e["runs"], e["group"] or "", e["host"] or "",
                                            e["what"] or ""))

    def _install(self, section: Any) -> None:
        total: dict[str, list[tuple]] = defaultdict(list)
        for g, cls, n, rel, n_rel, seen, n_seen, a, z in self.q.time_to_install():
            row = (int(n), _f(rel), int(n_rel), _f(seen), int(n_seen), a, z)
            section(g).time_to_install.append(self._install_entry(cls, g, [row]))
            total[cls].append(row)
        section(None).time_to_install = [self._install_entry(c, None, rows)
                                         for c, rows in sorted(total.items())]

    def _install_entry(self, cls: str, g: str | None, rows: list[tuple]) -> dict[str, Any]:
        n = sum(r[0] for r in rows)
        n_rel = sum(r[2] for r in rows)
        n_seen = sum(r[4] for r in rows)
        rel = sum((r[1] or 0) * r[2] for r in rows) / n_rel if n_rel else None
        seen = sum((r[3] or 0) * r[4] for r in rows) / n_seen if n_seen else None
        a, z = min(r[5] for r in rows), max(r[6] for r in rows)
        return {"classification": cls, "installs": n,
                "meanDaysFromRelease": _round(rel), "withReleaseDate": n_rel,
                "meanDaysFromFirstSeen": _round(seen), "withFirstSeen": n_seen,
                "records": Trace.span(self.query("patch.install", group=g), n, a, z,
                                      "the records with status installed or "
                                      "installed_pending_reboot and this classification",
                                      exact=False)}

    def _windows(self, section: Any) -> None:
        runs: dict[str, dict[str, Any]] = {}
        for seq, action, status, run, occ, window, override in self.q.occurrences():
            e = runs.setdefault(run, {"window": window, "occurrence": occ, "run": run,
                                      "override": False, "outcome": None, "seqs": []})
            if action == "run.start":
                e["seqs"].append(seq)
                e["override"] = str(override).lower() in ("true", "1")
            else:
                e["outcome"] = status
        used = self._group_windows()
        by_window: dict[str, dict[str, Any]] = {}
        for e in runs.values():
            if used is not None and e["window"] not in used:
                continue
            w = by_window.setdefault(e["window"], {"window": e["window"], "occurrences": set(),
                                                   "runs": 0, "overrides": 0,
                                                   "outcomes": Counter(), "seqs": []})
            w["runs"] += 1
            w["seqs"] += e["seqs"]
            if e["override"]:
                w["overrides"] += 1
            else:
                w["occurrences"].add(e["occurrence"])
            w["outcomes"][e["outcome"] or "unfinished"] += 1
        windows = [{"window": w["window"], "used": len(w["occurrences"]), "runs": w["runs"],
                    "overrideRuns": w["overrides"], "outcomes": dict(sorted(w["outcomes"].items())),
                    "records": Trace.of(self.query("run.start", grouped=False), w["seqs"],
                                        "the run.start records of the window's runs; each "
                                        "run's outcome is its run.end record (log --run R)")}
                   for w in sorted(by_window.values(), key=lambda w: w["window"])]
        section(None).windows = {"windows": windows, "skipped": []}
        for window, g, status, why, n, a, z in self.q.skips():
            e = {"window": window, "group": g, "status": status, "reason": why,
                 "records": Trace.span(self.query("skip", group=g, status=status), n, a, z,
                                       "the skip records with this reason", exact=False)}
            section(None).windows["skipped"].append(e)
            if g is not None:
                section(g).windows.setdefault("skipped", []).append(e)

    def _group_windows(self) -> set[str] | None:
        """The windows of the report's group in today's policies (None: every window; an
        empty set for a group today's policies do not know)."""
        g = self.q.scope.group
        if g is None:
            return None
        if self.ps is None or g not in self.ps.groups:
            return set()
        return set(self.ps.groups[g].windows)

    def _overrides(self, section: Any) -> None:
        count, rows = self.q.overrides()
        items: list[dict[str, Any]] = []
        windows = self._group_windows()
        for seq, t, actor, g, occ, details in rows:
            d = _details(details)
            if windows is not None and g is None and d.get("window") not in windows:
                count -= 1  # a run-window override of a window the group does not use
                continue
            e = {"seq": seq, "time": t, "actor": actor, "group": g, "occurrence": occ,
                 "window": d.get("window"), "command": d.get("command"),
                 "reason": d.get("reason")}
            items.append(e)
            if g is not None:
                s = section(g)
                s.overrides.setdefault("items", []).append(e)
                s.overrides["count"] = s.overrides.get("count", 0) + 1
        section(None).overrides = {"count": count, "items": items,
                                   "records": Trace.of(self.query("override", grouped=False),
                                                       [e["seq"] for e in items])}

    def _waivers(self, section: Any) -> None:
        if self.ps is None:
            return
        horizon = self.end_day + timedelta(days=WAIVER_DAYS)
        for w in sorted(self.ps.waivers.values(), key=lambda w: (w.expires, w.name)):
            if not self.end_day <= w.expires <= horizon:
                continue
            if self.q.scope.group is not None and w.groups and \
                    self.q.scope.group not in w.groups:
                continue
            e = {"name": w.name, "expires": w.expires.isoformat(),
                 "daysLeft": (w.expires - self.end_day).days, "checks": list(w.checks),
                 "hosts": list(w.hosts), "groups": list(w.groups),
                 "justification": w.justification, "source": str(w.meta.source)}
            section(None).waivers.append(e)
            for g in w.groups:
                section(g).waivers.append(e)

    def _firmware(self, section: Any) -> None:
        rows = self.q.latest("firmware.scan")
        since = {(g, h, c, v): (t, s) for g, h, c, v, t, s in self.q.firmware_since()}
        agg: dict[tuple[str | None, str, str], dict[str, Any]] = {}
        for seq, g, host, _st, details in rows:
            for comp in _list(_details(details).get("components")):
                if not isinstance(comp, dict) or comp.get("installed") is None:
                    continue
                cid, ver = str(comp.get("id")), str(comp.get("installed"))
                first = since.get((g, host, cid, ver))
                for key in ((g, cid, ver), (None, cid, ver)):
                    e = agg.setdefault(key, {"component": cid, "version": ver, "hosts": set(),
                                             "status": Counter(), "wanted": set(),
                                             "since": None, "seqs": []})
                    e["hosts"].add(host)
                    e["status"][str(comp.get("status"))] += 1
                    if comp.get("wanted"):
                        e["wanted"].add(str(comp["wanted"]))
                    if first is not None and (e["since"] is None or first[0] < e["since"]):
                        e["since"] = first[0]
                    e["seqs"].append(seq)
        for (g, _cid, _ver), e in sorted(agg.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            age = None
            first_day = _date(e["since"])
            if first_day is not None:
                age = (self.end_day - first_day).days
            section(g).firmware.append({
                "component": e["component"], "version": e["version"],
                "hosts": len(e["hosts"]), "status": dict(sorted(e["status"].items())),
                "wanted": sorted(e["wanted"]), "reportedSince": e["since"], "ageDays": age,
                "records": Trace.of(self.query("firmware.scan", group=g), e["seqs"],
                                    "each host's last firmware.scan record of the period; the "
                                    "age counts from the first record showing this version")})


# ---------------------------------------------------------------------- helpers
def _sections(section: Any, groups: Any) -> list[Section]:
    seen = [section(None)]
    for g in groups or ():
        seen.append(section(g))
    return seen


def _details(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _overdue(row: tuple, end_day: date) -> list[dict[str, Any]]:
    seq, g, host, _st, details = row
    out = []
    for p in _list(_details(details).get("patches")):
        if not isinstance(p, dict) or p.get("overdue") is not True:
            continue
        due = _date(p.get("dueOn"))
        out.append({"host": host, "group": g, "name": p.get("name"),
                    "available": p.get("available"), "classification": p.get("classification"),
                    "severity": p.get("severity"), "released": p.get("released"),
                    "firstSeen": p.get("firstSeen"), "dueOn": p.get("dueOn"),
                    "daysOverdue": (end_day - due).days if due else None, "seq": seq})
    return out


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _worst(statuses: list[str]) -> str:
    """A host's patch state over its groups: overdue in one is overdue."""
    for s in ("overdue", "error", "unreachable"):
        if s in statuses:
            return s
    return "compliant" if statuses and all(s == "compliant" for s in statuses) else statuses[0]


def _worst_audit(a: str, b: str) -> str:
    order = ("drift", "error", "unreachable", "compliant")
    return min(a, b, key=lambda s: order.index(s) if s in order else 0)


def _pct(n: int, total: int) -> float | None:
    return round(100.0 * n / total, 1) if total else None


def _f(value: Any) -> float | None:
    return float(value) if value is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


__all__ = ["build_report", "record_time", "period_days", "RECURRING_RUNS"]
