"""The PostgreSQL store against a real throwaway cluster: one chain from many processes,
connection loss, clear errors, and the CLI on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.changelog.postgres import PostgresStore
from orchestrator.changelog.record import Entry
from orchestrator.cli.main import main
from orchestrator.errors import StateError

WRITER = """
import os
import sys
from orchestrator.changelog.open import open_store
from orchestrator.changelog.record import Entry
store = open_store(os.environ["STATE_URL"])  # never in argv: other users can read it
for i in range(int(sys.argv[3])):
    store.append_many([Entry("r-" + sys.argv[2], "audit", "ok", "w", "x", f"h{i}")
                       for _ in range(1 + i % 3)])
store.close()
"""


def entry(i: int = 0) -> Entry:
    return Entry(run="r", action="audit", status="ok", actor="t", policy_revision="x",
                 host=f"h{i}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_appends_from_several_processes_keep_one_chain(backend: str, tmp_path: Path,
                                                       request) -> None:
    url = (f"sqlite:///{tmp_path / 'state.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    env = {**os.environ, "STATE_URL": url}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, "-", str(n), "40"], env=env)
             for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    from orchestrator.changelog.open import open_store

    store = open_store(url)
    try:
        result = store.verify()
        assert result.ok, result.reason
        assert result.checked == 4 * sum(1 + i % 3 for i in range(40))
        seqs = [r.seq for r in store.records()]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        store.close()


def test_a_lost_connection_keeps_what_was_written(pg_url: str, pg_cluster) -> None:
    store = PostgresStore(pg_url)
    first = store.append_many([entry(1), entry(2)])
    pid = store._conn.info.backend_pid
    killer = PostgresStore(pg_url)
    killer._query("SELECT pg_terminate_backend(%s)", (pid,))
    killer.close()
    with pytest.raises(StateError) as err:
        store.append(entry(3))
    message = err.value.message
    assert "lost the PostgreSQL store" in message and "\n" not in message
    assert "records written before are kept" in message
    assert pg_cluster.password not in message and "***" in message
    # the next operation reconnects (a restarted server, a failover)
    third = store.append(entry(4))
    assert third.seq == 3 and third.prevHash == first[-1].hash
    store.close()
    again = PostgresStore(pg_url)
    assert [r.hash for r in again.records()] == [r.hash for r in first] + [third.hash]
    assert again.verify().ok
    again.close()


def test_a_database_not_in_utf8_is_refused(pg_cluster) -> None:
    admin = PostgresStore(pg_cluster.url("postgres"))
    admin._query("CREATE DATABASE t_ascii ENCODING 'SQL_ASCII' TEMPLATE template0")
    admin.close()
    with pytest.raises(StateError, match="encoding is SQL_ASCII, not UTF8"):
        PostgresStore(pg_cluster.url("t_ascii"))


def test_verify_checks_new_rows_from_their_text(pg_url: str, monkeypatch) -> None:
    """The fast path is taken for rows written now (none is parsed to be verified)."""
    from orchestrator.changelog import postgres

    store = PostgresStore(pg_url)
    store.append_many([entry(i) for i in range(50)])
    parsed: list[int] = []
    real = postgres.record_from_row
    monkeypatch.setattr(postgres, "record_from_row",
                        lambda row: parsed.append(row[0]) or real(row))
    assert store.verify().ok and parsed == []
    store._query("UPDATE records SET status = 'changed' WHERE seq = 7")
    result = store.verify()
    assert not result.ok and result.broken_seq == 7 and parsed == [7]
    store.close()


@pytest.mark.parametrize(("url", "words"), [
    ("postgresql://orch:s3cret@127.0.0.1:1/nodb", "cannot connect to the PostgreSQL store"),
    ("postgresql://orch:s3cret@127.0.0.1:notaport/db", "invalid integer value"),
])
def test_bad_servers_are_one_line_errors(url: str, words: str) -> None:
    with pytest.raises(StateError) as err:
        PostgresStore(url)
    assert words in err.value.message and "s3cret" not in err.value.message
    assert "\n" not in err.value.message


def test_the_cli_records_and_verifies_on_postgresql(pg_url: str, tmp_path: Path, capsys,
                                                    monkeypatch) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "w.yml").write_text(textwrap.dedent("""\
        apiVersion: orchestrator/v1
        kind: Window
        metadata: {name: nightly}
        spec:
          schedule: {cron: "0 22 * * *"}
          timezone: UTC
          duration: 15m
        """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_STATE", pg_url)
    # 12:00 UTC: the nightly window is closed, which is a `skip` record
    from datetime import datetime

    from orchestrator.maintenance import window_run

    monkeypatch.setattr(window_run, "utc_now",
                        lambda: datetime.fromisoformat("2026-12-01T12:00:00+00:00"))
    assert main(["--policies", "policies", "run-window", "nightly"]) == 3
    capsys.readouterr()
    assert main(["log", "verify"]) == 0
    assert "change log intact: 1 records" in capsys.readouterr()[0]
    assert main(["--format", "json", "log"]) == 0
    assert '"action": "skip"' in capsys.readouterr()[0]
