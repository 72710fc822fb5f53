"""Audit results as plain data in the JSON shape of SPEC section 3."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CheckStatus = Literal["pass", "drift", "waived", "error"]
HostStatus = Literal["compliant", "drift", "unreachable", "error"]


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: CheckStatus
    expected: Any
    actual: Any
    waiver: dict[str, Any] | None = None
    baseline: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "expected": self.expected,
                "actual": self.actual, "waiver": self.waiver}


@dataclass(frozen=True)
class HostAudit:
    host: str
    groups: tuple[str, ...]
    platform: str
    status: HostStatus
    error: str | None = None
    checks: tuple[CheckResult, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "groups": list(self.groups), "platform": self.platform,
                "status": self.status, "error": self.error,
                "checks": [c.to_json() for c in self.checks]}

    @property
    def findings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status != "pass"]

    @property
    def has_drift(self) -> bool:
        """A check drifted (waived ones do not count), whatever the host's status: a host
        in `error` may have drifted on the checks that could be judged."""
        return any(c.status == "drift" for c in self.checks)


def host_status(checks: tuple[CheckResult, ...] | list[CheckResult]) -> HostStatus:
    """error if any check could not be evaluated, else drift if any drifted, else compliant.
    An error host's drift still counts for the run (AuditRun.summary, exit_code)."""
    if any(c.status == "error" for c in checks):
        return "error"
    if any(c.status == "drift" for c in checks):
        return "drift"
    return "compliant"


@dataclass
class AuditRun:
    run: str
    hosts: list[HostAudit] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Hosts by status, except `drift`: the hosts with any drifting check, so a host in
        `error` that also drifted counts under both `error` and `drift` (drift is never
        hidden by an error; the counts may then add up to more than `hosts`)."""
        out = {"hosts": len(self.hosts), "compliant": 0, "drift": 0, "unreachable": 0,
               "error": 0}
        for h in self.hosts:
            if h.status != "drift":
                out[h.status] += 1
            if h.status == "drift" or h.has_drift:
                out["drift"] += 1
        return out

    def also_drifting(self) -> int:
        """Hosts counted under `drift` whose status is another (`error`)."""
        return sum(1 for h in self.hosts if h.status != "drift" and h.has_drift)

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "hosts": [h.to_json() for h in self.hosts],
                "summary": self.summary()}

    def exit_code(self) -> int:
        """SPEC: 0 compliant, 2 drift (anywhere: also on a host in error, and whatever other
        hosts were unreachable), 4 incomplete (hosts unreachable or in error, no drift).
        An audit of no host at all proved nothing: 4 as well."""
        s = self.summary()
        if not s["hosts"]:
            return 4
        if s["drift"]:
            return 2
        if s["unreachable"] or s["error"]:
            return 4
        return 0
