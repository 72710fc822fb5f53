"""Benchmark of the change log at scale, on SQLite and on PostgreSQL (not a timed test).

Figures printed, per backend:
1. append 100,000 records in batch mode (append_many, 1,000 per transaction): records/s
   (target >= 20,000/s), and the latency of appending one record at a time (median, p99
   of 2,000 appends, each its own transaction and, on SQLite, its own sync to disk);
2. a log of 1,000,000 records (500 hosts, a year of times): `log --host H --since D` as the
   store's query (median of 20, target < 200 ms);
3. `log verify` over the 1,000,000 records: seconds (target < 10 s) and the peak memory of
   the process while verifying (flat: it streams).

PostgreSQL runs as a throwaway cluster on loopback (orchestrator/lab/postgres.py), started
and removed by the benchmark (root: as the postgres user). SQLite runs in a temporary folder
with the store's own settings (WAL, synchronous=FULL).

Run: .venv/bin/python bench/bench_changelog.py [--backends sqlite,postgresql] [--records 1000000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.changelog.record import Entry  # noqa: E402
from orchestrator.changelog.store import ChangeLogStore, LogFilter  # noqa: E402

HOSTS = 500
ACTIONS = ["audit", "patch.scan", "patch.install", "skip", "firmware.scan"]


def entry(i: int) -> Entry:
    return Entry(run=f"r-{i // 500}", action=ACTIONS[i % len(ACTIONS)], status="ok",
                 actor="bench@hub", policy_revision="0" * 40, host=f"host-{i % HOSTS:03d}",
                 group=f"g{i % 20}", occurrence=None,
                 details={"checks": 31, "findings": [], "n": i})


def open_backend(name: str, tmp: Path) -> tuple[ChangeLogStore, object | None]:
    if name == "sqlite":
        from orchestrator.changelog.sqlite import SqliteStore

        folder = tmp / "state"
        folder.mkdir(mode=0o700, exist_ok=True)
        return SqliteStore(folder / "state.db"), None
    from orchestrator.changelog.postgres import PostgresStore
    from orchestrator.lab.postgres import Cluster

    cluster = Cluster()
    url = cluster.start()
    return PostgresStore(url), cluster


def bench(name: str, records: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        store, cluster = open_backend(name, Path(tmp))
        try:
            # 1. batch appends, then one at a time
            n = 100_000
            start = time.perf_counter()
            for lo in range(0, n, 1000):
                store.append_many([entry(i) for i in range(lo, lo + 1000)])
            rate = n / (time.perf_counter() - start)
            lat = []
            for i in range(2000):
                t = time.perf_counter()
                store.append(entry(n + i))
                lat.append(time.perf_counter() - t)
            lat.sort()
            print(f"{name}: append 100,000 in batches of 1,000: {rate:,.0f} records/s "
                  f"(target >= 20,000/s); one at a time: median {statistics.median(lat) * 1e3:.2f}"
                  f" ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms", flush=True)
            # 2. grow to `records`, with times spread over a year
            have = n + 2000
            t0 = time.perf_counter()
            _grow(store, have, records)
            print(f"{name}: grown to {records:,} records in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
            times = []
            found = 0
            for k in range(20):
                t = time.perf_counter()
                found = sum(1 for _ in store.records(LogFilter(host=f"host-{k:03d}",
                                                               since=since)))
                times.append(time.perf_counter() - t)
            print(f"{name}: log --host H --since <30 days> on {records:,}: median "
                  f"{statistics.median(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms "
                  f"({found} records each; target < 200 ms)", flush=True)
            # 3. verify
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t = time.perf_counter()
            result = store.verify()
            took = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"{name}: log verify over {result.checked:,} records: {took:.1f} s "
                  f"(target < 10 s), intact {result.ok}; peak memory {after / 1024:.0f} MB "
                  f"(+{(after - before) / 1024:.0f} MB while verifying)", flush=True)
        finally:
            store.close()
            if cluster is not None:
                cluster.stop()  # type: ignore[attr-defined]


def _grow(store: ChangeLogStore, have: int, records: int) -> None:
    """Append with times spread over the past year (sealed as records are: the chain
    holds), through the store's own import (so the benchmark builds quickly)."""
    from orchestrator.changelog.record import seal

    last = store.latest(LogFilter())
    assert last is not None
    seq, prev = last.seq + 1, last.hash
    year = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(records - have, 1)
    batch = []
    for i in range(have, records):
        when = (year + step * (i - have)).isoformat(timespec="microseconds").replace(
            "+00:00", "Z")
        rec = seal(entry(i), seq, prev, time=when)
        batch.append(rec)
        seq, prev = seq + 1, rec.hash
        if len(batch) == 20_000:
            store.import_records(batch)
            batch = []
    store.import_records(batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    for name in args.backends.split(","):
        bench(name, args.records)


if __name__ == "__main__":
    main()
