"""Store tests run against both backends: `stores("name")` opens (another connection to)
the store called name, SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.changelog.store import ChangeLogStore


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[Callable[..., ChangeLogStore]]:
    opened: list[ChangeLogStore] = []
    urls: dict[str, str] = {}

    def open_(name: str = "state") -> ChangeLogStore:
        if request.param == "sqlite":
            from orchestrator.changelog.sqlite import SqliteStore

            store: ChangeLogStore = SqliteStore(tmp_path / f"{name}.db")
        else:
            from orchestrator.changelog.postgres import PostgresStore

            if name not in urls:
                urls[name] = request.getfixturevalue("pg_cluster").database(
                    "t_" + uuid.uuid4().hex[:16])
            store = PostgresStore(urls[name])
        opened.append(store)
        return store

    open_.backend = request.param  # type: ignore[attr-defined]
    yield open_
    for s in opened:
        s.close()
