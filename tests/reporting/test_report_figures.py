"""The report's figures, computed by SQL on both store backends from a change log with known
contents (reportdata.py): each figure's value and the records it names."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from reportdata import REV_A, REV_B, write_estate

from orchestrator.compliance.build import build_report

SINCE = datetime(2026, 9, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, tzinfo=UTC)


def _report(store, group=None, since=SINCE, until=UNTIL):
    return build_report(store, since=since, until=until, group=group, policies=None,
                        store_name="test", now=UNTIL).to_json()


@pytest.fixture
def estate(stores):
    store = stores()
    w = write_estate(store)
    return store, w


def test_patch_compliance_and_overdue(estate):
    store, w = estate
    r = _report(store)
    pc = r["overall"]["patchCompliance"]
    assert (pc["hosts"], pc["compliant"], pc["overdue"], pc["unknown"]) == (3, 1, 1, 1)
    assert pc["percent"] == 33.3
    assert pc["records"]["seqs"] == w.seqs["latest-scan"]  # each host's last scan, exactly
    web = next(g for g in r["groups"] if g["group"] == "web")
    assert web["patchCompliance"]["percent"] == 50.0
    over = r["overall"]["overduePatches"]
    assert [(o["host"], o["name"], o["daysOverdue"]) for o in over] == [("web-2", "openssl", 21)]
    assert over[0]["seq"] == w.seqs["latest-scan"][1]
    # the record after the period (a newer overdue scan of web-1) is not counted
    assert all(o["name"] != "late" for o in over)


def test_trend_per_period(estate):
    store, _ = estate
    r = _report(store)
    assert r["period"]["periodDays"] == 7
    trend = r["overall"]["patchTrend"]
    assert [(t["from"][:10], t["hosts"], t["compliant"]) for t in trend] == [
        ("2026-09-01", 1, 0), ("2026-10-20", 3, 1)]
    web = next(g for g in r["groups"] if g["group"] == "web")["patchTrend"]
    assert [(t["hosts"], t["compliant"], t["percent"]) for t in web] == [(1, 0, 0.0),
                                                                         (2, 1, 50.0)]
    assert "--group web" in web[1]["records"]["query"]
    assert "--since 2026-10-20T00:00:00.000000Z" in web[1]["records"]["query"]
    drift = r["overall"]["driftTrend"]
    # 09-05, 09-12 and 09-19 fall in periods 0, 1 and 2; web-1's compliant audit in period 4
    assert [(t["from"][:10], t["hosts"], t["drifting"], t["findings"]) for t in drift] == [
        ("2026-09-01", 2, 2, 3), ("2026-09-08", 2, 2, 3), ("2026-09-15", 1, 1, 2),
        ("2026-09-29", 1, 0, 0)]


def test_drift_and_recurring(estate):
    store, w = estate
    r = _report(store)
    d = r["overall"]["drift"]
    assert (d["hosts"], d["compliant"], d["drifting"]) == (2, 1, 1)
    # the waived finding is not drift
    assert [(c["check"], c["hosts"]) for c in d["byCheck"]] == [
        ("package.installed:chrony", ["db-1"])]
    assert d["byCheck"][0]["records"]["seqs"] == [w.seqs["db-drift"][-1]]
    rec = r["overall"]["recurring"]
    got = {(e["kind"], e["host"], e["what"], e["runs"]) for e in rec}
    assert got == {("drift", "db-1", "package.installed:chrony", 3),
                   ("failure", "web-2", "patch.apply", 3)}  # web-1 drifted in 2 runs only
    fail = next(e for e in rec if e["kind"] == "failure")
    assert (fail["records"]["first"], fail["records"]["last"], fail["records"]["count"]) == (
        w.seqs["web2-fail"][0], w.seqs["web2-fail"][-1], 3)


def test_time_to_install(estate):
    store, w = estate
    r = _report(store)
    tti = {t["classification"]: t for t in r["overall"]["timeToInstall"]}
    assert set(tti) == {"security", "unknown"}  # the failed install is not counted
    assert tti["security"]["meanDaysFromRelease"] == 12.0
    assert tti["security"]["meanDaysFromFirstSeen"] == 10.0
    # the older record without dates: none is made up, and the store's first-seen table
    # (outside the chain: anyone with database access could forge it) is not read
    assert tti["unknown"]["meanDaysFromRelease"] is None
    assert tti["unknown"]["meanDaysFromFirstSeen"] is None
    assert tti["unknown"]["installs"] == 1 and tti["unknown"]["withFirstSeen"] == 0
    assert tti["unknown"]["records"]["first"] == w.seqs["install"][1]


def test_windows_skips_overrides(estate):
    store, w = estate
    r = _report(store)
    wins = r["overall"]["windows"]["windows"]
    assert [(x["window"], x["used"], x["runs"], x["overrideRuns"], x["outcomes"])
            for x in wins] == [("sat", 1, 2, 1, {"done": 1, "failed": 1})]
    starts = [w.seqs["runs"][0], w.seqs["runs"][2]]  # run.start records of the two runs
    assert wins[0]["records"]["seqs"] == starts
    skipped = {(s["status"], s["group"], s["reason"]): s["records"]["count"]
               for s in r["overall"]["windows"]["skipped"]}
    assert skipped == {("frozen", "web", "freeze q4-close"): 2,
                       ("closed", None, "not in an occurrence"): 1}
    ov = r["overall"]["overrides"]
    assert ov["count"] == 1 and ov["items"][0]["reason"] == "emergency CVE-2026-1234"
    assert ov["items"][0]["seq"] == w.seqs["override"][0]


def test_firmware_age(estate):
    store, w = estate
    r = _report(store)
    fw = r["overall"]["firmware"]
    assert [(f["component"], f["version"], f["hosts"], f["status"], f["ageDays"])
            for f in fw] == [("BIOS", "1.0", 1, {"outdated": 1}, 72)]  # since 2026-08-20
    assert fw[0]["records"]["seqs"] == w.seqs["fw"]


def test_revisions_and_chain(estate):
    store, w = estate
    r = _report(store)
    revs = [(v["revision"], v["records"]) for v in r["policyRevisions"]]
    assert [v for v, _ in revs] == [REV_A, REV_B]
    assert sum(n for _, n in revs) == r["period"]["records"]
    assert r["chain"]["intact"] is True
    # the whole log is verified, the record after the period included
    assert r["chain"]["through"] == w.seq and r["chain"]["records"] == w.seq
    assert r["headline"].startswith("Change log intact through record")


def test_group_scope(estate):
    store, _ = estate
    r = _report(store, group="db")
    assert [g["group"] for g in r["groups"]] == ["db"]
    pc = r["overall"]["patchCompliance"]
    assert (pc["hosts"], pc["unknown"]) == (1, 1)
    assert {e["host"] for e in r["overall"]["recurring"]} == {"db-1"}
    assert r["overall"]["overrides"]["count"] == 0  # the override was not about group db


def test_same_figures_on_both_backends(tmp_path, pg_cluster):
    """The SQL differs per dialect (JSON, NULL ordering, numeric types); the figures must
    not: the same log in SQLite and in PostgreSQL gives the same report."""
    import uuid

    from orchestrator.changelog.postgres import PostgresStore
    from orchestrator.changelog.sqlite import SqliteStore

    results = []
    for store in (SqliteStore(tmp_path / "state.db"),
                  PostgresStore(pg_cluster.database("t_" + uuid.uuid4().hex[:16]))):
        try:
            w = write_estate(store)
            # ties in every ordering: equal counts, equal runs, records without a group
            for day in ("26", "27"):
                w.add(f"2026-10-{day}T20:00:00", "skip", "frozen", group="db",
                      run=f"r-t{day}", reason="freeze q4-close")
            w.add("2026-10-28T03:00:00", "audit", "drift", host="orphan", group=None,
                  findings=[{"id": "x", "status": "drift"}])
            results.append(_report(store))
        finally:
            store.close()
    assert results[0] == results[1]


def test_broken_chain_said_first(tmp_path):
    from orchestrator.changelog.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    w = write_estate(store)
    bad = w.seqs["override"][0]
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("UPDATE records SET details = ? WHERE seq = ?",
                 ('{"reason":"nothing to see"}', bad))
    conn.commit()
    conn.close()
    r = _report(store)
    assert r["chain"]["intact"] is False and r["chain"]["brokenAt"] == bad
    assert r["headline"].startswith("WARNING: the change log is BROKEN at record")
    from orchestrator.compliance.build import build_report as again
    from orchestrator.reporting.report_html import report_html
    from orchestrator.reporting.report_markdown import report_markdown

    rep = again(store, since=SINCE, until=UNTIL, group=None, policies=None, store_name="t")
    assert report_markdown(rep).splitlines()[0].startswith("**WARNING: the change log is")
    assert 'class="banner broken"' in report_html(rep).split("<h1>")[0]


def test_empty_period(stores):
    store = stores()
    write_estate(store)
    r = _report(store, since=datetime(2025, 1, 1, tzinfo=UTC),
                until=datetime(2025, 2, 1, tzinfo=UTC))
    assert r["chain"]["intact"] is True  # the log itself holds: nothing falsely BROKEN
    assert r["period"]["records"] == 0
    pc = r["overall"]["patchCompliance"]
    assert (pc["hosts"], pc["percent"]) == (0, None)  # shown as n/a, never as 0 % or 100 %
    assert r["overall"]["patchTrend"] == [] and r["groups"] == []


def _tamper(stores, store, sql: str, args: tuple) -> None:
    """Change a stored row behind the store's back, as someone with database access could."""
    if stores.backend == "sqlite":
        conn = sqlite3.connect(stores.url()[len("sqlite:///"):])
        conn.execute(sql, args)
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(stores.url(), autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), args)


