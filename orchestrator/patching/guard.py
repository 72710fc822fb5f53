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


def rollout_groups(ps: PolicySet, inv: Any, group: str) -> list[str]:
    """`group` and every other group with a patch or firmware policy that shares a host with
    it, sorted: the groups whose rollouts must not run at the same time as this one."""
    mine = {h.name for h in inv.members(ps.groups[group])}
    out = {group}
    for g in ps.groups.values():
        if g.name != group and (g.patch_policy or g.firmware_policy) \
                and mine & {h.name for h in inv.members(g)}:
            out.add(g.name)
    return sorted(out)


class Beats:
    """The heartbeats of several leases, seen as one: healthy while all are, lost when any
    is."""

    def __init__(self, beats: list[Any]) -> None:
        self.beats = beats

    @property
    def lost(self) -> bool:
        return any(b.lost for b in self.beats)

    @property
    def healthy(self) -> bool:
        return all(b.healthy for b in self.beats)

    @property
    def problem(self) -> str:
        return next((f"{b.key}: {b.problem}" for b in self.beats if b.problem), "")

    def stop(self) -> None:
        for b in self.beats:
            b.stop()


class LeaseBusy(OrchestratorError):
    """A rollout lease is held by another live run: this group waits (run-window records it
    and goes on with its other groups)."""


@contextmanager
def group_lease(ctx: RunContext, groups: list[str], group: str, doing: str, longest: float
                ) -> Iterator[tuple[Beats, str | None]]:
    """Hold the rollout lease (`rollout:GROUP`) of each of `groups` (`rollout_groups`: this
    group and those sharing a host with it) with heartbeats while the block runs, so that no
    two rollouts (patches or firmware, of this group or of one sharing a host) work at once.
    Yields (the heartbeats, the run whose dead lease of `group` was taken over, or None).
    A lease held by a live run is an OrchestratorError naming it; `doing` says what this run
    does ("patched"). The other groups' leases are claimed first (sorted), this group's last;
    all are given back if one is refused (LeaseBusy)."""
    from orchestrator.changelog.lease import Claim, Heartbeat, claim

    held: list[tuple[str, Any]] = []
    dead_run = None
    try:
        # the other groups' leases first: a refusal there comes before this group's lease is
        # taken over from a dead run (whose in-flight hosts this run must then finish)
        for g in [*sorted(set(groups) - {group}), group]:
            key = f"rollout:{g}"
            got = claim(ctx.store, key, ctx.run_id,
                        datetime.now(UTC) + timedelta(seconds=2 * longest))
            if not got.taken and got.held is not None and got.held.holder == ctx.run_id:
                got = Claim(True)  # this run's own (a release that failed earlier)
            if not got.taken:
                other = got.held
                what = f"group {group}" if g == group else \
                    f"group {g} (it shares hosts with {group})"
                raise LeaseBusy(
                    f"{what} is being worked on by run {other.holder if other else '?'}"
                    + (f" (process {other.owner.pid} on {other.owner.node})"
                       if other is not None and other.owner is not None else "")
                    + f"; wait for it to finish (no host is {doing} while another run works "
                      "on it)")
            if got.held is not None:
                ctx.record("lease.takeover", "done", group=g, lease=key,
                           previous=got.held.holder, reason=got.gone,
                           lastHeartbeat=got.held.heartbeat)
                if g == group:
                    dead_run = got.held.holder
            held.append((key, Heartbeat(ctx.store.url, key, ctx.run_id).start()))
        beats = Beats([b for _, b in held])
        yield beats, dead_run
    finally:
        for key, beat in reversed(held):
            beat.stop()
            if not beat.lost:
                try:
                    ctx.store.release_lease(key, ctx.run_id)
                except OrchestratorError:
                    pass  # left running: the next run judges this process gone, takes it over


def open_for_work(ctx: RunContext, ps: PolicySet, group: str, *, override: str | None,
                  occurrence: Any, check: bool, now: Callable[[], datetime], command: str
                  ) -> tuple[Any, str | None]:
    """How every rollout starts: an override is recorded first; without one (and unless a
    run-window gave the occurrence, or this is only a check) the group must be open by the
    real clock now, else `skip closed` is recorded. (occurrence to work in, closed reason)."""
    from orchestrator.windows.check import check_group

    if override is not None and not check:
        ctx.record("override", "ignore-window", group=group, reason=override, command=command)
    if occurrence is None and override is None and not check:
        state = check_group(ps, group, now())
        if not state.open:
            ctx.record("skip", "closed", group=group, reason=state.reason)
            return None, state.reason
        occurrence = state.occurrence
    return occurrence, None


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
