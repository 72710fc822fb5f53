"""The Task Scheduler of the lab's Windows emulator (stdlib only): the ScheduledTasks cmdlets
over `state["scheduled_tasks"]`, and tasks that run their PowerShell later, as SYSTEM.

A recorded-state emulator, not the Task Scheduler. Commands (a subset of their parameters;
any other parameter fails as PowerShell's binder does):
  New-ScheduledTaskAction -Execute X [-Argument A] [-WorkingDirectory D]
  New-ScheduledTaskPrincipal -UserId U [-LogonType ServiceAccount|S4U|Interactive|Password]
                             [-RunLevel Limited|Highest]
  New-ScheduledTaskSettingsSet [-AllowStartIfOnBatteries] [-DontStopIfGoingOnBatteries] [-Hidden]
  Register-ScheduledTask [-TaskName] N -Action A [-Principal P] [-Settings S] [-Force]
                         [-Description D]   (an existing name without -Force fails)
  Start-ScheduledTask [-TaskName] N         Stop-ScheduledTask [-TaskName] N
  Get-ScheduledTask [[-TaskName] N (wildcards)] (TaskName, TaskPath, State: Ready | Running,
                                                 Actions, Principal)
  Get-ScheduledTaskInfo [-TaskName] N       (LastRunTime, LastTaskResult, NumberOfMissedRuns)
  Unregister-ScheduledTask [-TaskName] N -Confirm:$false (without it the session would have
                         to prompt, which a non-interactive session cannot: it fails)
Task names may also come from the pipeline (Get-ScheduledTask ... | Stop-ScheduledTask).

Running: Start-ScheduledTask makes the task Running (LastTaskResult 0x41301) for the state's
`task_seconds` (default 1; a large value: a task that never finishes). The first command the
host runs after that time (or Get-ScheduledTask / Get-ScheduledTaskInfo asking) runs the
action: `powershell[.exe] ... -EncodedCommand B64` runs its script in the emulator as SYSTEM
(the identity its principal names: only SYSTEM is emulated), its output discarded, its exit
code the LastTaskResult; any other program gives 0x80070002 (not found). Stop-ScheduledTask
ends a running task (LastTaskResult 0x41306) without running its action. As on Windows, a task
unregistered while it runs keeps running (`scheduled_task_orphans`) and still runs its action.
Every change is appended to `scheduled_task_history` ({"task", "event": registered | started
| completed | stopped | deleted, "time"}), as the TaskScheduler operational log would show it.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

try:  # imported as orchestrator.lab.wintasks (tests) or as a sibling script (winrm_server.py)
    from . import winps_lang as L
except ImportError:  # pragma: no cover - the lab server's own import path
    import winps_lang as L  # type: ignore[no-redef]

PSError = L.PSError
DEFAULT_TASK_SECONDS = 1.0
HAS_NOT_RUN, RUNNING, TERMINATED = 0x41303, 0x41301, 0x41306
FILE_NOT_FOUND = 0x80070002
SYSTEM_NAMES = ("system", "nt authority\\system", "s-1-5-18", "localsystem")
LOGON_TYPES = ("None", "Password", "S4U", "Interactive", "Group", "ServiceAccount",
               "InteractiveOrPassword")
Runner = Callable[[str], int]
"""Runs a task's PowerShell script as SYSTEM against the same state; its exit code."""


class TaskAction(L.PSObject):
    """New-ScheduledTaskAction's result (MSFT_TaskExecAction)."""


class TaskPrincipal(L.PSObject):
    """New-ScheduledTaskPrincipal's result."""


class TaskSettings(L.PSObject):
    """New-ScheduledTaskSettingsSet's result."""


def _only(b: L.Bound, cmd: str, allowed: tuple[str, ...], positional: int = 0) -> None:
    for name in b.named:
        if name not in (*allowed, "erroraction"):
            raise PSError(f"A parameter cannot be found that matches parameter name '{name}'.",
                          cmd)
    if len(b.pos) > positional:
        raise PSError(f"A positional parameter cannot be found that accepts argument "
                      f"'{L.to_string(b.pos[positional])}'.", cmd)


def _signed(code: int) -> int:
    return code - 2**32 if code >= 2**31 else code


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def script_of(arguments: str) -> str | None:
    """The script of `-EncodedCommand B64` in powershell.exe's arguments (None if none)."""
    m = re.search(r"(?:^|\s)-(?:e|ec|enc|encodedcommand)\s+(\S+)", arguments, re.I)
    if not m:
        return None
    try:
        return base64.b64decode(m.group(1), validate=True).decode("utf-16-le")
    except ValueError:
        return None


