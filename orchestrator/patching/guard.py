"""What every rollout (patches, firmware) checks before and during host work: the group's
lease (one run works on a group at a time; a dead run's lease is taken over and recorded), why
no new host work may start now (the failure budget, the cutoff, a freeze), and what ends work in
flight (the window's end with `onEnd: cancel`, the loss of the lease)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError
from orchestrator.patching.rollout import FailureBudget
from orchestrator.policy.model import PolicySet


@contextmanager
def group_lease(ctx: RunContext, key: str, group: str, doing: str, longest: float
                ) -> Iterator[tuple[Any, str | None]]:
    """Hold lease `key` (e.g. `patch-apply:web`) with a heartbeat while the block runs:
    yields (heartbeat, the run whose dead lease was taken over or None). Another live holder
    is an OrchestratorError naming it; `doing` says what it does ("patched")."""
    from orchestrator.changelog.lease import Heartbeat, claim

    got = claim(ctx.store, key, ctx.run_id,
                datetime.now(UTC) + timedelta(seconds=2 * longest))
    if not got.taken:
        held = got.held
        raise OrchestratorError(
            f"group {group} is being {doing} by run {held.holder if held else '?'}"
            + (f" (process {held.owner.pid} on {held.owner.node})"
               if held is not None and held.owner is not None else "")
            + f"; wait for it to finish (no host is {doing} by two runs at once)")
    if got.held is not None:
        ctx.record("lease.takeover", "done", group=group, lease=key,
                   previous=got.held.holder, reason=got.gone,
                   lastHeartbeat=got.held.heartbeat)
    beat = Heartbeat(ctx.store.url, key, ctx.run_id).start()
    try:
        yield beat, (got.held.holder if got.held is not None else None)
    finally:
        beat.stop()
        if not beat.lost:
            try:
                ctx.store.release_lease(key, ctx.run_id)
            except OrchestratorError:
                pass  # left running: the next run judges this process gone and takes it over


def stop_reason(ps: PolicySet, group: str, occurrence: Any, override: str | None,
                budget: FailureBudget, at: datetime) -> tuple[str, str] | None:
    """Why no new host work may start now: the budget, the cutoff, a freeze (overrides only
    ignore the window, never the budget)."""
    from orchestrator.windows.check import check_group

    if budget.exhausted:
        return "budget-exhausted", f"failure budget exhausted: {budget.describe()}"
    if override is not None:
        return None
    if occurrence is not None and at >= occurrence.cutoff:
        return "deferred", (f"the cutoff of {occurrence.id} passed at "
                            f"{occurrence.local_iso(occurrence.cutoff)}; no new work starts")
    state = check_group(ps, group, at)
    if not state.open:
        return "deferred", state.reason
    return None


class Cancel:
    """What ends work in flight (polled by ansible-runner and the Windows waits): the window's
    end with `onEnd: cancel`, and always the loss of the group's lease (another run took it
    over: two runs must not work on one host). `reason` says which."""

    def __init__(self, occurrence: Any, at_end: bool, now: Callable[[], datetime],
                 lease: Any) -> None:
        self.occurrence, self.at_end, self.now, self.lease = occurrence, at_end, now, lease

    def __call__(self) -> bool:
        return (self.lease is not None and self.lease.lost) or (
            self.at_end and self.now() >= self.occurrence.end)

    @property
    def reason(self) -> str:
        if self.lease is not None and self.lease.lost:
            return "canceled: another run took over the group's lease"
        return "canceled at the end of the window (onEnd: cancel)"


def canceller(occurrence: Any, on_end: str, now: Callable[[], datetime], lease: Any = None
              ) -> Cancel | None:
    at_end = occurrence is not None and on_end == "cancel"
    if not at_end and lease is None:
        return None
    return Cancel(occurrence, at_end, now, lease)
