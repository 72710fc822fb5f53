"""The Windows apply path without a lab: each host's events reach ApplyEvents as that host
finishes (not at the end of the batch), a bad inventory timeout fails the host untouched, the
result's statuses for a reboot that was not done, `may_start` asked when each host's turn
comes (a host that may not start is not touched), and `cancel` (onEnd: cancel) ending the
install task and the reboot wait. Hosts run in the lab's Windows emulator in-process (no lab,
no root); the protocol itself is tested against the lab's WinRM endpoint
(test_windows_apply_lab.py)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from types import SimpleNamespace

from orchestrator.errors import TransportError
from orchestrator.hostpool import LocalPool
from orchestrator.lab.winstate import default_state
from orchestrator.patching import windows_apply as W
from orchestrator.patching import windows_host as H
from orchestrator.patching import windows_remote as R
from orchestrator.patching import windows_task as T
from orchestrator.patching import windows_updates as U
from orchestrator.patching.apply import REBOOT_TASK, RESULT_TASK


def _ctx(forks: int = 4) -> SimpleNamespace:
    return SimpleNamespace(settings=None, host_pool=lambda: LocalPool(forks, group_window=0))


def _inv(**hosts: dict) -> SimpleNamespace:
    return SimpleNamespace(hosts={h: SimpleNamespace(vars=v) for h, v in hosts.items()})


POLICY = SimpleNamespace(reboot="ifNeeded", disk_free_percent_min=None,
                         health_checks=SimpleNamespace(services=(), command=None,
                                                       timeout=SimpleNamespace(
                                                           total_seconds=lambda: 60)))
WANTED = {"fast": [{"name": "KB1", "version": "one"}], "slow": [{"name": "KB2", "version": "two"}]}


def test_each_host_is_handed_on_as_it_finishes(monkeypatch) -> None:
    fast_seen = threading.Event()

    def fake(job, plan, settings, cancel=None, may_start=None):
        out = H.WinOutcome(job.host)
        saw = fast_seen.wait(10) if job.host == "slow" else None
        out.add("runner_on_ok", RESULT_TASK, orchestrator_result={"saw_fast": saw})
        return out

    events: list[tuple[str, object]] = []

    def handler(event: dict) -> None:
        data = event["event_data"]
        events.append((data["host"], data["res"]["orchestrator_result"]["saw_fast"]))
        if data["host"] == "fast":
            fast_seen.set()

    monkeypatch.setattr(W, "patch_host", fake)
    W.apply_windows(_ctx(), _inv(fast={}, slow={}), ["slow", "fast"], POLICY, handler,
                    WANTED, check=False)
    # slow waited until fast's events had been handed on: they were not held for the batch
    assert events == [("fast", None), ("slow", True)]


def test_a_bad_reboot_timeout_fails_the_host_before_it_is_touched(monkeypatch) -> None:
    touched: list[str] = []

    def fake(job, plan, settings, cancel=None, may_start=None):
        touched.append(job.host)
        return H.WinOutcome(job.host)

    got: list[dict] = []
    monkeypatch.setattr(W, "patch_host", fake)
    W.apply_windows(_ctx(), _inv(fast={"orchestrator_reboot_timeout": "60; x"},
                                 slow={"orchestrator_reboot_timeout": 30}),
                    ["fast", "slow"], POLICY, got.append, WANTED, check=False)
    assert touched == ["slow"]
    [event] = got
    assert event["event"] == "runner_on_failed"
    assert event["event_data"]["host"] == "fast"
    assert "orchestrator_reboot_timeout" in event["event_data"]["res"]["msg"]


def _host(reboot: str = "never", **kw) -> H.HostState:
    plan = H.WinPlan(reboot, None, (), "", 60.0, False)
    job = H.WinJob("h", {}, (("KB1", "one"), ("KB2", "two"), ("KB3", "three")))
    return H.HostState(job, plan, before={"KB3"}, **kw)


def test_only_the_updates_that_ask_wait_for_the_reboot() -> None:
    st = _host(after={"KB1", "KB2", "KB3"}, installer_reboot=True,
               results={"KB1": {"RebootRequired": True}, "KB2": {"RebootRequired": False}})
    result = H.result(st)
    assert [(p["name"], p["status"], p["before"], p["after"]) for p in result["packages"]] == [
        ("KB1", "installed_pending_reboot", None, "one"),
        ("KB2", "installed", None, "two"),
        ("KB3", "installed", "three", "three")]
    assert (result["reboot_needed"], result["rebooted"], result["failed"]) == (True, False, False)


def test_a_failed_stage_leaves_the_rest_not_attempted() -> None:
    st = _host(failure="pre-check disk free: 5.0 % free on C:")
    result = H.result(st)
    assert [(p["name"], p["status"], p.get("error")) for p in result["packages"]] == [
        ("KB1", "failed", "not attempted: pre-check disk free: 5.0 % free on C:"),
        ("KB2", "failed", "not attempted: pre-check disk free: 5.0 % free on C:"),
        ("KB3", "installed", None)]
    assert result["failed"] is True
    assert result["reasons"] == ["pre-check disk free: 5.0 % free on C:",
                                 "packages failed: KB1, KB2"]


def test_install_task_names_are_safe_and_unique() -> None:
    """The run id reaches PowerShell and a file name only as [A-Za-z0-9-]; two tries of one run
    never share a task."""
    evil = "r-1'; Remove-Item C:\\ -Recurse; '\\..\\x"
    names = {T.task_name(evil) for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert re.fullmatch(r"orchestrator-[A-Za-z0-9-]+", name), name
        assert name.startswith("orchestrator-r-1---Remove-Item-C----Recurse")


def test_the_install_task_runs_its_script_encoded_and_refuses_a_forged_stage() -> None:
    """powershell.exe gets the task script as -EncodedCommand (UTF-16LE base64), nothing else;
    a result naming a KB that was not asked for is refused."""
    args = T.task_command("'é' | Out-Null")
    assert args.startswith("-NoProfile -NonInteractive -EncodedCommand ")
    assert base64.b64decode(args.split()[-1]).decode("utf-16-le") == "'é' | Out-Null"
    st = _host()
    forged = '{"Stage":"offered","KB":"KB9","Title":"x"}\n{"Stage":"end"}'
    try:
        U.parse_update("install", forged, st, ["KB1"])
    except R.StageFailed as exc:
        assert "not asked for" in exc.message
    else:
        raise AssertionError("a KB not asked for was accepted")
    incomplete = '{"Stage":"offered","KB":"KB1","Title":"x"}'
    try:
        U.parse_update("install", incomplete, _host(), ["KB1"])
    except R.StageFailed as exc:
        assert "incomplete" in exc.message
    else:
        raise AssertionError("a result without its end line was accepted")


class _EmulatedHost:
    """A transport that runs scripts in the lab's Windows emulator as the WinRM endpoint would
    (the stdin bootstrap), over a state file: no lab and no root needed. While the host
    restarts (Restart-Computer) it answers nothing, as the endpoint. `scripts` keeps every
    script run, in order."""

    def __init__(self, path) -> None:
        self.path = path
        self.scripts: list[str] = []

    def connect(self) -> None:
        self.scripts.append("<connect>")

    def close(self) -> None:
        pass

    def run(self, script: str, timeout: float | None = None):
        from orchestrator.lab import winps
        from orchestrator.transports.base import Result
        from orchestrator.transports.winrm import POWERSHELL_ARGS, stdin_payload

        self.scripts.append(script)
        if winps.unavailable(str(self.path)):
            raise TransportError("h", "connection refused")
        out, err, code = winps.run_command(str(self.path), "powershell.exe",
                                           list(POWERSHELL_ARGS), stdin_payload(script))
        return Result(exit_status=code, stdout=out, stderr=err)

    def count(self, marker: str) -> int:
        return sum(marker in s for s in self.scripts)


def test_no_second_install_task_while_one_runs(tmp_path) -> None:
    """An orchestrator task still running on the host (another run, or one left by a killed
    orchestrator): the install refuses to start a second one, registers nothing, and leaves
    the running one alone."""
    import json

    from orchestrator.lab.winstate import default_state

    state = default_state("lab-win-01")
    state["scheduled_tasks"] = {"orchestrator-r-old-0badf00d": {
        "Execute": "powershell.exe", "Arguments": "-Command exit", "UserId": "SYSTEM",
        "LogonType": "ServiceAccount", "RunLevel": "Highest", "State": "Running",
        "LastTaskResult": 0x41301, "LastRunTime": None, "due": 4e9}}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(state))
    st = _host()
    try:
        U.update(_EmulatedHost(path), st, ["KB1"])
    except R.NotStarted as exc:  # nothing touched: deferred (goes first next time), no failure
        assert "another orchestrator install task is running on this host: " \
               "orchestrator-r-old-0badf00d" in exc.reason
    else:
        raise AssertionError("a second install task was started")
    after = json.loads(path.read_text())
    assert list(after["scheduled_tasks"]) == ["orchestrator-r-old-0badf00d"]
    assert after["scheduled_tasks"]["orchestrator-r-old-0badf00d"]["State"] == "Running"
    assert not st.errors


# --------------------------------------------------------------- may_start and onEnd: cancel
POLL = "Get-ScheduledTaskInfo -TaskName $name).LastTaskResult }\n$done"  # POLL_PS only
BOOT = "(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime"  # BOOT_PS only
KB = "KB2267602"


class _Events:
    """A stand-in for ApplyEvents: the events, and the hosts reported not started."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.not_started_hosts: list[tuple[str, str]] = []

    def __call__(self, event: dict) -> None:
        self.events.append(event)

    def not_started(self, host: str, reason: str) -> None:
        self.not_started_hosts.append((host, reason))


