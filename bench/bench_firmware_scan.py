"""Benchmark of `orchestrator firmware scan` against `ansible-playbook` with redfish_info and
the HTTPS floor.

Not a pytest test: it prints figures. Needs root (the lab). Against the same lab BMCs (the
Redfish emulator, orchestrator/lab/redfish_server.py: one Python process serving every BMC
over HTTPS with basic auth; each BMC lists the components BIOS, BMC and NIC) and the same
inventory (connection variables plus bmc_address, bmc_user, bmc_password, bmc_system_id,
bmc_ca_file; certificates validated against the lab CA), with the same forks (20), tools
interleaved per repeat after a warm-up round that is not counted:

  ours (process)    `orchestrator --config T/orchestrator.yml --inventory INV --format json
                    --no-progress firmware scan` as a subprocess (cold start, policy load,
                    inventory parse, one request sequence per BMC on one keep-alive HTTPS
                    connection, judging, change-log writes, JSON out); the group `bench` has
                    a FirmwarePolicy (method redfish) with the 3 components
  ours (in-proc)    scan_jobs() + run_scan() in this process (imports done, policies and
                    inventory loaded beforehand)
  ansible-playbook  `ansible-playbook -f FORKS -i INV scan.yml`: per host, delegated to
                    localhost, community.general.redfish_info category Update command
                    GetFirmwareInventory, then category Systems command GetSystemInventory
                    (the power state, which ours reads too); gather_facts false,
                    validate_certs true with ca_path the lab CA; stdout callback
                    ansible.posix.json (to validate the versions read)
  ansible (fw only) the same without the power-state task: Ansible doing less than ours
                    (a lower bound for it)
  floor             the same GETs ours makes, with plain urllib3 in FORKS threads, in-process:
                    per BMC one keep-alive connection, GET FirmwareInventory, each member,
                    the system (what a scan cannot avoid asking)
  floor (process)   the same in a fresh Python subprocess (this file, --floor-worker)
  floor (1 BMC)     the same GETs against the first BMC alone: one BMC's latency

Every result is validated against the lab's own firmware files (Lab.firmware): every host,
every component's installed version, and a power state; ours also judges (BIOS is wanted
at 999.0.0, so every host is `outdated` and the exit code is 2); ansible's stats have no
failure. A figure whose run did not validate is marked `!`.

Where time goes: the emulator is one Python process (one GIL) for all BMCs, so its CPU time
per run (from /proc/PID/stat) is printed beside each tool's, with the requests it logged
(redfish/redfish.log). When a tool's wall time is close to the emulator's CPU time, the
emulator is the bottleneck, not the tool. For ours (process), the change-log record times
split the run into start-up (process start to firmware.scan.start), scan (to
firmware.scan.end) and exit. The lab's HTTP server (werkzeug's) answers every request with
`Connection: close`: there, every GET of every tool is a new TCP connection and TLS
handshake, keep-alive or not (a real BMC keeps ours' connection open).

The goal (issue 10), at 20 BMCs: ansible-playbook / ours (process) >= 5x, paired repeat by
repeat (the ratio of each repeat's pair, then the median [min-max]).

Run:   .venv/bin/python bench/bench_firmware_scan.py [--hosts 20] [--repeat 5] [--warmup 1]
       [--lab-dir DIR] [--down] [--forks 20] [--keep]
       [--tools ours,inproc,ansible,ansiblefw,floor,floorproc,floor1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import (  # noqa: E402 - after the path set-up
    CHILDREN,
    CONN_VARS,
    FORKS,
    SELF,
    VENV_BIN,
    Sample,
    Workdir,
    bench_inventory,
    clean_up,
    ensure_lab,
    fmt,
    loadavg,
    measure,
    med,
    paired,
    run_proc,
    table,
    tail,
)

TOOLS = {  # key: (column title, method, rusage who)
    "ours": ("ours (process)", "ours_process", CHILDREN),
    "inproc": ("ours (in-proc)", "ours_inproc", SELF),
    "ansible": ("ansible-playbook", "ansible", CHILDREN),
    "ansiblefw": ("ansible (fw only)", "ansible_fw", CHILDREN),
    "floor": ("floor", "floor", SELF),
    "floorproc": ("floor (process)", "floor_process", CHILDREN),
    "floor1": ("floor (1 BMC)", "floor1", SELF),
}
BMC_VARS = ("bmc_address", "bmc_user", "bmc_password", "bmc_system_id", "bmc_ca_file")
COMPONENTS = ("BIOS", "BMC", "NIC")  # the lab BMCs' FirmwareInventory ids
FIRMWARE_INVENTORY = "/redfish/v1/UpdateService/FirmwareInventory"
SYSTEMS = "/redfish/v1/Systems"
PHASES = ("start-up", "scan", "exit")
Versions = dict[str, dict[str, str | None]]  # host -> component id -> installed version

PLAY = """---
- name: firmware scan (redfish_info)
  hosts: all
  gather_facts: false
  tasks:
"""
TASK = """    - name: {name}
      community.general.redfish_info:
        category: {category}
        command: {command}
        baseuri: "{{{{ bmc_address }}}}"
        username: "{{{{ bmc_user }}}}"
        password: "{{{{ bmc_password }}}}"
        validate_certs: true
        ca_path: "{{{{ bmc_ca_file }}}}"
        timeout: 60
      delegate_to: localhost
"""
FW_TASK = TASK.format(name="firmware inventory", category="Update",
                      command="GetFirmwareInventory")
POWER_TASK = TASK.format(name="power state", category="Systems", command="GetSystemInventory")


def policies_yaml(wanted: dict[str, str]) -> str:
    """A firmware policy (redfish, the 3 components at `wanted`) and the asset group `bench`
    (inventory group `bench`)."""
    comps = "\n".join(
        f'    - {{match: {c}, version: "{wanted[c]}", '
        f'image: "http://127.0.0.1:9/fw/{c.lower()}-{wanted[c]}.bin"}}' for c in COMPONENTS)
    return f"""apiVersion: orchestrator/v1
kind: FirmwarePolicy
metadata: {{name: bench}}
spec:
  method: redfish
  components:
{comps}
  requirePowerState: any
  rollout: {{serial: ["100%"], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: bench}}
spec:
  hosts: {{inventoryGroups: [bench]}}
  firmwarePolicy: bench
