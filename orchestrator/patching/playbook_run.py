"""One rollout batch's playbook run, as patch and firmware rollouts both do it: the hosts'
timeout variables checked first (a bad one fails that host, nothing done), ansible-runner with
the run's host-key policy, and what the run's end says about each host (refused, canceled
before its work started, timed out) written into the rollout's event handler."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError, StateError
from orchestrator.inventory.model import Inventory
from orchestrator.patching.outcomes import one_line


class RolloutEvents(Protocol):
    failures: dict[str, str]
    seen: set[str]

    def __call__(self, event: dict[str, Any]) -> bool: ...

    def not_started(self, host: str, reason: str, status: str | None = None) -> None: ...


def timeout_vars_problem(host_vars: Mapping[str, Any], limits: Mapping[str, int]) -> str | None:
    """What is wrong with a host's timeout variables (`limits`: variable -> most seconds), or
    None when each is unset or a whole number of seconds in range."""
    for var, most in limits.items():
        value = host_vars.get(var)
        if value is None:
            continue
        text = str(value).strip()
        if isinstance(value, bool) or not isinstance(value, int | str) \
                or not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= most:
            return (f"inventory variable {var} {one_line(value)[:40]!r} is not a number of "
                    f"seconds 1..{most}; fix it in the host's or group's variables")
    return None


def run_batch_playbook(ctx: RunContext, inv: Inventory, playbook: Path, hosts: list[str],
                       events: RolloutEvents, *, limits: Mapping[str, int],
                       extravars: Any, cancel: Any, timeout: int, check: bool = False,
                       controller: bool = False) -> None:
    """Run `playbook` on `hosts` through ansible-runner with `events` as its event handler;
    `extravars(hosts)` gives the extra variables for the hosts that passed their checks."""
    from orchestrator.execution.playbook import known_hosts_files, run_playbook

    if ctx.inventory_path is None:
        for h in hosts:
            events.failures[h] = "no inventory file to give ansible-runner"
        return
    bad = {h: why for h in hosts if (why := timeout_vars_problem(inv.hosts[h].vars, limits))}
    for h, why in bad.items():
        events.failures[h] = f"{why}; nothing was done"
    hosts = [h for h in hosts if h not in bad]
    if not hosts:
        return
    host_vars = {h: inv.hosts[h].vars for h in hosts}
    strict = getattr(ctx.settings, "host_keys", "strict") == "strict"
    lost: list[StateError] = []

    def handler(event: dict[str, Any]) -> bool:
        """`events`, but a change log that cannot be written (a lost database) neither
        stops the playbook half-way through its hosts nor passes for a host's failure: the
        playbook runs to its end, then the run stops with that error."""
        try:
            return events(event)
        except StateError as exc:
            lost.append(exc)
            return False

    try:
        outcome = run_playbook(
            playbook, ctx.inventory_path, host_vars, event_handler=handler,
            known_hosts=known_hosts_files(ctx.settings, host_vars), forks=ctx.forks,
            strict=strict, check=check, timeout=timeout, extravars=extravars(hosts),
            cancel=cancel, controller=controller)
    except OrchestratorError as exc:
        for h in hosts:
            events.failures[h] = exc.message
        return
    if lost:
        raise lost[0]
    for h, why in outcome.refused.items():
        events.failures[h] = why
    if outcome.canceled:
        why = getattr(cancel, "reason", "canceled")
        for h in hosts:
            if h in events.seen:
                events.failures.setdefault(h, why)
            else:  # canceled before anything reached it: deferred, goes first next time
                events.not_started(h, f"{why} before its work started")
    if outcome.timed_out:
        for h in hosts:
            events.failures.setdefault(h, f"the playbook did not finish in {timeout} s")
