"""`patch apply` on Windows hosts over our own WinRM transport (the protocol level of the audit
and the scan), instead of ansible-runner: for one batch, each host in parallel (at most
`ctx.forks` at a time) and recorded as it finishes.

Per host, in one WinRM session (a new one after a reboot):
0. `may_start()` and `cancel()` are asked first, when the host's turn comes (a host beyond
   `forks` waits for a free thread): if no new host work may start (the cutoff passed, the
   window closed) or the work is canceled, the host is not touched at all (not one WinRM
   call) and is handed on as not started (`events.not_started(host, reason)`);
1. probe: free space on the system drive (`diskFreePercentMin`: below it the host fails before
   anything is touched), the KBs Get-HotFix lists (versions before), the boot time; canceled
   now, the host is still not started (nothing was changed);
2. the Windows Update Agent (windows_updates): one search, exactly the approved KBs selected,
   downloaded and installed in a one-off scheduled task under SYSTEM (windows_task), the task
   stopped and removed when canceled; `--check` searches only, in the session itself;
3. Get-HotFix again (versions after) and the RebootRequired key;
4. the reboot the policy asks for (ifNeeded: the installer's RebootRequired or the key;
   always; never): Restart-Computer, then wait for the host to answer with a new
   LastBootUpTime; one that does not come back within its reboot timeout fails with that
   reason; canceled while waiting, the wait stops (what went in stays pending a reboot);
5. health: the policy's services running (Get-Service), its command (a PowerShell script run
   as its own command, bounded by healthChecks.timeout; its exit code is command_rc; not run
   once canceled).

`cancel` (onEnd: cancel) is looked at before each stage and, every CANCEL_POLL, while the
install task runs and while the reboot is awaited. A host stopped by it fails with
`<stage>: canceled at the end of the window ...`.

The outcome is the same dict the patch playbooks' "orchestrator: result" task gives (see
playbooks/tasks/result.yml), handed to ApplyEvents as ansible-runner events would be, so that
one piece of code records `patch.install`, `reboot`, `health` and each host's outcome.

Every KB is checked against `KB[0-9]+` and every value that reaches PowerShell (KBs, service
names) is a single-quoted literal; the health command is PowerShell by design (policy).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError, TransportError
from orchestrator.inventory.model import Inventory
from orchestrator.patching.apply import REBOOT_TASK, RESULT_TASK, inventory_timeout_problem
from orchestrator.patching.windows_host import (
    REBOOT_TIMEOUT,
    HostState,
    WinJob,
    WinOutcome,
    WinPlan,
    plan_of,
    reboot_needed,
    result,
)
from orchestrator.patching.windows_remote import (
    CANCELED,
    Canceled,
    NotStarted,
    StageFailed,
    canceled,
    number,
    objects,
    parse_json,
    run_script,
    strings,
    wait,
)
from orchestrator.patching.windows_scripts import BOOT_PS, PROBE_PS, REBOOT_KEY, SERVICES_PS
from orchestrator.patching.windows_updates import KB_PATTERN, update
from orchestrator.policy.model import PatchPolicy
from orchestrator.quoting import powershell_quote as pq

__all__ = ["CANCELED", "StageFailed", "WinEvents", "WinJob", "WinOutcome", "WinPlan",
           "apply_windows", "patch_host", "plan_of"]

PROBE_TIMEOUT = 120.0
REBOOT_TIMEOUT_VAR = "orchestrator_reboot_timeout"  # host or group variable, as the playbooks
REBOOT_POLL = 2.0


class WinEvents(Protocol):
    """What apply_windows hands each host's outcome to (ApplyEvents)."""

    def __call__(self, event: dict[str, Any]) -> Any: ...

    def not_started(self, host: str, reason: str) -> None: ...