"""


# -- the floor: the same GETs with plain urllib3 --------------------------------------------
def http_floor(bmcs: list[list], ca: str, user: str, password: str, forks: int
               ) -> dict[str, tuple[dict[str, str | None], str | None]]:
    """Per BMC ([host, address, port, system id]) one keep-alive HTTPS connection (the CA
    verified): the firmware inventory, each member, the system. host -> (versions, power)."""
    import ssl
    from urllib.parse import urlsplit

    import urllib3

    ctx = ssl.create_default_context(cafile=ca)
    headers = {**urllib3.make_headers(basic_auth=f"{user}:{password}", keep_alive=True),
               "Accept": "application/json"}

    def one(bmc: list) -> tuple[str, dict[str, str | None], str | None]:
        host, address, port, system = bmc
        pool = urllib3.HTTPSConnectionPool(address, port, maxsize=1, block=True, retries=False,
                                           timeout=60, ssl_context=ctx)

        def get(path: str) -> dict:
            for _ in range(4):  # a redirect on the same BMC is followed, as ours does
                r = pool.request("GET", path, headers=headers, redirect=False)
                if r.status not in (301, 302, 303, 307, 308):
                    break
                path = urlsplit(r.headers["Location"]).path
            if r.status != 200:
                raise RuntimeError(f"{host}: GET {path}: HTTP {r.status}")
            return json.loads(r.data)

        try:
            members = [m["@odata.id"] for m in get(FIRMWARE_INVENTORY)["Members"]]
            versions = {}
            for link in members:
                item = get(link)
                versions[item["Id"]] = item.get("Version")
            return host, versions, get(f"{SYSTEMS}/{system}").get("PowerState")
        finally:
            pool.close()

    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(bmcs)))) as pool:
        return {h: (v, p) for h, v, p in pool.map(one, bmcs)}


def floor_worker() -> int:
    """--floor-worker: http_floor() with the JSON on stdin; the result as JSON on stdout."""
    a = json.loads(sys.stdin.read())
    print(json.dumps(http_floor(a["bmcs"], a["ca"], a["user"], a["password"], a["forks"])))
    return 0


# -- the lab's Redfish emulator, metered ---------------------------------------------------
class Emulator:
    """CPU time of the emulator process and the requests it logged, around a tool's run."""

    def __init__(self, lab: Any) -> None:
        self.pid = lab.status()["services"]["redfish"]["pid"]
        self.log = lab.root / "redfish" / "redfish.log"
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime

    def offset(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, offset: int) -> int:
        with open(self.log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        # werkzeug's access log; a redirect's line is coloured: "\x1b[32mGET ... HTTP/1.1\x1b[0m"
        return len(re.findall(r' HTTP/[\d.]+(?:\x1b\[0m)?" \d{3} ', text))


class Tools:
    def __init__(self, wd: Workdir, forks: int, truth: Versions) -> None:
        from orchestrator.lab.fleet import BMC_USER

        self.wd, self.forks, self.truth = wd, forks, truth
        self.emu = Emulator(wd.lab)
        self.playbook = wd.tmp / "scan.yml"
        self.playbook.write_text(PLAY + FW_TASK + POWER_TASK)
        self.playbook_fw = wd.tmp / "scan-fw.yml"
        self.playbook_fw.write_text(PLAY + FW_TASK)
        self.user, self.password = BMC_USER, wd.lab.secrets["bmc_password"]
        self.ca = str(wd.lab.ca_path)
        self._prepared: dict[int, tuple] = {}

    def inventory(self, n: int) -> Path:
        """The first n lab hosts, their connection and BMC variables: ours and ansible's."""
        return bench_inventory(self.wd.lab, self.wd.names(n), self.wd.tmp / f"inv-bmc-{n}.yml",
                               CONN_VARS + BMC_VARS)

    def metered(self, fn: Callable[[int], tuple], n: int) -> tuple[bool, str, None, dict]:
        """fn(n), with the emulator's CPU seconds and requests logged during it as phases."""
        off, cpu0 = self.emu.offset(), self.emu.cpu()
        got = fn(n)
        cpu1 = self.emu.cpu()
        phases = {**(got[2] if len(got) > 2 else {}), "emulator cpu": cpu1 - cpu0,
                  "requests": float(self.emu.requests_since(off))}
        return got[0], got[1], None, phases

    def check(self, got: Versions, power: dict[str, str | None] | None, n: int
              ) -> tuple[bool, str]:
        """Every one of the first n hosts, its 3 components at the lab's versions, a power
        state (unless power is None: not read)."""
        bad = []
        for name in self.wd.names(n):
            want = self.truth[name]
            have = {c: got.get(name, {}).get(c) for c in COMPONENTS}
            if have != want or (power is not None and not power.get(name)):
                bad.append(f"{name}: {have} power={(power or {}).get(name)}")
        extra = sorted(set(got) - set(self.wd.names(n)))
        good = not bad and not extra
        return good, "" if good else f"bad={bad[:2]} extra={extra[:2]}"

    # ours, as a whole process
    def ours_process(self, n: int) -> tuple[bool, str, dict]:
        cmd = [str(VENV_BIN / "orchestrator"), "--config", str(self.wd.config), "--inventory",
               str(self.inventory(n)), "--format", "json", "--no-progress", "firmware", "scan"]
        t0 = time.time()
        p = run_proc(cmd, self.wd.tmp)
        t1 = time.time()
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}", {}
        ok, note = self._validate(data, n, p.returncode)
        return ok, note, self._phases(data.get("run", ""), t0, t1)

    def _validate(self, data: dict, n: int, rc: int) -> tuple[bool, str]:
        hosts = data.get("hosts", [])
        got = {h["host"]: {c["id"]: c["installed"] for c in h["components"]} for h in hosts}
        power = {h["host"]: h.get("powerState") for h in hosts}
        judged = [h["host"] for h in hosts
                  if h["status"] != "outdated"
                  or {c["status"] for c in h["components"]} - {"current", "outdated", "ahead"}]
        ok, note = self.check(got, power, n)
        good = ok and rc == 2 and len(hosts) == n and not judged
        return good, "" if good else (f"rc={rc} hosts={len(hosts)} {note} judged={judged[:2]} "
                                      f"{[h.get('error') for h in hosts][:2]}")

    def _phases(self, run: str, t0: float, t1: float) -> dict[str, float]:
        """Where ours' time went, from its change-log records' times."""
        from orchestrator.changelog.open import open_store
        from orchestrator.changelog.store import LogFilter

        store = open_store(f"sqlite:///{self.wd.tmp / 'state.db'}")
        try:
            at = {rec.action: datetime.fromisoformat(rec.time.replace("Z", "+00:00")).timestamp()
                  for rec in store.records(LogFilter(run=run))
                  if rec.action in ("firmware.scan.start", "firmware.scan.end")}
        finally:
            store.close()
        marks = [t0, at.get("firmware.scan.start"), at.get("firmware.scan.end"), t1]
        if any(m is None for m in marks):
            return {}
        return {name: b - a for name, a, b in zip(PHASES, marks[:-1], marks[1:], strict=True)}

    # ours, in this process
    def prepare_inproc(self, n: int) -> None:
        from orchestrator.config import load_config
        from orchestrator.context import AppContext
        from orchestrator.inventory.loader import load_inventory

        inv = self.inventory(n)
        app = AppContext(load_config(self.wd.config, inventory=str(inv), cwd=self.wd.tmp),
                         progress=False)
        self._prepared[n] = (app, app.policies, load_inventory(inv))

    def ours_inproc(self, n: int) -> tuple[bool, str]:
        from orchestrator.firmware.scan import run_scan, scan_jobs

        if n not in self._prepared:
            self.prepare_inproc(n)
        app, ps, inv = self._prepared[n]
        result = run_scan(app.run_context(), ps, scan_jobs(ps, inv, "bench"))
        return self._validate(result.to_json(), n, result.exit_code())

    # ansible-playbook with redfish_info
    def ansible(self, n: int, power_too: bool = True) -> tuple[bool, str]:
        env, cp = self.wd.ansible_env()
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        cmd = [str(VENV_BIN / "ansible-playbook"), "-f", str(self.forks), "-i",
               str(self.inventory(n)), str(self.playbook if power_too else self.playbook_fw)]
        try:
            p = run_proc(cmd, self.wd.tmp, env)
        finally:
            self.wd.close_masters(cp)
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stdout + p.stderr)}"
        got: Versions = {}
        power: dict[str, str | None] = {}
        for task in data["plays"][0]["tasks"]:
            for host, res in task["hosts"].items():
                facts = res.get("redfish_facts", {})
                if "firmware" in facts:
                    got[host] = {e.get("Id"): e.get("Version")
                                 for e in facts["firmware"].get("entries", [])}
                if "system" in facts:  # the lab's BMCs all list every lab system (Name: host)
                    states = {e.get("Name"): e.get("PowerState")
                              for _, e in facts["system"].get("entries", [])}
                    power[host] = (states.get(host) if len(states) > 1
                                   else next(iter(states.values()), None))
        stats = data.get("stats", {})
        failed = [h for h, s in stats.items() if s.get("failures") or s.get("unreachable")]
        ok, note = self.check(got, power if power_too else None, n)
        good = p.returncode == 0 and ok and len(stats) == n and not failed
        return good, "" if good else f"rc={p.returncode} failed={failed[:3]} {note}"

    def ansible_fw(self, n: int) -> tuple[bool, str]:
        return self.ansible(n, power_too=False)

    # floors
    def _bmcs(self, n: int) -> list[list]:
        out = []
        for h in self.wd.hosts[:n]:
            address, _, port = h.bmc_address.partition(":")
            out.append([h.name, address, int(port or 443), h.bmc_system_id])
        return out

    def _floor_result(self, res: dict, n: int) -> tuple[bool, str]:
        return self.check({h: v for h, (v, _) in res.items()},
                          {h: p for h, (_, p) in res.items()}, n)

    def floor(self, n: int) -> tuple[bool, str]:
        res = http_floor(self._bmcs(n), self.ca, self.user, self.password, self.forks)
        return self._floor_result(res, n)

    def floor_process(self, n: int) -> tuple[bool, str]:
        args = json.dumps({"bmcs": self._bmcs(n), "ca": self.ca, "user": self.user,
                           "password": self.password, "forks": self.forks})
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--floor-worker"],
                           input=args, cwd=self.wd.tmp, capture_output=True, text=True,
                           timeout=900)  # the password on stdin, not in the process list
        try:
            res = json.loads(p.stdout)
        except json.JSONDecodeError:
            return False, f"rc={p.returncode}: {tail(p.stderr)}"
        return self._floor_result(res, n)

    def floor1(self, n: int) -> tuple[bool, str]:
        res = http_floor(self._bmcs(1), self.ca, self.user, self.password, 1)
        return self._floor_result(res, 1)


