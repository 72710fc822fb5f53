"""The local host pool: every job once, at most `forks` at a time, exceptions as results,
hosts that finish together handed back together."""

from __future__ import annotations

import threading
import time

from orchestrator.hostpool import LocalPool


def test_every_job_once_bounded_by_forks_and_errors_returned() -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        if n == 3:
            raise ValueError("host 3 broke")
        return n * 10

    out = [f for group in LocalPool(forks=3, group_window=0).run(work, list(range(10)))
           for f in group]
    assert sorted(f.index for f in out) == list(range(10))
    assert peak == 3
    broken = [f for f in out if f.error is not None]
    assert [(f.job, str(f.error), f.result) for f in broken] == [(3, "host 3 broke", None)]
    assert {f.job: f.result for f in out if f.error is None} == {
        n: n * 10 for n in range(10) if n != 3}


def test_hosts_finishing_together_come_back_together_in_job_order() -> None:
    def work(n: int) -> int:
        time.sleep(1.5 if n == 4 else 0.0)
        return n

    groups = list(LocalPool(forks=5, group_window=0.3).run(work, [0, 1, 2, 3, 4]))
    assert [[f.job for f in g] for g in groups] == [[0, 1, 2, 3], [4]]


def test_no_jobs_no_groups() -> None:
    assert list(LocalPool(forks=2).run(lambda j: j, [])) == []
