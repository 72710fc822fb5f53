"""The report's figures as SQL over the store: aggregates and "latest record per host"
selections run in the database (indexes on action and time); Python receives one row per
figure entry (per host at most), never the log itself.

Every query is bounded by the report's range, `time >= lo AND time < hi`, and by its group
when one is asked for; firmware ages look further back (when a version was first reported)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.changelog.store import ChangeLogStore
from orchestrator.compliance.sql import Dialect

RECURRING_RUNS = 3  # a host or check failing in this many runs of the range recurs
LIST_LIMIT = 500  # rows of a listing (overrides, skips); the count says how many there were


@dataclass(frozen=True)
class Scope:
    lo: str  # record time text, inclusive
    hi: str  # exclusive
    group: str | None
    periods: tuple[tuple[int, str, str], ...]  # the trend's (index, from, until), record times


class Queries:
    def __init__(self, store: ChangeLogStore, scope: Scope) -> None:
        self.store = store
        self.scope = scope
        self.d = Dialect(store.dialect)

    # ------------------------------------------------------------------ helpers
    def _where(self, actions: tuple[str, ...], alias: str = "") -> tuple[str, list[object]]:
        m, a = self.d.mark, alias
        cond = [f"{a}action IN ({', '.join([m] * len(actions))})", f"{a}time >= {m}",
                f"{a}time < {m}"]
        args: list[object] = [*actions, self.scope.lo, self.scope.hi]
        if self.scope.group is not None:
            cond.append(f"{a}grp = {m}")
            args.append(self.scope.group)
        return " AND ".join(cond), args

    def _run(self, sql: str, args: list[object]) -> list[tuple]:
        return self.store.select(sql, tuple(args))

    # ------------------------------------------------------------------ ranges
    def totals(self) -> tuple[int, int | None, int | None]:
        """Records in the range (with a group: its records and those of no group, as for
        the revisions), first and last seq."""
        m = self.d.mark
        cond = f"time >= {m} AND time < {m}"
        args: list[object] = [self.scope.lo, self.scope.hi]
        if self.scope.group is not None:
            cond += f" AND (grp = {m} OR grp IS NULL)"
            args.append(self.scope.group)
        row = self._run(f"SELECT COUNT(*), MIN(seq), MAX(seq) FROM records WHERE {cond}",
                        args)[0]
        return int(row[0]), row[1], row[2]

    def last_seq(self) -> int | None:
        """The log's last record: the chain is verified through it, whatever the period (a
        record's time can be edited: a record moved past the period must still be seen)."""
        row = self._run("SELECT MAX(seq) FROM records", [])
        return row[0][0] if row else None

    def revisions(self) -> list[tuple]:
        """(revision, records, first seq, last seq, first time, last time)"""
        m = self.d.mark
        cond = f"time >= {m} AND time < {m}"
        args: list[object] = [self.scope.lo, self.scope.hi]
        if self.scope.group is not None:
            cond += f" AND (grp = {m} OR grp IS NULL)"
            args.append(self.scope.group)
        return self._run(f"SELECT policy_revision, COUNT(*), MIN(seq), MAX(seq), MIN(time), "
                         f"MAX(time) FROM records WHERE {cond} GROUP BY policy_revision "
                         f"ORDER BY MIN(seq)", args)

    def applies(self) -> list[tuple]:
        """policy.apply records: (seq, time, status, commit, actor)."""
        m = self.d.mark
        return self._run(f"SELECT seq, time, status, {self.d.text('details', 'commit')}, actor "
                         f"FROM records WHERE action = {m} AND time >= {m} AND time < {m} "
                         f"ORDER BY seq", ["policy.apply", self.scope.lo, self.scope.hi])

    # ------------------------------------------------------------------ latest per host
    def latest(self, action: str) -> list[tuple]:
        """The last `action` record of each (group, host) in the range:
        (seq, grp, host, status, details text). The choice reads the covering index
        (action, time, grp, host, status); only the chosen rows' details are read."""
        where, args = self._where((action,))
        return self._run(
            "SELECT r.seq, r.grp, r.host, r.status, r.details FROM (SELECT grp, host, "
            f"MAX(seq) AS seq FROM records WHERE {where} AND host IS NOT NULL GROUP BY grp, "
            "host) AS c JOIN records AS r ON r.seq = c.seq ORDER BY r.seq", args)

    def trend(self, action: str, good: str, count_key: str | None = None,
              overall: str = "min") -> list[tuple]:
        """Per period and group, from each host's last `action` record of that period:
        (period, grp, hosts, hosts whose status is `good`, sum of the `count_key` array
        lengths, first seq, last seq). `grp` NULL: all groups, a host counting as good
        when it is good in every group (`overall` "min") or in any ("max").

        The periods are a VALUES table of time ranges joined to the records: each is a
        range scan of the covering index, the same SQL in both dialects."""
        agg = {"min": "MIN", "max": "MAX"}[overall]
        m = self.d.mark
        periods = self.scope.periods
        values = ", ".join(f"({int(i)}, {m}, {m})" for i, _, _ in periods)
        p_args: list[object] = [x for _, a, z in periods for x in (a, z)]
        cond = f"r.action = {m} AND r.host IS NOT NULL"
        c_args: list[object] = [action]
        if self.scope.group is not None:
            cond += f" AND r.grp = {m}"
            c_args.append(self.scope.group)
        n = self.d.length("r.details", count_key) if count_key else "0"
        sql = (
            f"WITH periods (b, lo, hi) AS (VALUES {values}), "
            "chosen AS (SELECT p.b, r.grp, r.host, MAX(r.seq) AS seq FROM periods AS p JOIN "
            f"records AS r ON r.time >= p.lo AND r.time < p.hi AND {cond} "
            "GROUP BY p.b, r.grp, r.host), "
            f"counted AS (SELECT c.b, c.grp, c.host, r.status, c.seq, {n} AS n FROM chosen "
            "AS c JOIN records AS r ON r.seq = c.seq) "
            f"SELECT b, grp, COUNT(*), SUM(CASE WHEN status = {m} THEN 1 ELSE 0 END), SUM(n), "
            "MIN(seq), MAX(seq) FROM counted GROUP BY b, grp "
            "UNION ALL "
            "SELECT b, NULL, COUNT(*), SUM(ok), SUM(n), MIN(lo), MAX(hi) FROM (SELECT b, host, "
            f"{agg}(CASE WHEN status = {m} THEN 1 ELSE 0 END) AS ok, MAX(n) AS n, "
            "MIN(seq) AS lo, MAX(seq) AS hi FROM counted GROUP BY b, host) AS h GROUP BY b")
        if not periods:
            return []
        rows = self._run(sql, [*p_args, *c_args, good, good])
        return sorted(rows, key=lambda r: (r[0], r[1] is not None, r[1] or ""))

    # ------------------------------------------------------------------ recurring
    def recurring_checks(self) -> list[tuple]:
        """(grp, host, check, runs, findings, first seq, last seq, first time, last time) of
        checks found drifting in RECURRING_RUNS runs or more."""
        where, args = self._where(("audit",), "r.")
        cid = self.d.element_text("f", "id")
        m = self.d.mark
        return self._run(
            f"SELECT r.grp, r.host, {cid} AS chk, COUNT(DISTINCT r.run), COUNT(*), MIN(r.seq), "
            f"MAX(r.seq), MIN(r.time), MAX(r.time) FROM records AS r "
            f"{self.d.each('r.details', 'findings', 'f')} WHERE {where} AND r.status = {m} "
            f"AND {self.d.element_text('f', 'status')} = {m} GROUP BY r.grp, r.host, {cid} "
            f"HAVING COUNT(DISTINCT r.run) >= {RECURRING_RUNS} "
            f"ORDER BY COUNT(DISTINCT r.run) DESC, MIN(r.seq), {self.d.binary(cid)} "
            f"LIMIT {LIST_LIMIT}",
            [*args, "drift", "drift"])

    def recurring_failures(self) -> list[tuple]:
        """(grp, host, action, runs, records, first seq, last seq, first time, last time) of
        hosts that failed (unreachable, error, failed) in RECURRING_RUNS runs or more."""
        where, args = self._where(("audit", "patch.scan", "patch.apply", "firmware.scan",
                                   "firmware.apply"))
        m = self.d.mark
        return self._run(
            f"SELECT grp, host, action, COUNT(DISTINCT run), COUNT(*), MIN(seq), MAX(seq), "
            f"MIN(time), MAX(time) FROM records WHERE {where} AND host IS NOT NULL AND status "
            f"IN ({m}, {m}, {m}) GROUP BY grp, host, action HAVING COUNT(DISTINCT run) >= "
            f"{RECURRING_RUNS} ORDER BY COUNT(DISTINCT run) DESC, MIN(seq) "
            f"LIMIT {LIST_LIMIT}", [*args, "unreachable", "error", "failed"])

    # ------------------------------------------------------------------ time to install
    def time_to_install(self) -> list[tuple]:
        """Per group and classification, over installs in the range: (grp, classification,
        installs, mean days from release, installs with a release date, mean days from first
        seen, installs with a first-seen date, first seq, last seq). Dates are the record's
        own (recorded since this report exists); the store's first-seen table is not read:
        the chain does not cover it."""
        d = self.d
        where, args = self._where(("patch.install",), "r.")
        m = d.mark
        released = d.text("r.details", "released")
        seen = d.text("r.details", "firstSeen")
        cls = f"COALESCE({d.text('r.details', 'classification')}, 'unknown')"
        rel_days, seen_days = d.days("r.time", released), d.days("r.time", seen)
        return self._run(
            f"SELECT r.grp, {cls} AS cls, COUNT(*), AVG({rel_days}), COUNT({rel_days}), "
            f"AVG({seen_days}), COUNT({seen_days}), MIN(r.seq), "
            f"MAX(r.seq) FROM records AS r WHERE {where} AND r.status IN ({m}, {m}) "
            f"GROUP BY r.grp, {cls} ORDER BY MIN(r.seq)",
            [*args, "installed", "installed_pending_reboot"])

    # ------------------------------------------------------------------ windows
    def occurrences(self) -> list[tuple]:
        """run.start and run.end of run-window runs: (seq, action, status, run, occurrence,
        window, override)."""
        m = self.d.mark
        cond = f"action IN ({m}, {m}) AND time >= {m} AND time < {m} AND occurrence IS NOT NULL"
        args: list[object] = ["run.start", "run.end", self.scope.lo, self.scope.hi]
        return self._run(
            f"SELECT seq, action, status, run, occurrence, {self.d.window_of('occurrence')}, "
            f"{self.d.text('details', 'override')} FROM records WHERE {cond} ORDER BY seq",
            args)

    def skips(self) -> list[tuple]:
        """`skip` records by (window, group, status, reason): (window, grp, status, reason,
        records, first seq, last seq)."""
        where, args = self._where(("skip",))
        d = self.d
        window = f"COALESCE({d.text('details', 'window')}, {d.window_of('occurrence')})"
        reason = f"COALESCE({d.text('details', 'reason')}, '')"
        return self._run(
            f"SELECT {window} AS w, grp, status, {reason} AS why, COUNT(*), MIN(seq), MAX(seq) "
            f"FROM records WHERE {where} GROUP BY {window}, grp, status, {reason} "
            f"ORDER BY COUNT(*) DESC, MIN(seq) LIMIT {LIST_LIMIT}", args)

    def overrides(self) -> tuple[int, list[tuple]]:
        """(how many, the first LIST_LIMIT: seq, time, actor, grp, occurrence, details).
        With a group, also the overrides of no group (run-window's, about a window): the
        caller keeps those of the group's windows."""
        m = self.d.mark
        cond = f"action = {m} AND time >= {m} AND time < {m}"
        args: list[object] = ["override", self.scope.lo, self.scope.hi]
        if self.scope.group is not None:
            cond += f" AND (grp = {m} OR grp IS NULL)"
            args.append(self.scope.group)
        count = self._run(f"SELECT COUNT(*) FROM records WHERE {cond}", args)[0][0]
        rows = self._run(f"SELECT seq, time, actor, grp, occurrence, details FROM records "
                         f"WHERE {cond} ORDER BY seq LIMIT {LIST_LIMIT}", args)
        return int(count), rows

    # ------------------------------------------------------------------ firmware
    def firmware_since(self) -> list[tuple]:
        """When each (group, host, component, installed version) was first reported, up to
        the range's end: (grp, host, component, version, first time, first seq)."""
        d = self.d
        m = d.mark
        cond = f"r.action = {m} AND r.time < {m} AND r.host IS NOT NULL"
        args: list[object] = ["firmware.scan", self.scope.hi]
        if self.scope.group is not None:
            cond += f" AND r.grp = {m}"
            args.append(self.scope.group)
        cid = d.element_text("c", "id")
        ver = d.element_text("c", "installed")
        return self._run(
            f"SELECT r.grp, r.host, {cid}, {ver}, MIN(r.time), MIN(r.seq) FROM records AS r "
            f"{d.each('r.details', 'components', 'c')} WHERE {cond} AND {ver} IS NOT NULL "
            f"GROUP BY r.grp, r.host, {cid}, {ver}", args)
