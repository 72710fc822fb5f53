"""Filters of the firmware playbooks: `installed | orchestrator_version_status(wanted)` gives
current, outdated, ahead or unknown, by the orchestrator's own rule (its package's
orchestrator.firmware.versions: `2.19.01` is `2.19.1`, `7.10.30.00` is `7.10.30`), so that the
playbook and `firmware scan` judge a version alike. Run outside the orchestrator's Python,
the filter falls back to exact equality (current or outdated)."""

from __future__ import annotations

try:
    from orchestrator.firmware.versions import status as _status
except ImportError:  # pragma: no cover - only outside the orchestrator's environment
    _status = None


def orchestrator_version_status(installed: object, wanted: object) -> str:
    if installed is None or str(installed).strip() == "":
        return "unknown"
    if _status is None:
        return "current" if str(installed).strip() == str(wanted).strip() else "outdated"
    return _status(str(installed), str(wanted))


class FilterModule:
    def filters(self) -> dict:
        return {"orchestrator_version_status": orchestrator_version_status}
