"""A small change log with known figures, written with chosen times (sealed records
imported as they are), for the report tests."""

from __future__ import annotations

from typing import Any

from orchestrator.changelog.record import GENESIS, Entry, seal
from orchestrator.changelog.store import ChangeLogStore

REV_A = "a" * 40
REV_B = "b" * 40
OCC = "sat@2026-10-10T22:00:00+02:00"


class Writer:
    def __init__(self, store: ChangeLogStore) -> None:
        self.store = store
        self.seq = 0
        self.prev = GENESIS
        self.seqs: dict[str, list[int]] = {}

    def add(self, time: str, action: str, status: str, *, tag: str | None = None,
            host: str | None = None, group: str | None = None, run: str = "r-1",
            occurrence: str | None = None, rev: str = REV_A, **details: Any) -> int:
        self.seq += 1
        rec = seal(Entry(run=run, action=action, status=status, actor="alice@ops",
                         policy_revision=rev, host=host, group=group, occurrence=occurrence,
                         details=details), self.seq, self.prev, time=time + ".000000Z")
        self.store.import_records([rec])
        self.prev = rec.hash
        if tag:
            self.seqs.setdefault(tag, []).append(rec.seq)
        return rec.seq


def patch(name: str, *, overdue: bool, due: str, released: str | None = "2026-09-30",
          cls: str = "security") -> dict[str, Any]:
    return {"name": name, "current": "1.0", "available": "1.1", "classification": cls,
            "severity": "high", "released": released, "firstSeen": "2026-10-02",
            "state": "approved", "approvedOn": "2026-10-02", "dueOn": due, "overdue": overdue}


def write_estate(store: ChangeLogStore, hostile: str = "web-2") -> Writer:
    """The scenario the figure tests assert (period 2026-09-01 to 2026-11-01)."""
    w = Writer(store)
    w.add("2026-08-20T10:00:00", "firmware.scan", "compliant", host="web-1", group="web",
          components=[{"id": "BIOS", "installed": "1.0", "wanted": "1.0", "status": "current"}])
    # patch scans: web-1 overdue then compliant; web-2 overdue; db-1 unreachable
    w.add("2026-09-02T10:00:00", "patch.scan", "overdue", host="web-1", group="web",
          patches=[patch("zlib", overdue=True, due="2026-09-01")])
    # scanned twice in one trend period: the figure takes the later scan
    w.add("2026-10-20T09:00:00", "patch.scan", "compliant", host="web-1", group="web",
          patches=[])
    w.add("2026-10-20T10:00:00", "patch.scan", "compliant", tag="latest-scan", host="web-1",
          group="web", patches=[])
    w.add("2026-10-20T10:00:01", "patch.scan", "overdue", tag="latest-scan", host=hostile,
          group="web", patches=[patch("openssl", overdue=True, due="2026-10-10"),
                                patch("curl", overdue=False, due="2026-11-20")])
    w.add("2026-10-21T10:00:00", "patch.scan", "unreachable", tag="latest-scan", host="db-1",
          group="db", patches=[])
    # audits: db-1 drifts on the same check in three runs; web-1 twice, then compliant
    for i, day in enumerate(("05", "12", "19")):
        w.add(f"2026-09-{day}T03:00:00", "audit", "drift", tag="db-drift", host="db-1",
              group="db", run=f"r-a{i}", findings=[
                  {"id": "package.installed:chrony", "status": "drift", "expected": "installed",
                   "actual": "absent", "waiver": None},
                  {"id": "file.mode:/etc/shadow", "status": "waived", "expected": "0640",
                   "actual": "0644", "waiver": "legacy"}])
    for i, day in enumerate(("05", "12")):
        w.add(f"2026-09-{day}T03:00:01", "audit", "drift", host="web-1", group="web",
              run=f"r-a{i}", findings=[{"id": "service.running:auditd", "status": "drift",
                                        "expected": "running", "actual": "stopped",
                                        "waiver": None}])
    w.add("2026-10-01T03:00:00", "audit", "compliant", host="web-1", group="web", run="r-a9",
          findings=[])
    # a host failing its rollout in three runs
    for i, day in enumerate(("10", "17", "24")):
        w.add(f"2026-10-{day}T23:00:00", "patch.apply", "failed", tag="web2-fail",
              host=hostile, group="web", run=f"r-p{i}", reason="install failed: openssl")
    # installs: one with what the scan knew, one older record without it (first-seen table)
    w.add("2026-10-12T00:00:00", "patch.install", "installed", tag="install", host="web-1",
          group="web", occurrence=OCC, rev=REV_B, package="openssl", version="1.1",
          before="1.0", after="1.1", classification="security", released="2026-09-30",
          firstSeen="2026-10-02")
    store.first_seen("db", "db-1", [("bash", "5.2")],
                     __import__("datetime").date(2026, 10, 7))
    w.add("2026-10-12T12:00:00", "patch.install", "installed", tag="install", host="db-1",
          group="db", occurrence=OCC, rev=REV_B, package="bash", version="5.2", before="5.1",
          after="5.2")
    w.add("2026-10-12T12:00:01", "patch.install", "failed", host="db-1", group="db",
          occurrence=OCC, rev=REV_B, package="vim", version="9", before="8", after="8")
    # windows: one scheduled run, one override run; skips with reasons; an override record
    w.add("2026-10-10T20:00:00", "run.start", "started", tag="runs", run="r-w1", occurrence=OCC,
          rev=REV_B, window="sat", override=False, groups=["web", "db"], kind="run-window")
    w.add("2026-10-10T21:00:00", "run.end", "done", tag="runs", run="r-w1", occurrence=OCC,
          rev=REV_B, window="sat", groups={"web": "done"})
    w.add("2026-10-15T09:00:00", "override", "ignore-window", tag="override", run="r-w2",
          occurrence="sat@2026-10-17T22:00:00+02:00", rev=REV_B, window="sat",
          reason="emergency CVE-2026-1234", command="run-window")
    w.add("2026-10-15T09:00:01", "run.start", "started", tag="runs", run="r-w2",
          occurrence="sat@2026-10-17T22:00:00+02:00", rev=REV_B, window="sat", override=True)
    w.add("2026-10-15T09:30:00", "run.end", "failed", tag="runs", run="r-w2",
          occurrence="sat@2026-10-17T22:00:00+02:00", rev=REV_B, window="sat")
    for day in ("24", "31"):
        w.add(f"2026-10-{day}T20:00:00", "skip", "frozen", tag="frozen", group="web",
              run=f"r-s{day}", occurrence=f"sat@2026-10-{day}T22:00:00+02:00", rev=REV_B,
              reason="freeze q4-close")
    w.add("2026-10-25T20:00:00", "skip", "closed", run="r-c", rev=REV_B, window="sat",
          reason="not in an occurrence")
    # firmware: web-1 still runs BIOS 1.0 (first reported 2026-08-20), 1.2 wanted
    w.add("2026-10-15T10:00:00", "firmware.scan", "outdated", tag="fw", host="web-1",
          group="web", rev=REV_B, components=[{"id": "BIOS", "installed": "1.0",
                                               "wanted": "1.2", "status": "outdated"}])
    # after the period: must not count
    w.add("2026-11-02T10:00:00", "patch.scan", "overdue", host="web-1", group="web", rev=REV_B,
          patches=[patch("late", overdue=True, due="2026-11-01")])
    return w