class Scheduler:
    """The host's registered tasks and the commands over them (`commands()`)."""

    def __init__(self, state: dict, runner: Runner) -> None:
        self.state, self.runner = state, runner

    @property
    def tasks(self) -> dict[str, dict]:
        return self.state.setdefault("scheduled_tasks", {})

    def _log(self, name: str, event: str) -> None:
        self.state.setdefault("scheduled_task_history", []).append(
            {"task": name, "event": event, "time": _now()})

    # time passing
    def advance(self, now: float | None = None) -> None:
        """Run every task (and orphan) whose time has come."""
        now = time.time() if now is None else now
        for name, task in list(self.state.get("scheduled_tasks", {}).items()):
            if task.get("State") == "Running" and float(task.get("due") or 0) <= now:
                task["State"], task["due"] = "Ready", None
                task["LastTaskResult"] = self._run(task)
                self._log(name, "completed")
        orphans = self.state.get("scheduled_task_orphans", [])
        for task in [t for t in orphans if float(t.get("due") or 0) <= now]:
            orphans.remove(task)
            self._run(task)
            self._log(task["TaskName"], "completed")
        if not orphans:
            self.state.pop("scheduled_task_orphans", None)

    def _run(self, task: dict) -> int:
        exe = str(task.get("Execute", "")).lower().rsplit("\\", 1)[-1]
        if exe not in ("powershell", "powershell.exe"):
            return _signed(FILE_NOT_FOUND)
        script = script_of(str(task.get("Arguments") or ""))
        return self.runner(script) if script is not None else 1

    # commands
    def commands(self) -> dict[str, L.Command]:
        return {"new-scheduledtaskaction": self.new_action,
                "new-scheduledtaskprincipal": self.new_principal,
                "new-scheduledtasksettingsset": self.new_settings,
                "register-scheduledtask": self.register,
                "start-scheduledtask": self.start, "stop-scheduledtask": self.stop,
                "get-scheduledtask": self.get, "get-scheduledtaskinfo": self.info,
                "unregister-scheduledtask": self.unregister}

    def new_action(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "New-ScheduledTaskAction", ("execute", "argument", "workingdirectory"))
        if not b.named.get("execute"):
            raise PSError("Cannot validate argument on parameter 'Execute'. The argument is null "
                          "or empty.", "New-ScheduledTaskAction")
        return [TaskAction(Id=None, Arguments=L.to_string(b.named.get("argument")) or None,
                           Execute=L.to_string(b.named["execute"]),
                           WorkingDirectory=b.named.get("workingdirectory"))]

    def new_principal(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        cmd = "New-ScheduledTaskPrincipal"
        _only(b, cmd, ("userid", "logontype", "runlevel"))
        logon = L.to_string(b.named.get("logontype", "None"))
        level = L.to_string(b.named.get("runlevel", "Limited"))
        real = next((t for t in LOGON_TYPES if t.lower() == logon.lower()), None)
        if real is None or level.lower() not in ("limited", "highest"):
            bad, value = ("LogonType", logon) if real is None else ("RunLevel", level)
            raise PSError(f"Cannot process argument transformation on parameter '{bad}'. Cannot "
                          f'convert value "{value}" to type "{bad}Enum".', cmd)
        return [TaskPrincipal(UserId=L.to_string(b.named.get("userid")), LogonType=real,
                              RunLevel=level.capitalize())]

    def new_settings(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "New-ScheduledTaskSettingsSet",
              ("allowstartifonbatteries", "dontstopifgoingonbatteries", "hidden"))
        return [TaskSettings(DisallowStartIfOnBatteries=not b.named.get("allowstartifonbatteries"),
                             StopIfGoingOnBatteries=not b.named.get("dontstopifgoingonbatteries"),
                             Hidden=bool(b.named.get("hidden")),
                             ExecutionTimeLimit="PT72H", MultipleInstances="IgnoreNew")]

    def _view(self, name: str) -> L.PSObject:
        t = self.tasks[name]
        return L.PSObject(TaskPath="\\", TaskName=name, State=t["State"],
                          Actions=[TaskAction(Id=None, Arguments=t.get("Arguments"),
                                              Execute=t["Execute"], WorkingDirectory=None)],
                          Principal=TaskPrincipal(UserId=t["UserId"], LogonType=t["LogonType"],
                                                  RunLevel=t["RunLevel"]))

    def register(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        cmd = "Register-ScheduledTask"
        _only(b, cmd, ("taskname", "action", "principal", "settings", "force", "description"), 1)
        name = L.to_string(b.get("taskname", 0))
        if not name or re.search(r'[\\/:*?"<>|]', name):
            raise PSError("The filename, directory name, or volume label syntax is incorrect.",
                          cmd)
        action, principal = b.named.get("action"), b.named.get("principal")
        if not isinstance(action, TaskAction):
            raise PSError("Cannot process argument transformation on parameter 'Action': an "
                          "object from New-ScheduledTaskAction is needed.", cmd)
        if not isinstance(principal, TaskPrincipal):
            raise PSError("a task without -Principal (run as the registering user) is not "
                          "emulated (orchestrator/lab/wintasks.py)", cmd)
        if principal["UserId"].lower() not in SYSTEM_NAMES \
                or principal["LogonType"] != "ServiceAccount":
            raise PSError("only SYSTEM tasks (-UserId SYSTEM -LogonType ServiceAccount) are "
                          "emulated (orchestrator/lab/wintasks.py)", cmd)
        settings = b.named.get("settings")
        if settings is not None and not isinstance(settings, TaskSettings):
            raise PSError("Cannot process argument transformation on parameter 'Settings'.", cmd)
        found = self._find(name)
        if found is not None:
            if not b.named.get("force"):
                ip.error("Cannot create a file when that file already exists.", cmd, ea)
                return []
            self._unregister(found)
        self.tasks[name] = {"Execute": action["Execute"], "Arguments": action["Arguments"],
                            "UserId": principal["UserId"], "LogonType": "ServiceAccount",
                            "RunLevel": principal["RunLevel"], "State": "Ready",
                            "LastTaskResult": HAS_NOT_RUN, "LastRunTime": None, "due": None}
        self._log(name, "registered")
        return [self._view(name)]

    def _find(self, name: str) -> str | None:
        return next((k for k in self.tasks if k.lower() == name.lower()), None)

    def _names(self, ip: L.Interp, b: L.Bound, data: list, cmd: str, ea: str | None,
                wildcards: bool = False) -> list[str]:
        wanted = [L.to_string(v) for v in L.enumerate_(b.get("taskname", 0))] or \
            [L.to_string(L.member(d, "taskname")) for d in data]
        found = []
        for name in wanted:
            if wildcards and any(c in name for c in "*?["):
                found += sorted(k for k in self.tasks
                                if fnmatch.fnmatchcase(k.lower(), name.lower()))
                continue
            real = self._find(name)
            if real is None:
                ip.error(f"No MSFT_ScheduledTask objects found with property 'TaskName' equal to "
                         f"'{name}'.  Verify the value of the property and retry.", cmd, ea)
            else:
                found.append(real)
        return found

    def start(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "Start-ScheduledTask", ("taskname", "inputobject"), 1)
        for name in self._names(ip, b, data, "Start-ScheduledTask", ea):
            task = self.tasks[name]
            if task["State"] == "Running":
                continue  # MultipleInstances IgnoreNew
            seconds = float(self.state.get("task_seconds", DEFAULT_TASK_SECONDS))
            task.update(State="Running", due=time.time() + seconds, LastRunTime=_now(),
                        LastTaskResult=RUNNING)
            self._log(name, "started")
        return []

    def stop(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "Stop-ScheduledTask", ("taskname", "inputobject"), 1)
        self.advance()
        for name in self._names(ip, b, data, "Stop-ScheduledTask", ea):
            task = self.tasks[name]
            if task["State"] == "Running":
                task.update(State="Ready", due=None, LastTaskResult=TERMINATED)
                self._log(name, "stopped")
        return []

    def get(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "Get-ScheduledTask", ("taskname", "taskpath"), 1)
        self.advance()
        if b.get("taskname", 0) is None:
            return [self._view(n) for n in sorted(self.tasks)]
        return [self._view(n) for n in self._names(ip, b, [], "Get-ScheduledTask", ea, True)]

    def info(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        _only(b, "Get-ScheduledTaskInfo", ("taskname", "inputobject"), 1)
        self.advance()
        rows = []
        for name in self._names(ip, b, data, "Get-ScheduledTaskInfo", ea):
            t = self.tasks[name]
            rows.append(L.PSObject(LastRunTime=t["LastRunTime"],
                                   LastTaskResult=t["LastTaskResult"], NextRunTime=None,
                                   NumberOfMissedRuns=0, TaskName=name, TaskPath="\\"))
        return rows

    def _unregister(self, name: str) -> None:
        task = self.tasks.pop(name)
        if task["State"] == "Running":  # it keeps running, and still runs its action
            self.state.setdefault("scheduled_task_orphans", []).append({**task, "TaskName": name})
        self._log(name, "deleted")

    def unregister(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        cmd = "Unregister-ScheduledTask"
        _only(b, cmd, ("taskname", "inputobject", "confirm"), 1)
        if "confirm" not in b.named or L.truthy(b.named["confirm"]):
            raise PSError("PowerShell is in NonInteractive mode. Read and Prompt functionality is "
                          "not available.", cmd)
        for name in self._names(ip, b, data, cmd, ea):
            self._unregister(name)
        return []
