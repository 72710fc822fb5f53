"""`log migrate --to URL`: an SQLite log copied into PostgreSQL, hashes verified on both
sides; a broken source or a non-empty target copies nothing."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from orchestrator.changelog.postgres import PostgresStore
from orchestrator.changelog.record import Entry
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main


def _fill(path: Path, n: int) -> list[str]:
    store = SqliteStore(path)
    recs = store.append_many([Entry("r-1", "audit", "drift", "t", "abc+dirty", f"h{i}", "web",
                                    None, {"findings": [{"id": "sysctl:x", "actual": 1.5}],
                                           "note": "naïve – ünïcode", "n": i})
                              for i in range(n)])
    store.first_seen("web", "h1", [("openssl", "3.0.2")], date(2026, 11, 3))
    store.close()
    return [r.hash for r in recs]


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "state").mkdir(mode=0o700)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    return tmp_path


def test_sqlite_log_into_postgresql(cwd: Path, pg_url: str, pg_cluster, capsys) -> None:
    hashes = _fill(cwd / "state" / "state.db", 12_000)  # more than one batch
    assert main(["log", "migrate", "--to", pg_url]) == 0
    out = capsys.readouterr()[0]
    assert "migrated 12000 records and 1 first-seen dates" in out
    assert f"anchor 12000:{hashes[-1]}" in out and pg_cluster.password not in out
    target = PostgresStore(pg_url)
    assert [r.hash for r in target.records()] == hashes
    assert target.first_seen_rows() == [("web", "h1", "openssl", "3.0.2", "2026-11-03")]
    # the planner has statistics at once (without, the first reports ran 5x slower)
    assert target.select("SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
                         "FROM pg_stat_user_tables WHERE relname = 'records'") == [(True,)]
    target.close()
    assert main(["--state", pg_url, "log", "verify", "--expect",
                 f"12000:{hashes[-1]}"]) == 0
    # the new store goes on from there
    assert main(["--state", pg_url, "--format", "json", "log", "--action", "audit"]) == 0
    last = json.loads(capsys.readouterr()[0].splitlines()[-1])
    assert last["details"]["note"] == "naïve – ünïcode" and last["hash"] == hashes[-1]
    # a second migration into the same store copies nothing
    assert main(["log", "migrate", "--to", pg_url]) == 1
    assert "already holds records" in capsys.readouterr()[1]


def test_a_broken_log_is_not_migrated(cwd: Path, pg_url: str, capsys) -> None:
    _fill(cwd / "state" / "state.db", 5)
    db = sqlite3.connect(cwd / "state" / "state.db")
    db.execute("UPDATE records SET status = 'compliant' WHERE seq = 3")
    db.commit()
    db.close()
    assert main(["log", "migrate", "--to", pg_url]) == 1
    err = capsys.readouterr()[1]
    assert "not intact" in err and len(err.strip().splitlines()) == 1
    target = PostgresStore(pg_url)
    assert list(target.records()) == []
    target.close()


def test_migrate_needs_a_log(cwd: Path, pg_url: str, capsys) -> None:
    assert main(["log", "migrate", "--to", pg_url]) == 1
    assert "no change log to migrate" in capsys.readouterr()[1]