def apply_windows(ctx: RunContext, inv: Inventory, hosts: list[str], policy: PatchPolicy,
                  events: WinEvents, wanted: dict[str, list[dict[str, str]]],
                  check: bool, cancel: Callable[[], bool] | None = None,
                  may_start: Callable[[], str | None] | None = None) -> None:
    """Patch `hosts` (Windows, our WinRM transport) with each one's `wanted` KBs; feed each
    host's events to `events` (an ApplyEvents) as soon as that host is done, or tell it
    `events.not_started(host, reason)` for a host that was not touched because `may_start()`
    gave a reason when its turn came (or `cancel()` was already true)."""
    plan = replace(plan_of(policy, check), run_id=str(getattr(ctx, "run_id", "") or ""))
    jobs = []
    for h in hosts:
        host_vars = dict(inv.hosts[h].vars)
        why = inventory_timeout_problem(host_vars)
        if why is not None:
            out = WinOutcome(h)
            out.add("runner_on_failed", "orchestrator: settings", msg=f"{why}; nothing was done")
            for event in out.events:
                events(event)
            continue
        jobs.append(WinJob(h, host_vars,
                           tuple((str(p["name"]), str(p["version"])) for p in wanted[h]),
                           float(host_vars.get(REBOOT_TIMEOUT_VAR) or REBOOT_TIMEOUT)))
    work = partial(patch_host, plan=plan, settings=ctx.settings, cancel=cancel,
                   may_start=may_start)
    for finished in ctx.host_pool().run(work, jobs):
        for f in finished:
            if f.error is not None or f.result is None:
                out = WinOutcome(f.job.host)
                out.add("runner_on_failed", "orchestrator: patch",
                        msg=f"internal error: {type(f.error).__name__}: {f.error}")
            else:
                out = f.result
            if out.not_started:
                events.not_started(out.host, out.not_started)
                continue
            for event in out.events:
                events(event)


def patch_host(job: WinJob, plan: WinPlan, settings: Any,
               cancel: Callable[[], bool] | None = None,
               may_start: Callable[[], str | None] | None = None) -> WinOutcome:
    """The whole sequence on one host; never raises for host trouble."""
    from orchestrator.transports import transport_for_host

    out = WinOutcome(job.host)
    why = may_start() if may_start is not None else None
    if why is None and canceled(cancel):
        why = CANCELED
    if why is not None:  # nothing was run on the host
        out.not_started = why
        return out
    st = HostState(job, plan)
    try:
        transport = transport_for_host(job.host, job.vars, settings)
    except OrchestratorError as exc:
        out.add("runner_on_unreachable", "orchestrator: connect", msg=exc.message)
        return out
    try:
        try:
            transport.connect()
        except TransportError as exc:
            out.add("runner_on_unreachable", "orchestrator: connect", msg=exc.message)
            return out
        try:
            _sequence(transport, st, out, cancel)
        except NotStarted as exc:
            return WinOutcome(job.host, not_started=exc.reason)
        except StageFailed as exc:
            st.failure = str(exc)
            out.add("runner_on_failed", f"orchestrator: {exc.stage}", msg=exc.message)
    finally:
        transport.close()
    outcome = result(st)
    out.add("runner_on_ok", RESULT_TASK, orchestrator_result=outcome)
    if outcome["failed"]:
        out.add("runner_on_failed", "orchestrator: host failed", msg="; ".join(outcome["reasons"]))
    return out


def _sequence(transport: Any, st: HostState, out: WinOutcome,
              cancel: Callable[[], bool] | None) -> None:
    plan, job = st.plan, st.job
    for kb, _ in job.packages:
        if not KB_PATTERN.fullmatch(kb):
            st.errors[kb] = "refused: not a KB number (KB followed by digits)"
    todo = [(kb, title) for kb, title in job.packages if kb not in st.errors]

    probe = _probe(transport, "versions before")
    st.before, st.boot = probe["hotfixes"], probe["boot"]
    st.disk_free = probe["disk_free"]
    if plan.disk_free_min is not None:
        if st.disk_free is None:
            raise StageFailed("pre-check disk free",
                              f"cannot measure free space on {probe['drive'] or 'the system drive'}"
                              ": nothing was installed")
        if st.disk_free < plan.disk_free_min:
            raise StageFailed("pre-check disk free",
                              f"{st.disk_free} % free on {probe['drive']}, below the minimum of "
                              f"{plan.disk_free_min:g} %: nothing was installed")
    if canceled(cancel):  # only looked: nothing on the host was changed
        raise NotStarted(CANCELED)

    missing = [kb for kb, _ in todo if kb.upper() not in st.before]
    if missing:
        update(transport, st, missing, cancel)
    for kb in missing:
        if kb not in st.offered:
            st.errors.setdefault(kb, "not offered by Windows Update on this host")
    if plan.check:  # search only: no install, reboot or health command
        return

    after = _probe(transport, "versions after")
    st.after, st.reboot_key = after["hotfixes"], after["reboot_required"]
    if plan.reboot == "always" or (plan.reboot == "ifNeeded" and reboot_needed(st)):
        if canceled(cancel):
            raise Canceled("reboot", CANCELED)
        started = time.monotonic()
        _reboot(transport, st, cancel)
        st.rebooted = True
        out.add("runner_on_ok", REBOOT_TASK, rebooted=True,
                elapsed=round(time.monotonic() - started))
    _health(transport, st, cancel)


