"""Benchmark of the window time engine (not a timed test).

Figures printed:
1. next 12 occurrences for each of 10,000 windows (9,000 cron, 1,000 rrule, varied zones),
   one core, schedule parsing included (every cache cleared first); target < 1 s. Wall and
   CPU time are both printed (on a busy machine CPU time is the fairer figure); best of
   --repeat runs, each from cold caches.
2. `orchestrator windows check --group G` as a whole process on a policy directory written
   to a temporary folder: median and min of --runs runs; target < 300 ms. The exact command
   is printed. Python writes no bytecode when PYTHONDONTWRITEBYTECODE is set (as on the
   development machine), so every run then compiles the orchestrator's modules again; the
   benchmark measures both that and the installed case (bytecode cached, via a private
   PYTHONPYCACHEPREFIX after one warm-up run).

Run: .venv/bin/python bench/bench_windows.py [--repeat 3] [--runs 15]
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.policy.model import Location, Meta, Window  # noqa: E402
from orchestrator.windows import occurrences as occ_mod  # noqa: E402
from orchestrator.windows import schedule as sched_mod  # noqa: E402

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo", "Australia/Sydney",
         "America/Los_Angeles", "Europe/London", "Asia/Kolkata"]
DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


def make_windows(n: int, seed: int = 4) -> list[Window]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        tz = rnd.choice(ZONES)
        h, m = rnd.randrange(24), rnd.choice([0, 15, 30, 45])
        kind = i % 10
        cron = rrule = None
        if kind < 3:
            cron = f"{m} {h} * * {rnd.choice(DAYS)}#{rnd.randint(1, 4)}"
        elif kind < 5:
            cron = f"{m} {h} * * {rnd.choice(DAYS)}"
        elif kind == 5:
            cron = f"{m} {h} L * *"
        elif kind == 6:
            cron = f"{m} {h} * * {rnd.randint(0, 6)}L"
        elif kind in (7, 8):
            cron = f"{m} {h} {rnd.randint(1, 28)},{rnd.randint(1, 31)} * *"
        else:
            start = datetime(2024, 1, 1) + timedelta(days=rnd.randrange(700))
            by = f"{rnd.randint(1, 4)}{rnd.choice(DAYS)[:2]}"
            rrule = (f"DTSTART;TZID={tz}:{start:%Y%m%d}T{h:02d}{m:02d}00\n"
                     f"RRULE:FREQ={'MONTHLY;BYDAY=' + by if i % 20 == 9 else 'WEEKLY'}")
        out.append(Window(
            meta=Meta(f"w-{i}", None, Location(Path("bench.yml"), i, 1)),
            timezone=tz, duration=timedelta(hours=rnd.randint(1, 8)),
            cutoff=timedelta(minutes=30), cron=cron, rrule=rrule,
            offset_days=rnd.choice([0, 0, 0, 4]),
        ))
    return out


def bench_occurrences(kind: str | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds for next 12 occurrences of every window, from cold caches."""
    windows = make_windows(10_000)
    if kind == "cron":
        windows = [w for w in windows if w.cron]
    elif kind == "rrule":
        windows = [w for w in windows if w.rrule]
    occ_mod.compile_window.cache_clear()
    sched_mod.clear_caches()
    at = datetime(2026, 5, 1, tzinfo=UTC)
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    for w in windows:
        total += len(occ_mod.next_occurrences(w, at, 12))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert total == 12 * len(windows), total
    return elapsed, cpu


def best(kind: str | None, repeat: int) -> tuple[float, float]:
    runs = [bench_occurrences(kind) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


POLICY = """\
apiVersion: orchestrator/v1
kind: Window
metadata: {name: patch-saturday}
spec:
  schedule: {cron: "0 22 * * TUE#2"}
  timezone: Europe/Berlin
  offsetDays: 4
  duration: 4h
  cutoff: 30m
---
apiVersion: orchestrator/v1
kind: Freeze
metadata: {name: year-end}
spec:
  from: 2026-12-19T00:00
  until: 2027-01-04T00:00
  timezone: America/New_York
  reason: Year-end change freeze
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: web}
spec:
  hosts: {patterns: ["web-*"]}
  windows: [patch-saturday]
"""


def bench_process(runs: int, bytecode: bool) -> tuple[float, float] | str:
    """(median, min) seconds of the whole `windows check` process, or why it was skipped."""
    try:
        import orchestrator.policy.loader  # noqa: F401
    except ImportError:
        return "skipped: orchestrator.policy.loader does not exist yet"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "policies").mkdir()
        (Path(tmp) / "policies" / "w.yml").write_text(POLICY)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        times = []
        for i in range(runs + 1):  # the first run warms the disk cache (and bytecode)
            t0 = time.perf_counter()
            proc = subprocess.run(CHECK_CMD, cwd=tmp, env=env, capture_output=True, text=True)
            if i:
                times.append(time.perf_counter() - t0)
            if proc.returncode not in (0, 3):
                return f"failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}"
        return statistics.median(times), min(times)


CHECK_CMD = [sys.executable, "-m", "orchestrator.cli.main", "--policies", "policies",
             "windows", "check", "--group", "web", "--at", "2026-11-14T23:00:00+01:00"]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="occurrence runs (best taken)")
    parser.add_argument("--runs", type=int, default=15, help="process runs (median taken)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
    wall, cpu = best(None, args.repeat)
    print(f"next 12 occurrences x 10,000 windows (9,000 cron, 1,000 rrule), cold caches, best of "
          f"{args.repeat}: {wall:.3f} s wall, {cpu:.3f} s CPU (target < 1 s)")
    for kind, label in (("cron", "9,000 cron windows"), ("rrule", "1,000 rrule windows")):
        wall, cpu = best(kind, args.repeat)
        print(f"  {label} alone: {wall:.3f} s wall, {cpu:.3f} s CPU")
    print("orchestrator windows check, whole process; command (cwd: a temporary folder "
          "holding policies/w.yml):")
    print("  PYTHONPATH=" + str(ROOT) + " " + " ".join(CHECK_CMD))
    for bytecode, label in ((True, "bytecode cached (an installed package)"),
                            (False, "PYTHONDONTWRITEBYTECODE=1 (compiles every run)")):
        p = bench_process(args.runs, bytecode)
        if isinstance(p, tuple):
            print(f"  {label}: median {p[0] * 1000:.0f} ms, min {p[1] * 1000:.0f} ms over "
                  f"{args.runs} runs (target < 300 ms)")
        else:
            print(f"  {label}: {p}")


if __name__ == "__main__":
    main()
