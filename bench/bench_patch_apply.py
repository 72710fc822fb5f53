"""Benchmark of `orchestrator patch apply` against plain `ansible-playbook` of the same playbook.

Not a pytest test: it prints figures. Needs root (the lab). Every run starts from fresh lab
hosts (Debian, apt; acme-* 1.0 installed, no apt lists yet): the first N hosts are reset to
a fresh writable layer (Lab.reset_host, not timed) before each run, and again at the end.
Per run, with the same forks (20), the same inventory and tools interleaved per repeat:

  ours (process)     `orchestrator --config T/orchestrator.yml --inventory INV --format json
                     --no-progress patch apply --group bench`: window check, scan (refresh +
                     listing, one round trip per host), approval, change-log records, then
                     playbooks/patch-apt.yml through ansible-runner (one batch: serial 100%)
                     with its event handler recording as events arrive, JSON out
                     (pipelining on: ours sets it unless the environment does)
  ours (no pipe)     the same with ANSIBLE_PIPELINING=False in its environment
  ansible-playbook   `ansible-playbook -f FORKS -i INV playbooks/patch-apt.yml -e @vars.yml`,
                     vars.yml the very extra variables ours passes (patching.apply._extravars
                     written by execution.playbook.write_unsafe_vars): the approved packages
                     pinned (acme-agent 1.1, acme-kernel 1.1, acme-tls 1.0+sec1), reboot
                     never (or --reboot), health checks; the lab's Ansible settings
                     (pipelining on, strict host keys), a cold ControlPersist folder
  ansible (no pipe)  the same with ANSIBLE_PIPELINING=False (Ansible's default, as ours runs)

Every run is validated: ours says `done` for every host with the 3 packages `installed`
(acme-kernel `installed_pending_reboot` when the policy does not reboot);
ansible's recap has failed=0 unreachable=0 rescued=0 for every host; and after every run
(not timed) each host's dpkg has the approved versions and acme-broken still at 1.0. A figure
whose run did not validate is marked `!`.

Overhead = (ours - ansible) / ansible, paired repeat by repeat; the goal (issue 9) at 20
hosts is <= 5 %. Where ours' time goes is read from its own change-log records (microsecond
times): start-up (process start to patch.scan.start), scan, scan end to patch.apply.start,
the playbook (patch.apply.start to patch.apply.end), exit (to the process's end).

Run:   .venv/bin/python bench/bench_patch_apply.py [--hosts 20] [--repeat 3]
       [--reboot never|ifNeeded|always] [--lab-dir DIR] [--down] [--forks 20]
       [--tools ours,oursnopipe,ansible,ansiblenopipe]
       [--profile N]   (cProfile of one in-process apply_group of N fresh hosts)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import (  # noqa: E402 - after the path set-up
    APPROVED,
    CHILDREN,
    FORKS,
    LAB_UPDATES,
    ROOT,
    VENV_BIN,
    Sample,
    Workdir,
    clean_up,
    ensure_lab,
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

PLAYBOOK = ROOT / "playbooks" / "patch-apt.yml"
TOOLS = {  # key: (column title, method, rusage who)
    "ours": ("ours (process)", "ours", CHILDREN),
    "oursnopipe": ("ours (no pipe)", "ours_nopipe", CHILDREN),
    "ansible": ("ansible-playbook", "ansible", CHILDREN),
    "ansiblenopipe": ("ansible (no pipe)", "ansible_nopipe", CHILDREN),
}
PHASES = ("start-up", "scan", "scan->apply", "playbook", "exit")
VERSIONS_CMD = "dpkg-query -W -f '${Package} ${Version}\\n' 'acme-*'"


def recap_ok(stdout: str, n: int) -> tuple[bool, str]:
    recap = re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)"
                       r"\s+skipped=\d+\s+rescued=(\d+)", stdout, re.M)
    bad = [h for h, u, f, r in recap if (u, f, r) != ("0", "0", "0")]
    good = len(recap) == n and not bad
    return good, "" if good else f"recap={len(recap)} bad={bad[:3]}: {tail(stdout)}"


class Tools:
    def __init__(self, wd: Workdir, forks: int) -> None:
        self.wd, self.forks = wd, forks
        self.vars_file = wd.tmp / "vars.yml"
        self._write_vars()

    def _write_vars(self) -> None:
        """The extra variables ours passes to the playbook, from the same policy."""
        from orchestrator.execution.playbook import write_unsafe_vars
        from orchestrator.patching.apply import _extravars
        from orchestrator.policy.loader import load_policies

        policy = load_policies(self.wd.tmp / "policies").patch_policies["bench"]
        packages = [{"name": k, "version": v} for k, v in sorted(APPROVED.items())]
        per_host = {h.name: packages for h in self.wd.hosts}  # as ours: each host its list
        write_unsafe_vars(self.vars_file, _extravars(policy, per_host))

    # -- fresh hosts and the check after each run (neither timed) --------------------------
    def fresh(self, n: int) -> float:
        t0 = time.perf_counter()
        for name in self.wd.names(n):
            self.wd.lab.reset_host(name)
        return time.perf_counter() - t0

    def patched(self, n: int) -> tuple[bool, str]:
        want = {**APPROVED, **{k: "1.0" for k in LAB_UPDATES if k not in APPROVED}}
        out, _ = run_on_hosts(self.wd.hosts[:n], str(self.wd.lab.ssh_key_path),
                              str(self.wd.lab.known_hosts_path), self.forks, VERSIONS_CMD,
                              connect_first=False)
        bad = []
        for h, (rc, text) in zip(self.wd.hosts[:n], out, strict=True):
            got = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
            if rc != 0 or got != want:
                bad.append(f"{h.name}: {got}")
        return not bad, f"hosts not as approved: {bad[:2]}" if bad else ""

    # -- ours --------------------------------------------------------------------------------
    def ours(self, n: int, pipelining: bool = True) -> tuple[bool, str, None, dict]:
        import json

        env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_PIPELINING"}
        if not pipelining:  # the site's environment rules
            env["ANSIBLE_PIPELINING"] = "False"
        cmd = [str(VENV_BIN / "orchestrator"), "--config", str(self.wd.config), "--inventory",
               str(self.wd.inventory(n)), "--format", "json", "--no-progress", "patch", "apply",
               "--group", "bench"]
        t0 = time.time()
        p = run_proc(cmd, self.wd.tmp, env)
        t1 = time.time()
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}", None, {}
        phases = self._phases(data.get("run", ""), t0, t1)
        hosts = data.get("hosts", [])
        # reboot never: acme-kernel's postinst asks for one, so it is installed_pending_reboot
        bad = [h["host"] for h in hosts
               if h["status"] != "done"
               or sorted(q["name"] for q in h["packages"]) != sorted(APPROVED)
               or any(q["status"] not in ("installed", "installed_pending_reboot")
                      for q in h["packages"])]
        good = p.returncode == 0 and len(hosts) == n and not bad
        return (good, "" if good else f"rc={p.returncode} hosts={len(hosts)} bad={bad[:3]} "
                f"{[h.get('reason') for h in hosts][:2]}", None, phases)

    def ours_nopipe(self, n: int) -> tuple[bool, str, None, dict]:
        return self.ours(n, pipelining=False)

    def _phases(self, run: str, t0: float, t1: float) -> dict[str, float]:
        """Where ours' time went, from its change-log records' times."""
        from orchestrator.changelog.open import open_store
        from orchestrator.changelog.store import LogFilter

        store = open_store(f"sqlite:///{self.wd.tmp / 'state.db'}")
        try:
            at: dict[str, float] = {}
            for rec in store.records(LogFilter(run=run)):
                stamp = datetime.fromisoformat(rec.time.replace("Z", "+00:00")).timestamp()
                at.setdefault(rec.action, stamp)
                if rec.action.endswith(".end"):
                    at[rec.action] = stamp
        finally:
            store.close()
        marks = [t0, at.get("patch.scan.start"), at.get("patch.scan.end"),
                 at.get("patch.apply.start"), at.get("patch.apply.end"), t1]
        if any(m is None for m in marks):
            return {}
        return {name: b - a for name, a, b in zip(PHASES, marks[:-1], marks[1:], strict=True)}

    # -- ansible-playbook ----------------------------------------------------------------------
    def ansible(self, n: int, pipelining: bool = True) -> tuple[bool, str]:
        env, cp = self.wd.ansible_env()
        env["ANSIBLE_PIPELINING"] = "True" if pipelining else "False"
        cmd = [str(VENV_BIN / "ansible-playbook"), "-f", str(self.forks), "-i",
               str(self.wd.inventory(n)), str(PLAYBOOK), "-e", f"@{self.vars_file}"]
        try:
            p = run_proc(cmd, self.wd.tmp, env)
        finally:
            self.wd.close_masters(cp)
        good, note = recap_ok(p.stdout, n)
        return p.returncode == 0 and good, note if good else f"rc={p.returncode} {note}"

    def ansible_nopipe(self, n: int) -> tuple[bool, str]:
        return self.ansible(n, pipelining=False)

    # -- a whole measured run ----------------------------------------------------------------
    def run(self, key: str, n: int) -> Sample:
        _, method, who = TOOLS[key]
        self.fresh(n)
        s = measure(lambda: getattr(self, method)(n), who)
        if s.ok:
            ok, note = self.patched(n)
            s.ok, s.note = ok, note
        return s


# -- report -----------------------------------------------------------------------------------
def report(results: dict, counts: list[int], tools: list[str]) -> None:
    cols = [TOOLS[t][0] for t in tools]
    print("\nWall time, seconds (median of repeats; `!` = a run did not validate)")
    table(["hosts", *cols], [[str(n), *[fmt(results[n].get(t, [])) for t in tools]]
                             for n in counts])
    print("\nController CPU per host, ms (user+sys, all child processes) / machine CPU per host,"
          " ms (/proc/stat, includes the lab hosts)")
    table(["hosts", *cols], [[str(n)] + [
        "-" if not results[n].get(t) else
        f"{med(results[n][t], 'cpu') * 1000 / n:.0f} / "
        f"{med(results[n][t], 'machine_cpu') * 1000 / n:.0f}" for t in tools] for n in counts])
    print("\nOverhead (ours - ansible) / ansible, percent, paired repeat by repeat: "
          "median [min-max]; goal <= 5 %")
    rows = []
    for n in counts:
        r = results[n]
        for ours in ("ours", "oursnopipe"):
            for base in ("ansible", "ansiblenopipe"):
                if r.get(ours) and r.get(base):
                    rows.append([str(n), f"{TOOLS[ours][0]} vs {TOOLS[base][0]}",
                                 paired(r[ours], r[base], lambda a, b: 100 * (a - b) / b)])
    if rows:
        table(["hosts", "pair", "overhead % median [min-max]"], rows)
    print("\nWhere ours' time goes, seconds (median; from its change-log record times)")
    rows = []
    for n in counts:
        for t in ("ours", "oursnopipe"):
            ph = [s.phases for s in results[n].get(t, []) if s.phases]
            if ph:
                rows.append([str(n), TOOLS[t][0],
                             *[f"{statistics.median(p[k] for p in ph):.2f}" for k in PHASES]])
    if rows:
        table(["hosts", "tool", *PHASES], rows)
    notes = [(n, t, s.note) for n in counts for t in tools for s in results[n].get(t, [])
             if not s.ok]
    for n, t, note in notes[:12]:
        print(f"! {n} hosts, {TOOLS[t][0]}: {note}")


def profile(tools: Tools, n: int) -> None:
    import cProfile
    import pstats

    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.inventory.loader import load_inventory
    from orchestrator.patching.apply import apply_group

    wd = tools.wd
    app = AppContext(load_config(wd.config, inventory=str(wd.inventory(n)), cwd=wd.tmp),
                     progress=False)
    ps, inv = app.policies, load_inventory(wd.inventory(n))
    tools.fresh(n)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    run = apply_group(app.run_context(), ps, inv, "bench")
    prof.disable()
    wall = time.perf_counter() - t0
    ok, note = tools.patched(n)
    print(f"\ncProfile of one in-process patch apply of {n} fresh hosts: {wall:.2f} s "
          f"status={run.status} {run.summary()} hosts ok={ok} {note}")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", default="20", help="host counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--forks", type=int, default=FORKS)
    ap.add_argument("--reboot", default="never", choices=("never", "ifNeeded", "always"),
                    help="the policy's reboot (ifNeeded: acme-kernel asks for one)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--lab-dir", type=Path, default=Path(".orchestrator/bench-lab"))
    ap.add_argument("--down", action="store_true", help="stop the lab afterwards")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile an in-process apply")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.hosts.split(",") if x.strip()]
    repeat = max(1, a.repeat)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    if unknown := [t for t in tools if t not in TOOLS]:
        ap.error(f"unknown tool {unknown[0]!r}; choose from {', '.join(TOOLS)}")
    print(f"command: {' '.join(shlex.quote(x) for x in [sys.executable, *sys.argv])}")
    print(f"machine: {len(os.sched_getaffinity(0))} CPUs, load average at start {loadavg()}; "
          f"forks {a.forks} for every tool; {repeat} repeat(s); reboot {a.reboot}; packages "
          f"{', '.join(f'{k} {v}' for k, v in sorted(APPROVED.items()))} on fresh hosts")
    need = max(counts + [a.profile or 0])
    lab = ensure_lab(a.lab_dir.resolve(), need)
    tmp = Path(tempfile.mkdtemp(prefix="bench-patch-apply-"))
    t = None
    try:
        wd = Workdir(tmp, lab, a.forks, a.reboot)
        t = Tools(wd, a.forks)
        if a.profile:
            profile(t, a.profile)
            return 0
        results: dict[int, dict[str, list[Sample]]] = {n: {} for n in counts}
        for n in counts:
            print(f"  {n:>3} hosts: fresh hosts in {t.fresh(n):.1f} s (each run's reset, "
                  "not timed)", flush=True)
            for rep in range(repeat):
                for key in tools:
                    s = t.run(key, n)
                    results[n].setdefault(key, []).append(s)
                    extra = ("  " + " ".join(f"{k} {v:.2f}" for k, v in s.phases.items())
                             if s.phases else "")
                    print(f"  {n:>3} hosts  run {rep + 1}/{repeat}  {TOOLS[key][0]:<17} "
                          f"{s.wall:7.2f} s  cpu {s.cpu:6.2f} s"
                          f"{'' if s.ok else '  ! ' + s.note}{extra}", flush=True)
        report(results, counts, tools)
        print(f"\nload average at end {loadavg()}")
    finally:
        if t is not None:
            t.fresh(need)  # leave the hosts as the other benchmarks expect them
        clean_up(tmp, lab, keep=a.keep, down=a.down)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
