"""Host work in parallel: the executor interface every run uses (audit, patch scan, ...).

    pool = LocalPool(forks=20)
    for finished in pool.run(work, jobs):      # groups of hosts that finished together
        ctx.record_all([...finished...])       # one change-log transaction per group

`work(job)` takes and returns plain, picklable data and never raises for host trouble (an
unreachable host is a result); an exception it does raise (a bug) comes back as the result, so
one host cannot cost the others. Hosts that finish within `group_window` seconds of each other
come back together, so that their records share one write; no result waits longer than that.
A site-worker executor (Celery) implements the same `run`, so that what the tests prove for the
local pool holds for the distributed path. The standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

J = TypeVar("J")
R = TypeVar("R")

GROUP_WINDOW = 0.1  # seconds a finished host's result may wait for others to share its write


@dataclass(frozen=True)
class Finished(Generic[J, R]):
    """One host's outcome: its position in the job list, the job, and the result or the
    exception `work` raised."""

    index: int
    job: J
    result: R | None
    error: BaseException | None = None


class HostPool(Protocol):
    def run(self, work: Callable[[J], R], jobs: Sequence[J]) -> Iterator[list[Finished[J, R]]]:
        """Yield groups of finished hosts (each group in job order) until every job is done."""
        ...


class LocalPool:
    """Threads on this machine, at most `forks` hosts at a time."""

    def __init__(self, forks: int, group_window: float | None = None) -> None:
        self.forks = max(1, forks)
        self.group_window = GROUP_WINDOW if group_window is None else group_window

    def run(self, work: Callable[[J], R], jobs: Sequence[J]) -> Iterator[list[Finished[J, R]]]:
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=min(self.forks, len(jobs))) as pool:
            futures: dict[Future, tuple[int, J]] = {
                pool.submit(work, job): (i, job) for i, job in enumerate(jobs)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                if pending and self.group_window > 0:
                    more, pending = wait(pending, timeout=self.group_window,
                                         return_when=ALL_COMPLETED)
                    done |= more
                group = []
                for fut in sorted(done, key=lambda f: futures[f][0]):
                    i, job = futures[fut]
                    exc = fut.exception()
                    group.append(Finished(i, job, None if exc else fut.result(), exc))
                yield group
