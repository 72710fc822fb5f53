"""Benchmark of `orchestrator patch scan` against `ansible -m shell` and the SSH floor.

Not a pytest test: it prints figures. Needs root (the lab). Against the same lab hosts
(Debian, apt; each offers 4 updates: acme-agent, acme-broken, acme-kernel, acme-tls) and the
same inventory, with the same forks (20), interleaved per repeat:

  ours (process)   `orchestrator --config T/orchestrator.yml --inventory INV --format json
                   --no-progress patch scan [--no-refresh]` as a subprocess (cold start, policy
                   load, inventory parse, scan, judging, change-log writes, JSON out)
  ours (in-proc)   scan_jobs() + run_scan() in this process (imports done, policies and
                   inventory loaded beforehand)
  ansible -m shell `ansible all -f FORKS -m shell -a '{"cmd": CMD}'`, CMD the very command
                   our fact `updates.pending` runs (orchestrator.facts.updates.updates_cmd:
                   `apt-get -s ... dist-upgrade`, after `apt-get update` in the refresh
                   variant; as JSON, since Ansible's k=v splitting refuses the script's
                   quotes), with the lab's Ansible settings (pipelining) and a cold
                   ControlPersist folder
  floor            one paramiko connection + `true` per host, FORKS threads, in-process
  floor (process)  the same in a fresh Python subprocess (bench_audit.py --floor-worker)
  floor+listing    one paramiko connection + CMD per host, FORKS threads, in-process: what
                   the scan cannot avoid doing
  pm (N hosts)     the package manager's own time: CMD on all N hosts at once over
                   connections made beforehand (only the commands are timed)
  pm (1 host)      the same on one host alone

Variants: `norefresh` (the listing only: `patch scan --no-refresh`) and `refresh`
(`apt-get update` then the listing, one round trip). Before measuring, every host's apt lists
are refreshed once (a fresh lab host has none).

Every result is validated (ours: every host `compliant`, manager apt, 4 pending updates;
ansible: rc=0 and the listing's `@list-rc 0` and 4 `Inst` lines per host; floors: exit 0 and
the same listing); a figure whose run did not validate is marked `!`.

The goals (issue 9), at 20 hosts: ansible / ours >= 10x; ours <= 1.5 x (floor + pm), where
pm is the package manager's own time on the N hosts at once (the lab's hosts share the
controller's CPUs, so N listings at once take longer than one); the ratio with pm (1 host) is
printed too. Each is paired repeat by repeat (process with floor (process), in-proc with
floor), then the median [min-max].

Run:   .venv/bin/python bench/bench_patch_scan.py [--hosts 5,20] [--repeat 5]
       [--variants norefresh,refresh] [--lab-dir DIR] [--down] [--forks 20]
       [--tools ours,inproc,ansible,floor,floorproc,listing,pm,pm1]
       [--profile N]   (cProfile of one in-process scan of N hosts, top functions)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import (  # noqa: E402 - after the path set-up
    CHILDREN,
    FORKS,
    LAB_UPDATES,
    SELF,
    VENV_BIN,
    Sample,
    Workdir,
    clean_up,
    ensure_lab,
    floor_run,
    fmt,
    loadavg,
    measure,
    med,
    paired,
    run_on_hosts,
    run_proc,
    table,
    tail,
)

TOOLS = {  # key: (column title, method, rusage who)
    "ours": ("ours (process)", "ours_process", CHILDREN),
    "inproc": ("ours (in-proc)", "ours_inproc", SELF),
    "ansible": ("ansible -m shell", "ansible", CHILDREN),
    "floor": ("floor", "floor", SELF),
    "floorproc": ("floor (process)", "floor_process", CHILDREN),
    "listing": ("floor+listing", "floor_listing", SELF),
    "pm": ("pm (N hosts)", "pm", SELF),
    "pm1": ("pm (1 host)", "pm1", SELF),
}
N_UPDATES = len(LAB_UPDATES)


def listing_cmd(refresh: bool) -> str:
    from orchestrator.facts.updates import updates_cmd

    return updates_cmd(() if refresh else ("norefresh",))


def listing_ok(text: str, refresh: bool) -> bool:
    """The fact's output for one host: the listing ran to the end and named every update."""
    inst = re.findall(r"^@list Inst (\S+) ", text, re.M)
    return ("@list-rc 0" in text and sorted(inst) == sorted(LAB_UPDATES)
            and (not refresh or "@refresh-rc 0" in text))


