"""Benchmark of `orchestrator report` over a year of a 500-host estate, on SQLite and on
PostgreSQL (not a timed test).

Per backend:
1. generate the estate (orchestrator/lab/estate.py: a daily audit of every host, weekly patch
   scans, each group's weekly window with installs, reboots, health checks and firmware
   updates, skips, overrides, policy revisions): the record count, the generation time and
   the store's size;
2. `orchestrator --state URL report --from START --until END --format json --output F` and
   `--format html`, each timed as a whole process (interpreter start included), median of
   --runs runs (target < 10 s).

A report that fails (or a `report` command this checkout lacks) is printed with its last
error line and the benchmark goes on.

PostgreSQL runs as a throwaway cluster on loopback (orchestrator/lab/postgres.py), started
and removed by the benchmark (root: as the postgres user). SQLite runs in a temporary folder
with the store's own settings (WAL, synchronous=FULL); --keep DIR keeps its database there
(state.db), to look at or to run reports on later.

Run: .venv/bin/python bench/bench_report.py [--backends sqlite,postgresql] [--hosts 500]
     [--days 365] [--runs 3] [--generate-only] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.changelog.store import ChangeLogStore  # noqa: E402
from orchestrator.lab.estate import EstateSummary, generate_estate  # noqa: E402

START = date(2025, 1, 1)
# the installed command, as a sysadmin runs it (else the module, same code)
_SCRIPT = Path(sys.executable).parent / "orchestrator"
ORCHESTRATOR = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m",
                                                          "orchestrator.cli.main"]


def open_backend(name: str, folder: Path) -> tuple[ChangeLogStore, object | None]:
    if name == "sqlite":
        from orchestrator.changelog.sqlite import SqliteStore

        return SqliteStore(folder / "state.db"), None
    from orchestrator.changelog.postgres import PostgresStore
    from orchestrator.lab.postgres import Cluster

    cluster = Cluster()
    url = cluster.start()
    return PostgresStore(url), cluster


def size_of(name: str, store: ChangeLogStore, folder: Path) -> str:
    if name == "sqlite":
        total = sum(f.stat().st_size for f in folder.glob("state.db*"))
    else:
        rows = list(store._query("SELECT pg_database_size(current_database())"))  # type: ignore[attr-defined]
        total = int(rows[0][0])
    return f"{total / 1e6:,.0f} MB"


def has_report() -> str | None:
    """None if this checkout's CLI has `report`, else why not (one line)."""
    done = subprocess.run([*ORCHESTRATOR, "report", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    if done.returncode == 0:
        return None
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def time_report(url: str, summary: EstateSummary, fmt: str, out: Path, runs: int,
                work: Path) -> str:
    """`report` as a whole process, `runs` times: the median and every run, or the error."""
    last = summary.until - timedelta(days=1)  # --until with a date alone includes that day
    cmd = [*ORCHESTRATOR, "--state", url, "report", "--from", summary.start.isoformat(),
           "--until", last.isoformat(), "--format", fmt, "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    took = []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env,
                              timeout=3600)
        took.append(time.perf_counter() - t)
        if done.returncode not in (0, 2):  # 2: the report found non-compliance
            lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
            return (f"failed (exit status {done.returncode}): "
                    f"{lines[-1] if lines else 'no output'}")
        if not out.is_file():
            return f"no output file (exit status {done.returncode})"
    shown = ", ".join(f"{s:.2f}" for s in took)
    return (f"median {statistics.median(took):.2f} s (runs {shown}; target < 10 s); "
            f"{out.stat().st_size / 1e3:,.0f} kB, exit status {done.returncode}")


def bench(name: str, args: argparse.Namespace, why_no_report: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(tmp) / "state"
        folder.mkdir(mode=0o700)
        store, cluster = open_backend(name, folder)
        try:
            summary = generate_estate(store, hosts=args.hosts, groups=5, start=START,
                                      days=args.days, seed=args.seed, batch=5000)
            print(f"{name}: generated {summary.records:,} records ({args.days} days of "
                  f"{summary.hosts} hosts in {len(summary.groups)} groups, "
                  f"{len(summary.revisions)} policy revisions) in {summary.seconds:.1f} s "
                  f"({summary.records / summary.seconds:,.0f} records/s); store "
                  f"{size_of(name, store, folder)}", flush=True)
            url = store.url
            store.close()
            if args.generate_only:
                pass
            elif why_no_report is not None:
                print(f"{name}: report not timed: `orchestrator report` is not available "
                      f"({why_no_report})", flush=True)
            else:
                for fmt in ("json", "html"):
                    result = time_report(url, summary, fmt, Path(tmp) / f"report.{fmt}",
                                         args.runs, Path(tmp))
                    print(f"{name}: report --format {fmt} over {summary.records:,} records: "
                          f"{result}", flush=True)
            if args.keep and name == "sqlite":
                keep = Path(args.keep)
                keep.mkdir(mode=0o700, parents=True, exist_ok=True)
                for f in folder.glob("state.db*"):
                    shutil.copy2(f, keep / f.name)
                print(f"{name}: kept {keep / 'state.db'}", flush=True)
        finally:
            store.close()
            if cluster is not None:
                cluster.stop()  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--generate-only", action="store_true",
                    help="only generate the estate (no report runs)")
    ap.add_argument("--keep", metavar="DIR", help="keep the SQLite estate in DIR/state.db")
    args = ap.parse_args()
    why = None if args.generate_only else has_report()
    for name in args.backends.split(","):
        bench(name, args, why)


if __name__ == "__main__":
    main()
