"""The explicit context passed to every command and run (no module globals)."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.changelog.record import Entry
from orchestrator.config import Config

if TYPE_CHECKING:
    from orchestrator.changelog.store import ChangeLogStore
    from orchestrator.hostpool import HostPool
    from orchestrator.inventory.model import Inventory
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

    @property
    def cache_dir(self) -> Path:
        """Private cache folder: beside the SQLite state, else in the config folder."""
        state = self.config.state
        if state.startswith("sqlite:///"):
            return Path(state[len("sqlite:///"):]).parent / "cache"
        return self.config.base_dir / ".orchestrator" / "cache"

    def inventory(self) -> Inventory:
        """The configured inventory, parsed by ansible-core (cached for static files)."""
        from orchestrator.inventory.loader import load_inventory

        return load_inventory(self.require_inventory(), cache_dir=self.cache_dir)

    def require_inventory(self) -> Path:
        from orchestrator.errors import ConfigError

        if self.config.inventory is None:
            raise ConfigError("no inventory configured; set 'inventory' in orchestrator.yml, "
                              "ORCHESTRATOR_INVENTORY, or pass --inventory PATH")
        return self.config.inventory

    def run_context(self, occurrence: str | None = None, run_id: str | None = None) -> RunContext:
        """A new run: its id, actor, policy revision and where to record."""
        from orchestrator.transports import TransportSettings

        ssh = self.config.ssh
        return RunContext(
            run_id=run_id or new_run_id(),
            actor=self.actor,
            policy_revision=self.policy_revision,
            store=self.store,
            settings=TransportSettings(known_hosts=ssh.known_hosts, host_keys=ssh.host_keys),
            forks=self.config.forks,
            inventory_path=self.config.inventory,
            playbooks=self.config.playbooks,
            occurrence=occurrence,
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


@dataclass(frozen=True)
class RunContext:
    """Everything a run needs, passed explicitly."""

    run_id: str
    actor: str
    policy_revision: str
    store: ChangeLogStore
    settings: Any  # TransportSettings / SshSettings
    forks: int
    inventory_path: Path | None
    playbooks: Path
    occurrence: str | None = None
    pool: HostPool | None = None  # None: a LocalPool of `forks` threads

    def entry(self, action: str, status: str, host: str | None = None,
              group: str | None = None, **details: Any) -> Entry:
        """A record of this run, not yet written (see `record_all`)."""
        return Entry(run=self.run_id, action=action, status=status, actor=self.actor,
                     policy_revision=self.policy_revision, host=host, group=group,
                     occurrence=self.occurrence, details=details)

    def record(self, action: str, status: str, host: str | None = None,
               group: str | None = None, **details: Any) -> None:
        self.store.append(self.entry(action, status, host, group, **details))

    def host_pool(self) -> HostPool:
        """Where host work runs: the pool given, else threads here bounded by forks."""
        from orchestrator.hostpool import LocalPool

        return self.pool if self.pool is not None else LocalPool(self.forks)

    def record_all(self, entries: list[Entry]) -> None:
        """Write `entries` in one transaction (records that are ready together)."""
        self.store.append_many(entries)