def test_key_twice_in_details_is_tampering(stores):
    """SQLite's JSON functions read the first of two equal keys, Python's the last: a
    forged value put in front of a record's details must break the chain, not pass it."""
    store = stores()
    w = write_estate(store)
    seq = w.seqs["install"][0]
    text = store.select("SELECT details FROM records WHERE seq = ?" if
                        stores.backend == "sqlite" else
                        "SELECT details FROM records WHERE seq = %s", (seq,))[0][0]
    _tamper(stores, store, "UPDATE records SET details = ? WHERE seq = ?",
            ('{"released":"2026-10-11",' + text[1:], seq))
    assert store.verify().ok is False
    r = _report(store)
    assert r["headline"].startswith(f"WARNING: the change log is BROKEN at record {seq}")


def test_record_moved_past_the_period_is_seen(stores):
    """A record's time can be edited: moving the period's last records past its end must
    not hide them behind an 'intact' headline."""
    store = stores()
    w = write_estate(store)
    seq = w.seqs["fw"][0]
    _tamper(stores, store, "UPDATE records SET time = ? WHERE seq = ?",
            ("2099-01-01T00:00:00.000000Z", seq))
    r = _report(store)
    assert r["chain"]["intact"] is False and r["chain"]["brokenAt"] == seq
    assert r["headline"].startswith("WARNING")


