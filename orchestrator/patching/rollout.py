"""Rollout plans (SPEC section 1, PatchPolicy.rollout). Pure.

`batches(hosts, serial)`: batch sizes are counts or "N%" of all the rollout's hosts, rounded up
and at least 1; the last size repeats until every host is placed. Hosts keep their order and
each appears once (a repeated name is placed at its first position only).

`FailureBudget(max_failures, total)`: a count, or "N%" of all the rollout's hosts rounded down
("10%" of 5 hosts is 0: the first failure stops the rollout). It counts over the whole rollout,
not per batch; a host counts once however often it is spent. The budget is exhausted when the
failures exceed it: with `maxFailures: 2` the third failed host stops the rollout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.errors import PolicyError

_PERCENT = re.compile(r"(\d{1,3})%")


def _percent(value: str, what: str, lowest: int) -> int:
    m = _PERCENT.fullmatch(value.strip())
    if not m or not lowest <= int(m.group(1)) <= 100:
        raise PolicyError([f"{what} {value!r}: expected a count or a percentage {lowest}%..100%"])
    return int(m.group(1))


def _batch_size(spec: int | str, total: int) -> int:
    if isinstance(spec, str):
        pct = _percent(spec, "rollout serial entry", 1)
        return (total * pct + 99) // 100  # rounded up: at least 1 when there are hosts
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
        raise PolicyError([f"rollout serial entry {spec!r}: expected a count >= 1 or 'N%'"])
    return spec


def batch_sizes(total: int, serial: Sequence[int | str]) -> list[int]:
    """Sizes of the batches for `total` hosts; they add up to `total` exactly."""
    if not serial:
        raise PolicyError(["rollout serial is empty: expected at least one batch size"])
    per_entry = [_batch_size(s, total) for s in serial]  # checks every entry, even unused ones
    sizes: list[int] = []
    placed = 0
    while placed < total:
        # max(1, ...): every batch places a host, so the loop ends whatever an entry says
        n = max(1, min(per_entry[min(len(sizes), len(per_entry) - 1)], total - placed))
        sizes.append(n)
        placed += n
    return sizes


def batches(hosts: Sequence[str], serial: Sequence[int | str]) -> list[list[str]]:
    """The hosts, in order, cut into batches as `serial` says."""
    unique = list(dict.fromkeys(hosts))
    out: list[list[str]] = []
    pos = 0
    for n in batch_sizes(len(unique), serial):
        out.append(unique[pos : pos + n])
        pos += n
    return out


class FailureBudget:
    """How many hosts may fail before the rollout stops, and who spent it."""

    def __init__(self, max_failures: int | str, total: int) -> None:
        if total < 0:
            raise ValueError("total hosts must not be negative")
        self.max_failures = max_failures
        self.total = total
        if isinstance(max_failures, str):
            self.budget = total * _percent(max_failures, "rollout maxFailures", 0) // 100
        elif isinstance(max_failures, bool) or not isinstance(max_failures, int):
            raise PolicyError([f"rollout maxFailures {max_failures!r}: expected a count or 'N%'"])
        elif max_failures < 0:
            raise PolicyError([f"rollout maxFailures {max_failures}: must not be negative"])
        else:
            self.budget = max_failures
        self._spent: dict[str, str] = {}

    def spend(self, host: str, reason: str) -> bool:
        """Count a failed host (once). Returns whether the budget is now exhausted."""
        self._spent.setdefault(host, reason)
        return self.exhausted

    @property
    def failures(self) -> int:
        return len(self._spent)

    @property
    def exhausted(self) -> bool:
        return self.failures > self.budget

    @property
    def remaining(self) -> int:
        """Failures still allowed before the rollout stops (0 once exhausted)."""
        return max(0, self.budget - self.failures)

    @property
    def spent_by(self) -> list[tuple[str, str]]:
        """(host, reason) of every failed host, in the order they failed."""
        return list(self._spent.items())

    def describe(self) -> str:
        """One line: the budget, the failures, and who spent it."""
        of = (
            f" ({self.max_failures} of {self.total} hosts)"
            if isinstance(self.max_failures, str)
            else ""
        )
        state = "exhausted" if self.exhausted else f"{self.remaining} left"
        who = "; ".join(f"{h}: {' '.join(r.split())}" for h, r in self._spent.items())
        return (
            f"failure budget {self.budget}{of}: {self.failures} failed, {state}"
            + (f" ({who})" if who else "")
        )
