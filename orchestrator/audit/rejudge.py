"""A check judged again from the `actual` an earlier audit recorded, without the host.

`plan` asks what a baseline change would do to hosts already audited: the same check id
means the same fact was read, so its recorded actual can be held against a new expected
value (a sysctl value, a file mode, a threshold). A check the audit did not run, or whose
actual does not settle the new question (a `file.contains` with new strings), is None:
undetermined until the next audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Judge = Callable[[Any, Any], "bool | None"]


def rejudge(check_id: str, expected: Any, actual: Any) -> bool | None:
    """True: passes, False: drifts, None: the recorded actual cannot tell."""
    return judge_with(judge_for(check_id), expected, actual)


def judge_for(check_id: str) -> Judge | None:
    """The judge of a check id's kind (None: a kind a recorded actual never settles)."""
    return _JUDGES.get(check_id.partition(":")[0])


def judge_with(judge: Judge | None, expected: Any, actual: Any) -> bool | None:
    if judge is None:
        return None
    try:
        return judge(expected, actual)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _service(state: str) -> Judge:
    def judge(_expected: Any, actual: Any) -> bool | None:
        if actual == "not installed":
            return state in ("stopped", "disabled")
        return actual == state if isinstance(actual, str) else None
    return judge


def _contains(expected: Any, actual: Any) -> bool | None:
    if isinstance(actual, list):  # every string the audit asked for was found
        return True if set(expected) <= set(actual) else None
    if isinstance(actual, dict) and isinstance(actual.get("missing"), list):
        return False if set(expected) & set(actual["missing"]) else None
    return None


def _sysctl(expected: Any, actual: Any) -> bool | None:
    if actual == "no such key":
        return False
    return " ".join(str(actual).split()) == " ".join(str(expected).split())


def _threshold(expected: Any, actual: Any) -> bool | None:
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return None
    return float(actual) <= float(str(expected).split()[-1])


def _registry(expected: Any, actual: Any) -> bool | None:
    if actual in ("key missing", "value missing"):
        return False
    return str(actual) == str(expected)


_JUDGES: dict[str, Judge] = {
    "package.installed": lambda _e, a: a != "absent",
    "package.absent": lambda _e, a: a == "absent",
    "service.running": _service("running"),
    "service.stopped": _service("stopped"),
    "service.enabled": _service("enabled"),
    "service.disabled": _service("disabled"),
    "file.exists": lambda _e, a: a == "present",
    "file.absent": lambda _e, a: a == "absent",
    "file.owner": lambda e, a: a == e,
    "file.group": lambda e, a: a == e,
    "file.mode": lambda e, a: int(str(a), 8) == int(str(e), 8),
    "file.contains": _contains,
    "file.sha256": lambda e, a: str(a).lower() == str(e).lower(),
    "sysctl": _sysctl,
    "threshold.diskUsedPercent": _threshold,
    "threshold.memoryUsedPercent": _threshold,
    "registry": _registry,
    "hotfix": lambda _e, a: a == "installed",
}