def _emulated(tmp_path, monkeypatch, behavior: str = "NeverReboots",
              **changes) -> _EmulatedHost:
    """One emulated host with KB2267602 pending; transport_for_host gives it."""
    state = default_state("lab-win-01")
    state["pending_updates"] = [{
        "KB": KB, "Title": "Security Intelligence Update (KB2267602)",
        "MsrcSeverity": "Important", "Classification": "Security Updates",
        "Released": "2024-01-01", "RebootBehavior": behavior}]
    state.update(changes)
    path = tmp_path / "host.json"
    path.write_text(json.dumps(state))
    host = _EmulatedHost(path)
    monkeypatch.setattr("orchestrator.transports.transport_for_host",
                        lambda *a, **k: host)
    return host


def _job(reboot: str = "never", reboot_timeout: float = 600.0) -> tuple[H.WinJob, H.WinPlan]:
    plan = H.WinPlan(reboot, None, (), "", 60.0, False, run_id="r-1")
    return H.WinJob("h", {}, ((KB, "Security Intelligence Update (KB2267602)"),),
                    reboot_timeout), plan


def _failed(out: H.WinOutcome) -> list[tuple[str, str]]:
    return [(e["event_data"]["task"], e["event_data"]["res"]["msg"]) for e in out.events
            if e["event"] == "runner_on_failed"]