def test_nul_from_a_host_does_not_stop_reports(stores):
    """A host's output may hold NUL (stored as \\u0000); PostgreSQL's jsonb refuses it, so
    a report that cast details to jsonb would fail for the whole period."""
    store = stores()
    w = write_estate(store)
    w.add("2026-10-29T03:00:00", "audit", "drift", host="db-2", group="db", run="r-n",
          findings=[{"id": "file.content:/etc/motd", "status": "drift", "actual": "a\x00b",
                     "expected": "x"}])
    r = _report(store)
    assert r["chain"]["intact"] is True
    assert any(c["check"] == "file.content:/etc/motd" for c in r["overall"]["drift"]["byCheck"])


def test_non_json_details_give_a_broken_report_not_an_error(stores):
    store = stores()
    w = write_estate(store)
    seq = w.seqs["db-drift"][0]
    _tamper(stores, store, "UPDATE records SET details = ? WHERE seq = ?", ("{not json", seq))
    r = _report(store)
    assert r["headline"].startswith(f"WARNING: the change log is BROKEN at record {seq}")
    assert r["overall"]["patchCompliance"]["hosts"] == 3  # figures that could be computed
    assert any("not computed" in n for n in r["notes"])


def test_dates_in_the_zone_of_the_bounds(stores):
    """A period given in local time is shown in local time: the title's days, the trend's
    periods and days overdue are not moved to UTC days."""
    from datetime import timedelta, timezone

    store = stores()
    write_estate(store)
    tokyo = timezone(timedelta(hours=9))
    r = build_report(store, since=datetime(2026, 9, 1, tzinfo=tokyo),
                     until=datetime(2026, 11, 1, tzinfo=tokyo), group=None, policies=None,
                     store_name="t").to_json()
    assert r["period"]["lastDay"] == "2026-10-31"
    assert r["overall"]["patchTrend"][0]["from"].startswith("2026-09-01T00:00:00+09:00")
    assert r["overall"]["overduePatches"][0]["daysOverdue"] == 21


@pytest.mark.parametrize("forge", [
    lambda text: text.replace('"released":', '"rel\\u0065ased":', 1),  # SQLite misses it
    lambda text: text.replace(",", ", ", 1),  # a spelling this program never wrote
])
def test_details_not_in_the_written_form_are_tampering(stores, forge):
    store = stores()
    w = write_estate(store)
    seq = w.seqs["install"][0]
    mark = "?" if stores.backend == "sqlite" else "%s"
    text = store.select(f"SELECT details FROM records WHERE seq = {mark}", (seq,))[0][0]
    _tamper(stores, store, "UPDATE records SET details = ? WHERE seq = ?", (forge(text), seq))
    assert store.verify().ok is False and store.verify().broken_seq == seq


def test_details_stored_as_a_blob_are_tampering(tmp_path):
    from orchestrator.changelog.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    w = write_estate(store)
    seq = w.seqs["install"][0]
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("UPDATE records SET details = CAST(details AS BLOB) WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()
    assert store.verify().ok is False and store.verify().broken_seq == seq
