"""A PostgreSQL store made by an earlier version lacks an index this one adds: a role with
rights on the tables only keeps working (the index is left to the DBA, with a warning),
and an owner gets the index made."""

from __future__ import annotations

import secrets
import uuid

import psycopg
import pytest

from orchestrator.changelog.postgres import PostgresStore
from orchestrator.changelog.record import Entry


def _entry(i: int) -> Entry:
    return Entry(run="r-1", action="audit", status="compliant", actor="a",
                 policy_revision="c" * 40, host=f"h{i}", group="web", details={"n": i})


@pytest.fixture
def old_store(pg_cluster):
    """A store as an earlier version left it: tables and records, no records_report."""
    url = pg_cluster.database("t_" + uuid.uuid4().hex[:16])
    PostgresStore(url).append_many([_entry(i) for i in range(3)])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX records_report")
    return url


def _index(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass('records_report')").fetchone()[0] is not None


def test_a_role_with_table_rights_only_keeps_working(old_store, capsys):
    role, password = "app_" + uuid.uuid4().hex[:8], secrets.token_urlsafe(12)
    with psycopg.connect(old_store, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON records, leases, "
                     f"patch_first_seen TO {role}")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
    head, tail = old_store.split("://", 1)
    url = f"{head}://{role}:{password}@{tail.split('@', 1)[1]}"
    store = PostgresStore(url)
    store.append(_entry(9))
    assert store.verify().ok and store.verify().checked == 4
    store.close()
    err = capsys.readouterr().err
    assert "index records_report is missing and could not be created" in err
    assert password not in err
    assert not _index(old_store)


def test_an_owner_gets_the_new_index(old_store, capsys):
    PostgresStore(old_store).close()
    assert _index(old_store)
    assert capsys.readouterr().err == ""
