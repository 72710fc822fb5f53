"""Run a baseline's Ansible playbook in check mode; each changed task is a finding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.execution.workspace import Workspace, host_key_vars


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


def run_check_mode(playbook: Path, inventory: Path, hosts: Iterable[str], *,
                   known_hosts: Sequence[Path], forks: int, strict: bool = True,
                   timeout: int = 1800) -> CheckModeResult:
    """ansible-playbook --check --diff on `hosts` through ansible-runner; `known_hosts` are
    every file OpenSSH may trust host keys from."""
    import ansible_runner

    if not playbook.is_file():
        raise OrchestratorError(f"{playbook}: playbook not found")
    collector = EventCollector()
    with Workspace() as ws:
        runner = ansible_runner.run(
            private_data_dir=str(ws.path),
            playbook=str(playbook.resolve()),
            inventory=str(Path(inventory).resolve()),
            limit=",".join(sorted(hosts)),
            forks=forks,
            cmdline="--check --diff",
            envvars=ws.env(known_hosts, strict),
            extravars=host_key_vars(known_hosts, strict),
            event_handler=collector,
            quiet=True,
            timeout=timeout,
        )
        collector.result.rc = runner.rc
    return collector.result