def _probe(transport: Any, stage: str) -> dict[str, Any]:
    data = parse_json(stage, run_script(transport, stage,
                                        PROBE_PS.replace("__REBOOT_KEY__", pq(REBOOT_KEY)),
                                        PROBE_TIMEOUT))
    if not isinstance(data, dict):
        raise StageFailed(stage, "the probe printed no object")
    size, free = number(data.get("Size")), number(data.get("FreeSpace"))
    disk = round(100.0 * free / size, 1) if size and free is not None else None
    return {"hotfixes": {h.strip().upper() for h in strings(data.get("HotFixes"))},
            "boot": str(data.get("LastBoot") or ""), "drive": str(data.get("SystemDrive") or ""),
            "disk_free": disk, "reboot_required": data.get("RebootRequired") is True}


def _reboot(transport: Any, st: HostState, cancel: Callable[[], bool] | None = None) -> None:
    """Restart-Computer, then wait for a new boot time (looking at `cancel` every
    CANCEL_POLL between two tries: canceled, the wait stops)."""
    try:
        transport.run("Restart-Computer -Force", timeout=PROBE_TIMEOUT)
    except TransportError:
        pass  # the connection may drop as the host goes down
    transport.close()
    deadline = time.monotonic() + st.job.reboot_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if wait(min(REBOOT_POLL, max(0.0, deadline - time.monotonic())), cancel):
            raise Canceled("reboot", f"{CANCELED}; stopped waiting for the host to come back "
                                     f"after Restart-Computer ({last})")
        try:  # run() opens a new session: the one before the restart is gone
            res = transport.run(BOOT_PS, timeout=max(1.0, min(PROBE_TIMEOUT,
                                                              deadline - time.monotonic())))
        except TransportError as exc:
            last = exc.message
            continue
        if res.exit_status != 0:
            last = res.first_error_line()
            continue
        boot = res.stdout.decode("utf-8", "replace").strip()
        if boot and boot != st.boot:
            st.boot = boot
            return
        last = f"boot time unchanged ({boot or 'none'})"
    raise StageFailed("reboot", f"the host did not come back within "
                                f"{st.job.reboot_timeout:g} s after Restart-Computer ({last})")


def _health(transport: Any, st: HostState, cancel: Callable[[], bool] | None = None) -> None:
    plan = st.plan
    if plan.services:
        good = [s for s in plan.services if s and not re.search(r"[\x00-\x1f*?\[\]`]", s)]
        found: dict[str, str] = {}
        if good:
            stage = "health services"
            script = SERVICES_PS.replace("__NAMES__", ",".join(pq(s) for s in good))
            text = run_script(transport, stage, script, PROBE_TIMEOUT)
            data = parse_json(stage, text) if text else []
            for item in objects(data):
                found[str(item.get("Name", "")).lower()] = str(item.get("Status", ""))
        st.services = {s: "ok" if found.get(s.lower()) == "Running" else "missing"
                       for s in plan.services}
    if plan.command and not plan.check:
        if canceled(cancel):  # the services were looked at; the command may run for long
            raise Canceled("health", f"{CANCELED}; the health command was not run")
        try:
            res = transport.run(plan.command, timeout=plan.command_timeout)
            st.command_rc = res.exit_status
        except TransportError as exc:
            st.command_rc = 124 if "timed out" in exc.message else -1
