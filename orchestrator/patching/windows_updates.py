"""The Windows Update Agent on one host: one search, exactly the approved KBs selected, and
(installing) downloaded and installed through the install task (windows_task); `--check`
searches only, in the WinRM session itself. Its JSON lines are read here into the host's
state: per KB what was offered, its result or why it failed, and the installer's
RebootRequired. Only KBs matching KB_PATTERN reach PowerShell, as single-quoted literals."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestrator.patching.windows_host import HostState
from orchestrator.patching.windows_remote import (
    Canceled,
    StageFailed,
    hex_code,
    parse_json,
    run_script,
)
from orchestrator.patching.windows_scripts import UPDATE_PS
from orchestrator.patching.windows_task import install_task
from orchestrator.quoting import powershell_quote as pq

KB_PATTERN = re.compile(r"KB[0-9]{1,10}")
SEARCH_TIMEOUT = 600.0  # an online search takes minutes
SUCCEEDED, SUCCEEDED_WITH_ERRORS = 2, 3  # OperationResultCode


def update(transport: Any, st: HostState, kbs: list[str],
           cancel: Callable[[], bool] | None = None) -> None:
    """Search; select exactly `kbs`; download and install them (or, checking, search only).
    Checking runs in the session; installing in a scheduled task under SYSTEM. Canceled
    while the task runs: each of `kbs` fails with the reason, and Canceled goes on up."""
    stage = "search" if st.plan.check else "install"
    script = (UPDATE_PS.replace("__WANTED__", ", ".join(pq(kb) for kb in kbs))
              .replace("__INSTALL__", "$false" if st.plan.check else "$true"))
    try:
        text = run_script(transport, stage, script, SEARCH_TIMEOUT) if st.plan.check \
            else install_task(transport, st.plan.run_id, script, cancel)
    except Canceled as exc:
        for kb in kbs:
            st.errors.setdefault(kb, exc.message)
        raise
    except StageFailed as exc:  # the agent failed as a whole: so did each of these updates
        for kb in kbs:
            st.errors.setdefault(kb, f"Windows Update: {exc.message}")
        if exc.stage == "install task":  # the task itself went wrong: the host fails
            raise
        return
    parse_update(stage, text, st, kbs)


def parse_update(stage: str, text: str, st: HostState, kbs: list[str]) -> None:
    """Read UPDATE_PS's JSON lines (and the install task's error and end lines)."""
    offered: list[dict[str, Any]] = []
    ended = st.plan.check
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = parse_json(stage, line)
        if not isinstance(item, dict):
            raise StageFailed(stage, f"line {n}: not an object")
        if item.get("Stage") == "offered":
            kb = str(item.get("KB") or "").upper()
            if kb not in kbs:  # only what was asked for; the script compares whole KBs
                raise StageFailed(stage, f"the agent selected {kb!r}, which was not asked for")
            offered.append(item)
            st.offered.setdefault(kb, item)
        elif item.get("Stage") == "result":
            index = item.get("Index")
            if not isinstance(index, int) or not 0 <= index < len(offered):
                raise StageFailed(stage, f"line {n}: result for an update not offered")
            kb = str(offered[index]["KB"]).upper()
            st.results[kb] = item
            if item.get("ResultCode") not in (SUCCEEDED, SUCCEEDED_WITH_ERRORS):
                why = (f"download result {item.get('Download')} "
                       f"(HRESULT {hex_code(item.get('DownloadHResult'))})"
                       if item.get("Download") not in (SUCCEEDED, SUCCEEDED_WITH_ERRORS)
                       else f"install result {item.get('ResultCode')} "
                       f"(HRESULT {hex_code(item.get('HResult'))})")
                st.errors.setdefault(kb, f"Windows Update {why}")
        elif item.get("Stage") == "installed":
            st.installer_reboot = item.get("RebootRequired") is True
        elif item.get("Stage") == "error":  # the agent threw inside the install task
            for kb in kbs:
                st.errors.setdefault(kb, f"Windows Update: {item.get('Message')}")
        elif item.get("Stage") == "end":
            ended = True
    if not ended:
        raise StageFailed("install task", "its result file is incomplete (no end line)")
    if not st.plan.check:
        for kb in st.offered:
            if kb not in st.results:
                st.errors.setdefault(kb, "Windows Update gave no install result for it")