class Tools:
    def __init__(self, wd: Workdir, forks: int, refresh: bool) -> None:
        self.wd, self.forks, self.refresh = wd, forks, refresh
        self.cmd = listing_cmd(refresh)
        self.key = str(wd.lab.ssh_key_path)
        self.kh = str(wd.lab.known_hosts_path)
        self._prepared: dict[int, tuple] = {}

    # ours, as a whole process
    def ours_process(self, n: int) -> tuple[bool, str]:
        cmd = [str(VENV_BIN / "orchestrator"), "--config", str(self.wd.config), "--inventory",
               str(self.wd.inventory(n)), "--format", "json", "--no-progress", "patch", "scan",
               *([] if self.refresh else ["--no-refresh"])]
        p = run_proc(cmd, self.wd.tmp)
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}"
        return self._validate(data, n, p.returncode)

    def _validate(self, data: dict, n: int, rc: int) -> tuple[bool, str]:
        hosts = data.get("hosts", [])
        bad = [h["host"] for h in hosts
               if h["status"] != "compliant" or h["manager"] != "apt"
               or sorted(p["name"] for p in h["patches"]) != sorted(LAB_UPDATES)]
        good = rc == 0 and len(hosts) == n and not bad
        return good, "" if good else (f"rc={rc} hosts={len(hosts)} summary={data.get('summary')}"
                                      f" bad={bad[:3]} {[h.get('error') for h in hosts][:2]}")

    # ours, in this process
    def prepare_inproc(self, n: int) -> None:
        from orchestrator.config import load_config
        from orchestrator.context import AppContext
        from orchestrator.inventory.loader import load_inventory

        app = AppContext(load_config(self.wd.config, inventory=str(self.wd.inventory(n)),
                                     cwd=self.wd.tmp), progress=False)
        self._prepared[n] = (app, app.policies, load_inventory(self.wd.inventory(n)))

    def ours_inproc(self, n: int) -> tuple[bool, str]:
        from orchestrator.patching.scan import run_scan, scan_jobs

        if n not in self._prepared:
            self.prepare_inproc(n)
        app, ps, inv = self._prepared[n]
        jobs = scan_jobs(ps, inv, "bench", refresh=self.refresh)
        result = run_scan(app.run_context(), ps, jobs)
        return self._validate(result.to_json(), n, result.exit_code())

    # ansible -m shell, the same command
    def ansible(self, n: int) -> tuple[bool, str]:
        env, cp = self.wd.ansible_env()
        cmd = [str(VENV_BIN / "ansible"), "all", "-i", str(self.wd.inventory(n)), "-f",
               str(self.forks), "-m", "ansible.builtin.shell",
               "-a", json.dumps({"cmd": self.cmd})]
        try:
            p = run_proc(cmd, self.wd.tmp, env)
        finally:
            self.wd.close_masters(cp)
        # "<host> | CHANGED | rc=0 >>" then the host's stdout, up to the next such line
        parts = re.split(r"^(\S+) \| (\w+) \| rc=(\d+) >>$", p.stdout, flags=re.M)
        blocks = {parts[i]: (parts[i + 2], parts[i + 3]) for i in range(1, len(parts) - 3, 4)}
        good = (p.returncode == 0 and len(blocks) == n
                and all(rc == "0" and listing_ok(out, self.refresh)
                        for rc, out in blocks.values()))
        return good, "" if good else (f"rc={p.returncode} hosts={len(blocks)}: "
                                      f"{tail(p.stdout + p.stderr)}")

    # floors
    def floor(self, n: int) -> tuple[bool, str]:
        done = floor_run(self.wd.hosts[:n], self.key, self.kh, self.forks)
        return done == n, "" if done == n else f"{done}/{n} hosts"

    def floor_process(self, n: int) -> tuple[bool, str]:
        hosts = [[h.address, h.port] for h in self.wd.hosts[:n]]
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "bench_audit.py"),
               "--floor-worker", json.dumps({"hosts": hosts, "key": self.key,
                                             "known_hosts": self.kh, "forks": self.forks})]
        p = run_proc(cmd, self.wd.tmp)
        good = p.returncode == 0 and p.stdout.strip() == str(n)
        return good, "" if good else f"rc={p.returncode} {p.stdout.strip()} {tail(p.stderr)}"

    def _listings(self, hosts: list, connect_first: bool) -> tuple[bool, str, float]:
        out, seconds = run_on_hosts(hosts, self.key, self.kh, self.forks, self.cmd,
                                    connect_first)
        bad = [h.name for h, (rc, text) in zip(hosts, out, strict=True)
               if rc != 0 or not listing_ok(text, self.refresh)]
        return not bad, f"bad listing on {bad[:3]}" if bad else "", seconds

    def floor_listing(self, n: int) -> tuple[bool, str]:
        ok, note, _ = self._listings(self.wd.hosts[:n], connect_first=False)
        return ok, note

    def pm(self, n: int) -> tuple[bool, str, float]:
        return self._listings(self.wd.hosts[:n], connect_first=True)

    def pm1(self, n: int) -> tuple[bool, str, float]:
        return self._listings(self.wd.hosts[:1], connect_first=True)