def _result_of(out: H.WinOutcome) -> dict:
    [res] = [e["event_data"]["res"]["orchestrator_result"] for e in out.events
             if e["event_data"]["task"] == RESULT_TASK]
    return res


def test_cancel_stops_the_install_task_within_one_poll(tmp_path, monkeypatch) -> None:
    """onEnd: cancel while the install task runs (it would run for an hour): patch_host ends
    within one TASK_POLL of the cancel, the task is stopped, then unregistered, and the KB
    fails with the cancel as its reason; nothing is installed."""
    host = _emulated(tmp_path, monkeypatch, task_seconds=3600)
    monkeypatch.setattr(T, "TASK_POLL", 2.0)
    monkeypatch.setattr(T, "INSTALL_TIMEOUT", 8.0)  # the old code's bound: polls go on
    monkeypatch.setattr(R, "CANCEL_POLL", 0.05)
    fired: list[float] = []

    def cancel() -> bool:
        if host.count(POLL) >= 2 and not fired:
            fired.append(time.monotonic())
        return bool(fired)

    job, plan = _job()
    out = W.patch_host(job, plan, None, cancel=cancel)
    ended = time.monotonic()
    assert fired and ended - fired[0] < T.TASK_POLL
    assert host.count(POLL) == 2
    assert not out.not_started
    [(task, msg)] = _failed(out)[:1]
    assert task == "orchestrator: install"
    assert msg.startswith(R.CANCELED) and "was stopped and unregistered" in msg
    [pkg] = _result_of(out)["packages"]
    assert pkg["status"] == "failed" and pkg["error"].startswith(R.CANCELED)
    state = json.loads(host.path.read_text())
    history = [e["event"] for e in state["scheduled_task_history"]]
    assert history == ["registered", "started", "stopped", "deleted"]
    assert state["scheduled_tasks"] == {} and not state.get("scheduled_task_orphans")
    assert [u["KB"] for u in state["pending_updates"]] == [KB]


def test_cancel_stops_the_reboot_wait(tmp_path, monkeypatch) -> None:
    """onEnd: cancel while waiting for a host that does not come back from its restart: the
    wait stops (not at the reboot timeout), the reboot is recorded as failed with the cancel
    as reason, and what went in stays pending a reboot."""
    host = _emulated(tmp_path, monkeypatch, "AlwaysRequiresReboot", reboot_seconds=3600)
    monkeypatch.setattr(T, "TASK_POLL", 0.3)
    monkeypatch.setattr(W, "REBOOT_POLL", 0.2)
    monkeypatch.setattr(R, "CANCEL_POLL", 0.05)
    job, plan = _job(reboot="ifNeeded", reboot_timeout=5.0)
    out = W.patch_host(job, plan, None, cancel=lambda: host.count(BOOT) >= 2)
    assert host.count(BOOT) == 2
    assert "Restart-Computer -Force" in host.scripts
    [(task, msg)] = _failed(out)[:1]
    assert task == REBOOT_TASK
    assert msg.startswith(R.CANCELED) and "stopped waiting for the host" in msg
    result = _result_of(out)
    assert result["rebooted"] is False and result["failed"] is True
    [pkg] = result["packages"]
    assert pkg["status"] == "installed_pending_reboot"


