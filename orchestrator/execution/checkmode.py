"""Run a baseline's Ansible playbook in check mode; each changed task is a finding."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.execution.playbook import run_playbook


@dataclass
class CheckModeResult:
    """Per host: the tasks that would change, tasks that failed, and unreachable hosts."""

    changed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    ok_hosts: set[str] = field(default_factory=set)
    skipped_hosts: set[str] = field(default_factory=set)
    rc: int | None = None
    broken: str | None = None  # the playbook could not run at all

    def reached(self, host: str) -> bool:
        return bool(host in self.ok_hosts or host in self.skipped_hosts
                    or host in self.changed or host in self.failed or host in self.unreachable)


class EventCollector:
    """ansible-runner event_handler: reads events, never stdout."""

    def __init__(self) -> None:
        self.result = CheckModeResult()

    def __call__(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event")
        task = str(data.get("task") or "unnamed task")
        res = data.get("res") or {}
        if kind == "runner_on_ok" and host:
            self.result.ok_hosts.add(host)
            if res.get("changed"):
                diff = res.get("diff")
                self.result.changed.setdefault(host, []).append(
                    {"task": task, "diff": _diff_text(diff)})
        elif kind == "runner_on_failed" and host and data.get("ignore_errors"):
            self.result.ok_hosts.add(host)
        elif kind == "runner_on_failed" and host:
            msg = str(res.get("msg") or "failed").splitlines()[0][:300]
            self.result.failed.setdefault(host, []).append(f"{task}: {msg}")
        elif kind == "runner_on_skipped" and host:
            self.result.skipped_hosts.add(host)
        elif kind == "runner_on_unreachable" and host:
            self.result.unreachable[host] = str(res.get("msg") or "unreachable").splitlines()[0]
        return False  # ansible-runner: do not keep the event on disk


def _diff_text(diff: Any) -> str | None:
    items = diff if isinstance(diff, list) else [diff] if diff else []
    parts = []
    for d in items:
        if isinstance(d, dict):
            for key in ("prepared", "after"):
                if isinstance(d.get(key), str):
                    parts.append(d[key][:500])
                    break
    return "\n".join(parts) or None


def run_check_mode(playbook: Path, inventory: Path,
                   hosts: Mapping[str, Mapping[str, Any]] | Iterable[str], *,
                   known_hosts: Sequence[Path], forks: int, strict: bool = True,
                   timeout: int = 1800) -> CheckModeResult:
    """ansible-playbook --check --diff on `hosts` (name -> inventory variables) through
    ansible-runner; `known_hosts` are every file OpenSSH may trust host keys from.

    Each host runs over the connection plugin the connection table gives it, forced as an
    extra variable (so neither the inventory nor a play's `connection:` can pick another),
    with the host-key settings of every plugin forced too (workspace.host_key_vars); one
    ansible-runner run per plugin. Whatever the outcome, no process of the run outlives it
    (a timeout ends ansible-playbook's workers and ssh processes as well)."""
    collector = EventCollector()
    outcome = run_playbook(playbook, inventory, hosts, event_handler=collector,
                           known_hosts=known_hosts, forks=forks, strict=strict, check=True,
                           timeout=timeout)
    collector.result.unreachable.update(
        {h: "check mode " + why for h, why in outcome.refused.items()})
    if outcome.timed_out:
        collector.result.broken = (f"check mode did not finish within {timeout} s; "
                                   "ansible-playbook and its processes were ended")
    collector.result.rc = outcome.rc
    return collector.result
