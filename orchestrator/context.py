"""The explicit context passed to every command and run (no module globals)."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from orchestrator.config import Config

if TYPE_CHECKING:
    from orchestrator.changelog.store import ChangeLogStore
    from orchestrator.policy.model import PolicySet


def default_actor() -> str:
    """Who acts: ORCHESTRATOR_ACTOR (a pipeline sets it), else user@host."""
    actor = os.environ.get("ORCHESTRATOR_ACTOR")
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"r-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class AppContext:
    """What a command needs: settings and lazily opened resources."""

    config: Config
    output_format: str = "text"
    verbose: bool = False
    quiet: bool = False
    progress: bool = True
    actor: str = field(default_factory=default_actor)

    @cached_property
    def policies(self) -> PolicySet:
        from orchestrator.policy.loader import load_policies

        return load_policies(self.config.policies)

    @cached_property
    def store(self) -> ChangeLogStore:
        from orchestrator.changelog.open import open_store

        return open_store(self.config.state)

    @cached_property
    def policy_revision(self) -> str:
        from orchestrator.changelog.revision import policy_revision

        return policy_revision(self.config.policies)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