# -- report -------------------------------------------------------------------------------
def report(results: dict, counts: list[int], tools: list[str], variant: str) -> None:
    cols = [TOOLS[t][0] for t in tools]
    print(f"\n[{variant}] wall time, seconds (median of repeats; `!` = a run did not validate)")
    table(["hosts", *cols], [[str(n), *[fmt(results[n].get(t, [])) for t in tools]]
                             for n in counts])
    print(f"\n[{variant}] controller CPU per host, ms (user+sys) / machine CPU per host, ms "
          "(/proc/stat, includes the lab hosts)")
    table(["hosts", *cols], [[str(n)] + [
        "-" if not results[n].get(t) else
        f"{med(results[n][t], 'cpu') * 1000 / n:.0f} / "
        f"{med(results[n][t], 'machine_cpu') * 1000 / n:.0f}" for t in tools] for n in counts])
    print(f"\n[{variant}] goals, paired repeat by repeat: median [min-max]")
    rows = []
    for n in counts:
        r = results[n]
        rows.append([str(n), "ansible / ours (process)   >= 10x",
                     paired(r.get("ansible", []), r.get("ours", []), lambda a, b: a / b)])
        rows.append([str(n), "ansible / ours (in-proc)   >= 10x",
                     paired(r.get("ansible", []), r.get("inproc", []), lambda a, b: a / b)])
        for ours, fl in (("ours", "floorproc"), ("inproc", "floor")):
            for pm in ("pm", "pm1"):
                rows.append([str(n), f"{TOOLS[ours][0]} / ({TOOLS[fl][0]} + {TOOLS[pm][0]})"
                             + ("  <= 1.5x" if pm == "pm" else ""),
                             _ratio_sum(r, ours, fl, pm)])
        rows.append([str(n), "ours (in-proc) / floor+listing",
                     paired(r.get("inproc", []), r.get("listing", []), lambda a, b: a / b)])
    table(["hosts", "ratio", "median [min-max]"], rows)
    notes = [(n, t, s.note) for n in counts for t in tools for s in results[n].get(t, [])
             if not s.ok]
    for n, t, note in notes[:12]:
        print(f"! {n} hosts, {TOOLS[t][0]}: {note}")


def _ok(r: dict, i: int, *keys: str) -> bool:
    return all(k in r and i < len(r[k]) and r[k][i].ok for k in keys)


