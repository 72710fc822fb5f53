"""The install task: the Windows Update Agent refuses Download/Install to a WinRM (network
logon) session, so the install runs on the host as a one-off scheduled task under SYSTEM
(docs/patching-windows.md, "The install task"). Here: its name and command line, the start
(START_PS: the folder checked and locked, the task registered and started), the polling (one
round trip every TASK_POLL, for at most INSTALL_TIMEOUT, ended early by `cancel`), and the
finish (FINISH_PS: the result file read only if nobody but SYSTEM or Administrators could have
written it; the task stopped, unregistered and its files removed, in every case)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from orchestrator.patching.apply import PLAYBOOK_TIMEOUT
from orchestrator.patching.windows_remote import (
    CANCELED,
    Canceled,
    NotStarted,
    StageFailed,
    hex_code,
    parse_json,
    run_script,
    strings,
    wait,
)
from orchestrator.patching.windows_scripts import (
    FINISH_PS,
    POLL_PS,
    START_PS,
    TASK_DIR,
    TASK_DIR_SDDL,
    TASK_PS,
    TRUSTED_SIDS,
    WRITE_RIGHTS,
)
from orchestrator.quoting import powershell_quote as pq

STAGE = "install task"
ROUND_TRIP_TIMEOUT = 120.0  # start, poll or finish: one short script each
INSTALL_TIMEOUT = float(PLAYBOOK_TIMEOUT)
TASK_POLL = 5.0  # seconds between two looks at the install task (one WinRM round trip each)
# a task Ready with one of these LastTaskResults has not yet started (or not yet ended):
# SCHED_S_TASK_RUNNING, SCHED_S_TASK_HAS_NOT_RUN, SCHED_S_TASK_QUEUED
TASK_NOT_DONE = (0x41301, 0x41303, 0x41325)
BUSY = "another orchestrator install task is running on this host"  # START_PS's refusal


def task_name(run_id: str) -> str:
    """`orchestrator-<run id>-<random>`: unique per run and host, safe in a file name and in a
    PowerShell literal; the random part keeps two tries of one run apart."""
    run = re.sub(r"[^A-Za-z0-9-]", "-", run_id)[:60].strip("-") or "run"
    return f"orchestrator-{run}-{secrets.token_hex(4)}"


def task_command(script: str) -> str:
    """powershell.exe's arguments for the task: the script as -EncodedCommand (UTF-16LE)."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return f"-NoProfile -NonInteractive -EncodedCommand {encoded}"


def _fill(script: str, name: str) -> str:
    return (script.replace("__NAME__", pq(name)).replace("__DIR__", TASK_DIR)
            .replace("__TRUSTED__", ", ".join(pq(s) for s in TRUSTED_SIDS)))


def install_task(transport: Any, run_id: str, update_ps: str,
                 cancel: Callable[[], bool] | None = None) -> str:
    """Run `update_ps` (UPDATE_PS, installing) in a one-off scheduled task under SYSTEM and
    return its lines. Polls (one round trip each, TASK_POLL apart) until the result file
    exists or the task no longer runs, for at most INSTALL_TIMEOUT, and until `cancel` says
    so (looked at between polls, every CANCEL_POLL); then, in every case (also after a
    failure, the timeout or a cancel, when the task is stopped first), unregisters the task
    and removes the result file. Canceled before the task finished: Canceled ("install")."""
    name = task_name(run_id)
    body = update_ps.replace("$ErrorActionPreference = 'Stop'\n", "", 1)
    task_ps = _fill(TASK_PS, name).replace("__UPDATE__", body)
    start = (_fill(START_PS, name).replace("__SDDL__", pq(TASK_DIR_SDDL))
             .replace("__ARGS__", pq(task_command(task_ps))))
    finished = timed_out = stopped = False
    try:
        try:
            run_script(transport, STAGE, start, ROUND_TRIP_TIMEOUT)
        except StageFailed as exc:
            if BUSY in exc.message:  # an earlier run's task (one that died) still works here:
                raise NotStarted(exc.message) from None  # nothing touched, try next time
            raise
        deadline = time.monotonic() + INSTALL_TIMEOUT
        while True:
            poll = parse_json(STAGE, run_script(transport, STAGE, _fill(POLL_PS, name),
                                                ROUND_TRIP_TIMEOUT))
            if not isinstance(poll, dict):
                raise StageFailed(STAGE, "the poll printed no object")
            running = poll.get("State") in ("Running", "Queued") or (
                poll.get("State") == "Ready" and poll.get("LastTaskResult") in TASK_NOT_DONE)
            if poll.get("Done") is True or not running:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if wait(min(TASK_POLL, left), cancel):
                stopped = True
                break
        # canceled: still read a result the task finished meanwhile (what went in is kept)
        end = finish(transport, name, read=not timed_out)
        finished = True
    finally:
        if not finished:  # a failure on the way: stop and remove what there is, if we can
            try:
                finish(transport, name, read=False)
            except StageFailed:
                pass
    if stopped and end["Text"] is None and not end["Refused"]:
        raise Canceled("install", f"{CANCELED}; {name} was stopped and " + (
            "unregistered" if not end["Left"] else
            f"could not be removed (its {' and '.join(end['Left'])} is left)"))
    if end["Left"]:
        raise StageFailed(STAGE, f"{name}: could not remove its {' and '.join(end['Left'])}")
    if timed_out:
        raise StageFailed(STAGE, f"{name} did not finish within {INSTALL_TIMEOUT:g} s: "
                                 "stopped and unregistered")
    if end["Refused"]:
        raise StageFailed(STAGE, f"refused its result file: {end['Refused']}")
    if end["Text"] is None:
        raise StageFailed(STAGE, f"{name} ended (LastTaskResult "
                                 f"{hex_code(end['LastTaskResult'])}) without writing its result")
    return str(end["Text"]).lstrip("\ufeff")


def finish(transport: Any, name: str, *, read: bool) -> dict[str, Any]:
    """FINISH_PS: read the result file if asked (and trusted); stop, unregister, remove."""
    script = (_fill(FINISH_PS, name).replace("__READ__", "$true" if read else "$false")
              .replace("__WRITE__", str(WRITE_RIGHTS)))
    data = parse_json(STAGE, run_script(transport, STAGE, script, ROUND_TRIP_TIMEOUT))
    if not isinstance(data, dict):
        raise StageFailed(STAGE, "the clean-up printed no object")
    text = data.get("Text")
    return {"Text": text if isinstance(text, str) else None,
            "Refused": str(data.get("Refused") or ""),
            "LastTaskResult": data.get("LastTaskResult"), "Left": strings(data.get("Left"))}
