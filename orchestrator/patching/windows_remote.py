"""One round trip to a Windows host (a PowerShell script over our WinRM transport) and the
reading of what it printed, for Windows patching; plus the wait between two round trips,
which ends early when the work is canceled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from orchestrator.errors import TransportError

CANCELED = "canceled at the end of the window (onEnd: cancel)"
CANCEL_POLL = 1.0  # seconds: how often a wait looks at `cancel`


class StageFailed(Exception):
    """A stage of one host's work failed: the host fails with `stage: message`."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage, self.message = stage, message


class NotStarted(Exception):
    """The host's work stops before anything on it was changed: it was not started."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Canceled(StageFailed):
    """`cancel` (onEnd: cancel) said so during a stage: the host stops there, failing with
    `stage: canceled at the end of the window ...`."""


def run_script(transport: Any, stage: str, script: str, timeout: float) -> str:
    """Run `script`; its standard output (no BOM, stripped), or StageFailed naming `stage`."""
    try:
        res = transport.run(script, timeout=timeout)
    except TransportError as exc:
        raise StageFailed(stage, exc.message) from None
    if res.exit_status != 0:
        raise StageFailed(stage, res.first_error_line())
    return res.stdout.decode("utf-8", "replace").strip().lstrip("\ufeff")


def parse_json(stage: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StageFailed(stage, f"not JSON: {exc.msg}") from None


def strings(value: Any) -> list[str]:
    if isinstance(value, dict) and isinstance(value.get("value"), list):
        value = value["value"]  # PowerShell 5.1's array wrapper
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def objects(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        data = data["value"]
    items = data if isinstance(data, list) else [data]
    return [i for i in items if isinstance(i, dict)]


def number(value: Any) -> float | None:
    vals = value.get("value") if isinstance(value, dict) else value
    vals = vals if isinstance(vals, list) else [vals]
    if len(vals) != 1 or isinstance(vals[0], bool) or not isinstance(vals[0], (int, float)):
        return None
    return float(vals[0])


def hex_code(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    return f"0x{value & 0xFFFFFFFF:08X}"


def canceled(cancel: Callable[[], bool] | None) -> bool:
    return cancel is not None and bool(cancel())


def wait(seconds: float, cancel: Callable[[], bool] | None) -> bool:
    """Sleep `seconds`, looking at `cancel` every CANCEL_POLL; True as soon as it says so."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        if canceled(cancel):
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, CANCEL_POLL) if cancel is not None else left)
