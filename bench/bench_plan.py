"""Benchmark of `orchestrator plan` between two git revisions (not a timed test).

A generated policy tree of 1,000 objects (50 windows, 20 freezes, 300 baselines, 50 patch
policies, 30 firmware policies, 450 asset groups, 100 waivers) and a static 5,000-host
inventory (50 inventory groups) are committed to a temporary git repository; a second
commit changes 50 objects (window schedules, baselines, group membership, waivers). The
figure is `orchestrator plan --base A --head B --format json` as a whole process: median
and min of --runs runs, with the inventory cache warm (the usual case in a pipeline that
keeps its cache) and cold (first run). Target: under 3 s. With --store, a state store
holding one audit and one patch scan record for each of the 5,000 hosts is added, so the
stored-results impact is judged too.

Run: .venv/bin/python bench/bench_plan.py [--runs 5] [--store]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"]
DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
HOSTS, INV_GROUPS = 5000, 50
COUNTS = {"Window": 50, "Freeze": 20, "Baseline": 300, "PatchPolicy": 50,
          "FirmwarePolicy": 30, "AssetGroup": 450, "Waiver": 100}


def doc(kind: str, name: str, spec: str) -> str:
    return f"apiVersion: orchestrator/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def window(i: int, hour: int) -> str:
    return doc("Window", f"w{i:03d}", f'  schedule: {{cron: "0 {hour} * * {DAYS[i % 7]}"}}\n'
               f"  timezone: {ZONES[i % 4]}\n  duration: 3h\n  cutoff: 30m\n")


def baseline(i: int, extra: int) -> str:
    pkgs = ", ".join(f"pkg{i}-{k}" for k in range(8 + extra))
    return doc("Baseline", f"b{i:03d}", "  platform: linux\n"
               f"  packages: {{installed: [{pkgs}], absent: [telnetd]}}\n"
               "  services: {running: [sshd, cron]}\n"
               f'  files:\n    - {{path: /etc/app{i}.conf, owner: root, mode: "0644"}}\n'
               f'  sysctl: {{net.ipv4.ip_forward: "0", vm.swappiness: "{10 + i % 50}"}}\n'
               "  thresholds: {diskUsedPercent: {max: 85}}\n")


def group(i: int, rnd: random.Random, shift: int = 0) -> str:
    inv = f"ig{(i + shift) % INV_GROUPS:02d}"
    bls = ", ".join(f"b{b:03d}" for b in rnd.sample(range(COUNTS["Baseline"]), 2))
    return doc("AssetGroup", f"g{i:03d}",
               f"  hosts: {{inventoryGroups: [{inv}], patterns: [\"h{i:04d}*\"]}}\n"
               f"  baselines: [{bls}]\n  patchPolicy: p{i % COUNTS['PatchPolicy']:02d}\n"
               f"  firmwarePolicy: f{i % COUNTS['FirmwarePolicy']:02d}\n"
               f"  windows: [w{i % COUNTS['Window']:03d}]\n")


def tree(changed: bool) -> dict[str, str]:
    rnd = random.Random(7)
    files: dict[str, list[str]] = {}

    def add(folder: str, text: str) -> None:
        files.setdefault(folder, []).append(text)

    for i in range(COUNTS["Window"]):
        add("windows", window(i, 23 if changed and i < 10 else 22))
    for i in range(COUNTS["Freeze"]):
        add("freezes", doc("Freeze", f"fr{i:02d}", f"  from: 2027-0{1 + i % 9}-01T00:00\n"
                           f"  until: 2027-0{1 + i % 9}-03T00:00\n  timezone: UTC\n"
                           f"  groups: [g{i:03d}]\n  reason: release freeze {i}\n"))
    for i in range(COUNTS["Baseline"]):
        add(f"baselines/{i // 50}", baseline(i, 1 if changed and i < 20 else 0))
    for i in range(COUNTS["PatchPolicy"]):
        add("patching", doc("PatchPolicy", f"p{i:02d}", "  approval:\n    rules:\n"
                            "      - {classification: security, approveAfterDays: 0, "
                            f"deadlineDays: {7 + i % 7}}}\n      - {{classification: any, "
                            "approveAfterDays: 7, deadlineDays: 30}\n"))
    for i in range(COUNTS["FirmwarePolicy"]):
        add("firmware", doc("FirmwarePolicy", f"f{i:02d}", "  method: redfish\n  components:\n"
                            f'    - {{match: "BIOS", version: "1.{i}.0", image: '
                            f'"https://repo.example/bios-{i}.bin"}}\n'))
    for i in range(COUNTS["AssetGroup"]):
        add(f"groups/{i // 90}", group(i, rnd, 1 if changed and i < 10 else 0))
    for i in range(COUNTS["Waiver"]):
        year = 2028 if changed and i < 10 else 2027
        add("waivers", doc("Waiver", f"wv{i:03d}", f"  groups: [g{i:03d}]\n"
                           f'  checks: ["package.absent:telnetd"]\n'
                           f"  justification: legacy {i}\n  expires: {year}-06-30\n"))
    return {f"policies/{folder}/objects.yml": "---\n".join(docs)
            for folder, docs in files.items()}


def inventory() -> str:
    lines = ["all:", "  children:"]
    for g in range(INV_GROUPS):
        lines += [f"    ig{g:02d}:", "      hosts:"]
        lines += [f"        h{i:04d}: {{ansible_host: 10.{i // 65536}.{i // 256 % 256}.{i % 256}}}"
                  for i in range(g, HOSTS, INV_GROUPS)]
    return "\n".join(lines) + "\n"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def build(repo: Path) -> tuple[str, str]:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "inventory.yml").write_text(inventory())
    (repo / "orchestrator.yml").write_text("policies: policies/\ninventory: inventory.yml\n"
                                           "state: sqlite:///state/state.db\n")
    (repo / ".gitignore").write_text("state/\n")
    for changed in (False, True):
        shutil.rmtree(repo / "policies", ignore_errors=True)
        for rel, text in tree(changed).items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "changed" if changed else "base")
    return git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")


def fill_store(repo: Path) -> None:
    from datetime import date, timedelta

    from orchestrator.changelog.record import Entry
    from orchestrator.changelog.sqlite import SqliteStore

    (repo / "state").mkdir(mode=0o700, exist_ok=True)
    store = SqliteStore(repo / "state" / "state.db")
    passed = {"package.absent:telnetd": "absent", "service.running:sshd": "running",
              "sysctl:net.ipv4.ip_forward": "0", "threshold.diskUsedPercent:/": 40.0}
    today = date.today()
    patch = {"name": "openssl", "current": "1", "available": "2",
             "classification": "security", "severity": "high",
             "released": (today - timedelta(days=9)).isoformat(),
             "firstSeen": (today - timedelta(days=9)).isoformat()}
    entries = []
    for i in range(HOSTS):
        h = f"h{i:04d}"
        entries.append(Entry("r", "audit", "compliant", "b", "x", h, None, None,
                             {"findings": [], "passed": passed, "checks": 4}))
        entries.append(Entry("r", "patch.scan", "compliant", "b", "x", h, None, None,
                             {"patches": [patch]}))
    store.append_many(entries)
    store.close()


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode not in (0, 2):
        sys.exit(f"plan failed: {done.stderr.decode()[-500:]}")
    return time.perf_counter() - start, done.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store", action="store_true", help="also judge stored results")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("orchestrator"))
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        repo = Path(tmp) / "repo"
        t0 = time.perf_counter()
        base, head = build(repo)
        print(f"tree: {sum(COUNTS.values())} objects, {HOSTS} hosts; built and committed in "
              f"{time.perf_counter() - t0:.1f} s")
        if args.store:
            fill_store(repo)
            print(f"store: {2 * HOSTS} records (one audit, one patch scan per host)")
        cmd = [exe, "plan", "--base", base, "--head", head, "--format", "json"]
        print("command:", " ".join(cmd[:2]), "--base A --head B --format json", flush=True)
        shutil.rmtree(repo / "state" / "cache", ignore_errors=True)
        cold, code = timed(cmd, repo)
        print(f"cold (inventory parsed by ansible-core): {cold:.2f} s (exit {code})")
        warm = [timed(cmd, repo)[0] for _ in range(args.runs)]
        print(f"warm (inventory cache): median {statistics.median(warm):.2f} s, "
              f"min {min(warm):.2f} s over {args.runs} runs; target < 3 s")


if __name__ == "__main__":
    main()