def _ratio_sum(r: dict, ours: str, fl: str, pm: str) -> str:
    vals = [r[ours][i].wall / (r[fl][i].wall + r[pm][i].wall)
            for i in range(len(r.get(ours, []))) if _ok(r, i, ours, fl, pm)]
    if not vals:
        return "-"
    return f"{statistics.median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]"


def profile(tools: Tools, n: int) -> None:
    import cProfile
    import pstats

    tools.prepare_inproc(n)
    tools.ours_inproc(n)  # warm
    prof = cProfile.Profile()
    prof.enable()
    t0 = time.perf_counter()
    ok, note = tools.ours_inproc(n)
    wall = time.perf_counter() - t0
    prof.disable()
    print(f"\ncProfile of one in-process patch scan of {n} hosts "
          f"({'refresh' if tools.refresh else 'norefresh'}): {wall:.2f} s ok={ok} {note}")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)


def refresh_all(tools: Tools, n: int) -> None:
    """apt-get update on every host once (a fresh host has no lists), through our scan."""
    t0 = time.perf_counter()
    prev, tools.refresh = tools.refresh, True
    try:
        ok, note = tools.ours_inproc(n)
    finally:
        tools.refresh = prev
    print(f"setup: refreshed the apt lists of {n} hosts in {time.perf_counter() - t0:.1f} s"
          + ("" if ok else f"  ! {note}"), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", default="5,20", help="host counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--forks", type=int, default=FORKS)
    ap.add_argument("--variants", default="norefresh,refresh")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--lab-dir", type=Path, default=Path(".orchestrator/bench-lab"))
    ap.add_argument("--down", action="store_true", help="stop the lab afterwards")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile an in-process scan")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.hosts.split(",") if x.strip()]
    repeat = max(1, a.repeat)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    if unknown := [t for t in tools if t not in TOOLS]:
        ap.error(f"unknown tool {unknown[0]!r}; choose from {', '.join(TOOLS)}")
    if bad := [v for v in variants if v not in ("norefresh", "refresh")]:
        ap.error(f"unknown variant {bad[0]!r}; choose from norefresh, refresh")
    print(f"command: {' '.join(shlex.quote(x) for x in [sys.executable, *sys.argv])}")
    print(f"machine: {len(os.sched_getaffinity(0))} CPUs, load average at start "
          f"{loadavg()}; forks {a.forks} for every tool; {repeat} repeat(s); "
          f"{N_UPDATES} pending updates per host")
    lab = ensure_lab(a.lab_dir.resolve(), max(counts + [a.profile or 0]))
    tmp = Path(tempfile.mkdtemp(prefix="bench-patch-scan-"))
    try:
        wd = Workdir(tmp, lab, a.forks)
        base = Tools(wd, a.forks, refresh=False)
        refresh_all(base, max(counts + [a.profile or 0]))
        if a.profile:
            for v in variants:
                profile(Tools(wd, a.forks, refresh=v == "refresh"), a.profile)
            return 0
        for v in variants:
            t = Tools(wd, a.forks, refresh=v == "refresh")
            results: dict[int, dict[str, list[Sample]]] = {n: {} for n in counts}
            for n in counts:
                if "inproc" in tools:
                    t.prepare_inproc(n)
                    t.ours_inproc(n)  # warm-up: imports, first-connection costs (not counted)
                for rep in range(repeat):
                    for key in tools:
                        _, method, who = TOOLS[key]
                        s = measure(lambda m=method, k=n, x=t: getattr(x, m)(k), who)
                        results[n].setdefault(key, []).append(s)
                        print(f"  [{v}] {n:>3} hosts  run {rep + 1}/{repeat}  "
                              f"{TOOLS[key][0]:<17} {s.wall:7.2f} s  cpu {s.cpu:6.2f} s"
                              f"{'' if s.ok else '  ! ' + s.note}", flush=True)
            report(results, counts, tools, v)
        print(f"\nload average at end {loadavg()}")
    finally:
        clean_up(tmp, lab, keep=a.keep, down=a.down)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