def test_a_host_that_may_not_start_is_not_touched(tmp_path, monkeypatch) -> None:
    """may_start gives a reason when the host's turn comes: not one call reaches the host
    (no transport is even made) and the host is reported not started, with that reason."""
    made: list[str] = []

    def no_transport(host, *a, **k):
        made.append(host)
        raise AssertionError("the host was touched")

    monkeypatch.setattr("orchestrator.transports.transport_for_host", no_transport)
    events = _Events()
    why = "the cutoff of w@2024-01-01 passed at 04:00; no new work starts"
    W.apply_windows(_ctx(), _inv(a={}, b={}), ["a", "b"], POLICY, events,
                    {"a": [{"name": "KB1", "version": "one"}],
                     "b": [{"name": "KB2", "version": "two"}]},
                    check=False, may_start=lambda: why)
    assert made == []
    assert events.events == []
    assert sorted(events.not_started_hosts) == [("a", why), ("b", why)]


def test_may_start_is_asked_when_a_queued_host_starts(tmp_path, monkeypatch) -> None:
    """forks 1: the second host waits for the first, and the cutoff passes while the first
    installs. The second is not started: may_start is asked when its turn comes, not when the
    batch is queued."""
    host = _emulated(tmp_path, monkeypatch, task_seconds=0)
    monkeypatch.setattr(T, "TASK_POLL", 0.2)
    asked: list[str | None] = []

    def may_start() -> str | None:  # the cutoff passes once the first host has installed
        asked.append("the cutoff passed" if host.count("Register-ScheduledTask") else None)
        return asked[-1]

    events = _Events()
    wanted = {h: [{"name": KB, "version": "t"}] for h in ("first", "second")}
    W.apply_windows(_ctx(forks=1), _inv(first={}, second={}), ["first", "second"], POLICY,
                    events, wanted, check=False, may_start=may_start)
    assert asked == [None, "the cutoff passed"]
    assert {e["event_data"]["host"] for e in events.events} == {"first"}
    assert events.not_started_hosts == [("second", "the cutoff passed")]
    assert host.count("<connect>") == 1


def test_a_host_canceled_before_it_starts_is_not_started(tmp_path, monkeypatch) -> None:
    """onEnd: cancel already true when the host's turn comes: nothing runs on it and it is
    not started (not failed: it never began)."""
    host = _emulated(tmp_path, monkeypatch)
    job, plan = _job()
    out = W.patch_host(job, plan, None, cancel=lambda: True)
    assert out.not_started == R.CANCELED and out.events == []
    assert host.scripts == []


def test_canceled_before_anything_changed_is_not_started(tmp_path, monkeypatch) -> None:
    """Canceled after the read-only probe, before the install: nothing on the host changed,
    so the host is not started (it goes first next time) rather than failed."""
    host = _emulated(tmp_path, monkeypatch)
    calls = {"n": 0}

    def cancel() -> bool:  # false when the host starts, true after the probe
        calls["n"] += 1
        return calls["n"] > 1

    job, plan = _job()
    out = W.patch_host(job, plan, None, cancel=cancel, may_start=lambda: None)
    assert out.not_started == R.CANCELED and out.events == []
    assert host.count("<connect>") == 1
    assert host.count("Register-ScheduledTask") == 0


def test_a_canceled_host_does_not_run_its_health_command(tmp_path, monkeypatch) -> None:
    """Canceled once the install is done: the services are still looked at (one short round
    trip) but the policy's health command, which may run for its whole timeout, is not run;
    the host fails with the cancel, its KB installed."""
    host = _emulated(tmp_path, monkeypatch, task_seconds=0)
    monkeypatch.setattr(T, "TASK_POLL", 0.2)
    plan = H.WinPlan("never", None, ("WinRM",), "exit 3", 60.0, False, run_id="r-1")
    job, _ = _job()
    probes = "SystemDrive = [string]$env:SystemDrive"  # PROBE_PS: versions before and after
    out = W.patch_host(job, plan, None, cancel=lambda: host.count(probes) >= 2)
    assert "exit 3" not in host.scripts
    assert host.count("Get-Service -Name 'WinRM'") == 1
    [(task, msg)] = _failed(out)[:1]
    assert task == "orchestrator: health"
    assert msg == f"{R.CANCELED}; the health command was not run"
    result = _result_of(out)
    assert [p["status"] for p in result["packages"]] == ["installed"]
    assert result["health"] == {"services": {"WinRM": "ok"}, "command_rc": None}
