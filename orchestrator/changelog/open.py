"""Open the store named by a URL: sqlite:///PATH (default) or postgresql://..."""

from __future__ import annotations

from pathlib import Path

from orchestrator.changelog.store import ChangeLogStore
from orchestrator.errors import StateError
from orchestrator.redact import redact


def open_store(url: str) -> ChangeLogStore:
    if url.startswith("sqlite:///"):
        from orchestrator.changelog.sqlite import SqliteStore

        return SqliteStore(Path(url[len("sqlite:///"):]))
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrator.changelog.postgres import PostgresStore

        return PostgresStore(url)
    raise StateError(f"state {redact(url)!r}: unknown store; use sqlite:///PATH or "
                     "postgresql://...")