# -- report -------------------------------------------------------------------------------
def report(results: dict, counts: list[int], tools: list[str]) -> None:
    cols = [TOOLS[t][0] for t in tools]
    print("\nWall time, seconds (median of repeats; `!` = a run did not validate)")
    table(["hosts", *cols], [[str(n), *[fmt(results[n].get(t, [])) for t in tools]]
                             for n in counts])

    def ph(samples: list[Sample], key: str) -> float | None:
        vals = sorted(s.phases[key] for s in samples if s.phases and key in s.phases)
        return vals[len(vals) // 2] if vals else None

    print("\nCPU seconds per run (median): controller (user+sys) / Redfish emulator / "
          "requests the emulator logged")
    table(["hosts", *cols], [[str(n)] + [
        "-" if not results[n].get(t) else
        f"{med(results[n][t], 'cpu'):.2f} / {ph(results[n][t], 'emulator cpu') or 0:.2f} / "
        f"{ph(results[n][t], 'requests') or 0:.0f}" for t in tools] for n in counts])
    print("\nMachine CPU seconds per run (median; /proc/stat, both cores, includes the emulator "
          "and everything else running)")
    table(["hosts", *cols], [[str(n)] + ["-" if not results[n].get(t) else
                                         f"{med(results[n][t], 'machine_cpu'):.2f}"
                                         for t in tools] for n in counts])
    print("\nRatios, paired repeat by repeat: median [min-max]")
    rows = []
    for n in counts:
        r = results[n]
        pairs = (("ansible", "ours", "  >= 5x (goal)"), ("ansible", "inproc", ""),
                 ("ansiblefw", "ours", ""),
                 ("ours", "floorproc", ""), ("inproc", "floor", ""),
                 ("ansible", "floorproc", ""))
        for a, b, goal in pairs:
            if r.get(a) and r.get(b):
                rows.append([str(n), f"{TOOLS[a][0]} / {TOOLS[b][0]}{goal}",
                             paired(r[a], r[b], lambda x, y: x / y)])
    if rows:
        table(["hosts", "ratio", "median [min-max]"], rows)
    rows = []
    for n in counts:
        ours = [s.phases for s in results[n].get("ours", []) if s.phases and "scan" in s.phases]
        if ours:
            rows.append([str(n), *[f"{sorted(p[k] for p in ours)[len(ours) // 2]:.2f}"
                                   for k in PHASES]])
    if rows:
        print("\nWhere ours (process) spends its time, seconds (median; change-log record times)")
        table(["hosts", *PHASES], rows)
    notes = [(n, t, s.note) for n in counts for t in tools for s in results[n].get(t, [])
             if not s.ok]
    for n, t, note in notes[:12]:
        print(f"! {n} hosts, {TOOLS[t][0]}: {note}")


def lab_truth(lab: Any, names: list[str]) -> Versions:
    """The installed versions the lab's BMCs hold (their firmware files)."""
    return {name: {c: lab.firmware(name).get(c, {}).get("Version") for c in COMPONENTS}
            for name in names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", default="20", help="host (BMC) counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="rounds of every tool not counted")
    ap.add_argument("--forks", type=int, default=FORKS)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--lab-dir", type=Path, default=Path(".orchestrator/bench-lab"))
    ap.add_argument("--down", action="store_true", help="stop the lab afterwards")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--floor-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.floor_worker:
        return floor_worker()
    counts = [int(x) for x in a.hosts.split(",") if x.strip()]
    repeat = max(1, a.repeat)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    if unknown := [t for t in tools if t not in TOOLS]:
        ap.error(f"unknown tool {unknown[0]!r}; choose from {', '.join(TOOLS)}")
    print(f"command: {' '.join(shlex.quote(x) for x in [sys.executable, *sys.argv])}")
    print(f"machine: {len(os.sched_getaffinity(0))} CPUs, load average at start {loadavg()}; "
          f"forks {a.forks} for every tool; {repeat} repeat(s) after {a.warmup} warm-up "
          f"round(s); components {', '.join(COMPONENTS)} per BMC")
    lab = ensure_lab(a.lab_dir.resolve(), max(counts))
    tmp = Path(tempfile.mkdtemp(prefix="bench-firmware-scan-"))
    try:
        truth = lab_truth(lab, [h.name for h in lab.hosts[:max(counts)]])
        first = truth[lab.hosts[0].name]
        wanted = {"BIOS": "999.0.0", "BMC": first["BMC"] or "1", "NIC": first["NIC"] or "1"}
        wd = Workdir(tmp, lab, a.forks, policies=policies_yaml(wanted))
        t = Tools(wd, a.forks, truth)
        results: dict[int, dict[str, list[Sample]]] = {n: {} for n in counts}
        for n in counts:
            if "inproc" in tools:
                t.prepare_inproc(n)
            for rep in range(-max(0, a.warmup), repeat):
                for key in tools:
                    _, method, who = TOOLS[key]
                    s = measure(lambda m=method, k=n: t.metered(getattr(t, m), k), who)
                    if rep >= 0:
                        results[n].setdefault(key, []).append(s)
                    label = f"run {rep + 1}/{repeat}" if rep >= 0 else "warm-up"
                    extra = " ".join(f"{k} {v:.2f}" for k, v in (s.phases or {}).items())
                    print(f"  {n:>3} hosts  {label:<9} {TOOLS[key][0]:<17} {s.wall:7.2f} s  "
                          f"cpu {s.cpu:6.2f} s  {extra}{'' if s.ok else '  ! ' + s.note}",
                          flush=True)
        report(results, counts, tools)
        print(f"\nload average at end {loadavg()}")
    finally:
        clean_up(tmp, lab, keep=a.keep, down=a.down)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
