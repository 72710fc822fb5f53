"""`firmware scan`: per host, each component of its firmware policy, installed against wanted.

Per host one request sequence: Redfish through the BMC (redfish_read, one keep-alive HTTPS
connection) or fwupd in-band (the `fwupd.devices` fact over SSH); hosts in parallel on the host
pool, bounded by forks. Judging is pure (judge.py). Every scan is new change-log records
(`firmware.scan.start`, one `firmware.scan` per host as it finishes, `firmware.scan.end`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import EXIT_CHANGES, EXIT_INCOMPLETE, EXIT_OK, OrchestratorError
from orchestrator.firmware.judge import judge
from orchestrator.firmware.model import HostFirmware, Reading
from orchestrator.hostfacts import chosen_members
from orchestrator.inventory.model import Inventory
from orchestrator.policy.model import PolicySet

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class FirmwareJob:
    """One host to read: plain, picklable data."""

    host: str
    group: str
    method: str  # redfish | fwupd
    vars: dict[str, Any] = field(compare=False, repr=False)


@dataclass
class FirmwareScan:
    run: str
    hosts: list[HostFirmware] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out = {"hosts": len(self.hosts), "compliant": 0, "outdated": 0, "unknown": 0,
               "unreachable": 0, "error": 0}
        for h in self.hosts:
            out[h.status] += 1
        states = [c.status for h in self.hosts for c in h.components]
        out.update({f"components{s.capitalize()}": states.count(s)
                    for s in ("current", "outdated", "ahead", "unknown")})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "hosts": [h.to_json() for h in self.hosts],
                "summary": self.summary()}

    def exit_code(self) -> int:
        """As `patch scan`: 0 compliant, 2 outdated components, 4 incomplete (a host
        unreachable or in error, a component not found, no hosts)."""
        s = self.summary()
        if s["outdated"]:
            return EXIT_CHANGES
        if s["unreachable"] or s["error"] or s["unknown"] or not self.hosts:
            return EXIT_INCOMPLETE
        return EXIT_OK


def scan_jobs(ps: PolicySet, inv: Inventory, group: str | None = None,
              limit: str | None = None) -> list[FirmwareJob]:
    """One job per host of the chosen groups that have a firmware policy; a host in two such
    groups with different firmware policies is an error."""
    by_host: dict[str, str] = {}
    for g, h in chosen_members(ps, inv, group, limit):
        if g.firmware_policy is None:
            continue
        other = by_host.get(h.name)
        if other is not None and ps.groups[other].firmware_policy != g.firmware_policy:
            raise OrchestratorError(
                f"{inv.source}: host {h.name} is in groups {other} and {g.name}, whose firmware "
                f"policies differ ({ps.groups[other].firmware_policy}, {g.firmware_policy}); "
                "put it in one of them")
        by_host.setdefault(h.name, g.name)
    out = []
    for name in sorted(by_host):
        g = ps.groups[by_host[name]]
        method = ps.firmware_policies[g.firmware_policy].method  # type: ignore[index]
        out.append(FirmwareJob(name, g.name, method, dict(inv.hosts[name].vars)))
    return out


def read_host(job: FirmwareJob, settings: Any, timeout: float) -> Reading:
    """The host's components and power state; never raises for host or BMC trouble."""
    started = time.monotonic()

    def done(status: str, error: str | None = None, **kw: Any) -> Reading:
        return Reading(job.host, status, error, seconds=round(time.monotonic() - started, 3),
                       **kw)

    if job.method == "fwupd":
        return _read_fwupd(job, settings, timeout, done)
    from orchestrator.firmware.bmc import bmc_of
    from orchestrator.firmware.redfish_read import firmware_inventory, power_state
    from orchestrator.transports.redfish import RedfishSession, Unreachable

    try:
        bmc = bmc_of(job.host, job.vars)
        with RedfishSession(bmc, timeout=timeout) as session:
            items = firmware_inventory(session)
            power = power_state(session, bmc.system_id)
    except Unreachable as exc:
        return done("unreachable", exc.message)
    except OrchestratorError as exc:
        return done("error", exc.message)
    return done("ok", components=tuple(items), power_state=power)


def _read_fwupd(job: FirmwareJob, settings: Any, timeout: float,
                done: Callable[..., Reading]) -> Reading:
    from orchestrator.facts import FactRequest
    from orchestrator.hostfacts import gather_host

    request = FactRequest("fwupd")
    got = gather_host(job.host, job.vars, settings, [request], timeout)
    if got.status != "ok":
        return done(got.status, got.error)
    result = got.facts[request]
    if not result.ok:
        return done("error", f"{job.host}: fwupd: {result.error}")
    from orchestrator.firmware.model import Installed

    return done("ok", components=tuple(
        Installed(d.id, d.name, d.version, None, d.updatable, d.guids, d.plugin)
        for d in result.value.devices))


def run_scan(ctx: RunContext, ps: PolicySet, jobs: list[FirmwareJob], *,
             timeout: float = DEFAULT_TIMEOUT,
             progress: Callable[[HostFirmware, int, int], None] | None = None) -> FirmwareScan:
    run = FirmwareScan(ctx.run_id)
    ctx.record("firmware.scan.start", "started", hosts=len(jobs))
    results: dict[str, HostFirmware] = {}
    try:
        work = partial(read_host, settings=ctx.settings, timeout=timeout)
        n = 0
        for finished in ctx.host_pool().run(work, jobs):
            batch = []
            for f in finished:
                reading = f.result if f.error is None else Reading(
                    f.job.host, "error", f"internal error: {type(f.error).__name__}: {f.error}")
                policy = ps.firmware_policies[ps.groups[f.job.group].firmware_policy]  # type: ignore[index]
                h = judge(policy, f.job.group, reading)
                results[h.host] = h
                batch.append(h)
            ctx.record_all([ctx.entry("firmware.scan", h.status, host=h.host, group=h.group,
                                      **h.record_details()) for h in batch])
            for h in batch:
                n += 1
                if progress:
                    progress(h, n, len(jobs))
        run.hosts.extend(results[j.host] for j in jobs)
    finally:
        ctx.record("firmware.scan.end", "finished" if len(run.hosts) == len(jobs) else "aborted",
                   **run.summary())
    return run
