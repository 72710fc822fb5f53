"""What one Windows host's patching works from and builds up: the plan (what the policy asks
of every host of a batch), the job (one host and its approved KBs), the state gathered as the
work goes on, and from it the result, field for field the playbooks' `orchestrator_result`
(playbooks/tasks/result.yml), handed on as ansible-runner events would be (WinOutcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.policy.model import PatchPolicy

REBOOT_TIMEOUT = 600.0  # seconds, when the inventory does not say


@dataclass(frozen=True)
class WinPlan:
    """What the policy asks of every host of the batch (plain data)."""

    reboot: str  # ifNeeded | always | never
    disk_free_min: float | None
    services: tuple[str, ...]
    command: str
    command_timeout: float
    check: bool
    run_id: str = ""  # names the install task (with a random part)


@dataclass(frozen=True)
class WinJob:
    host: str
    vars: dict[str, Any] = field(compare=False)
    packages: tuple[tuple[str, str], ...] = ()  # (KB, title) as approved
    reboot_timeout: float = REBOOT_TIMEOUT


@dataclass
class WinOutcome:
    """One host's events (as ansible-runner would send them) in order; or, when the host was
    not started at all (nothing was run on it), why not."""

    host: str
    events: list[dict[str, Any]] = field(default_factory=list)
    not_started: str = ""

    def add(self, kind: str, task: str, **res: Any) -> None:
        self.events.append({"event": kind, "event_data": {"host": self.host, "task": task,
                                                          "res": res}})


def plan_of(policy: PatchPolicy, check: bool) -> WinPlan:
    hc = policy.health_checks
    return WinPlan(policy.reboot, policy.disk_free_percent_min, tuple(hc.services),
                   hc.command or "", hc.timeout.total_seconds(), check)


@dataclass
class HostState:
    """What is known of one host as its work goes on (the result is built from it)."""

    job: WinJob
    plan: WinPlan
    before: set[str] = field(default_factory=set)
    after: set[str] | None = None
    boot: str = ""
    disk_free: float | None = None
    offered: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    installer_reboot: bool = False
    reboot_key: bool = False
    rebooted: bool = False
    services: dict[str, str] = field(default_factory=dict)
    command_rc: int | None = None
    failure: str = ""


def reboot_needed(st: HostState) -> bool:
    return st.installer_reboot or st.reboot_key


def result(st: HostState) -> dict[str, Any]:
    """The playbooks' orchestrator_result (playbooks/tasks/result.yml), field for field."""
    plan = st.plan
    reasons = [st.failure] if st.failure else []
    needed = reboot_needed(st)
    flagged = {kb for kb, r in st.results.items() if r.get("RebootRequired") is True}
    after = st.after if st.after is not None else st.before
    packages = []
    for kb, title in st.job.packages:
        key = kb.upper()
        was = key in st.before
        ok = key in after or (key in st.results and kb not in st.errors)
        error = st.errors.get(kb, "")
        if plan.check:
            status = "failed" if error else "installed" if was else "would_install"
        elif error:
            status = "failed"
        elif ok:  # installed; still waiting for a reboot that was not done?
            pending = needed and not st.rebooted and not was \
                and (not flagged or key in flagged)
            status = "installed_pending_reboot" if pending else "installed"
        else:
            status = "failed"
            error = f"not attempted: {st.failure}" if st.failure else \
                "not installed after the install"
        entry: dict[str, Any] = {"name": kb, "wanted": title, "before": title if was else None,
                                 "after": title if ok else None, "status": status}
        if status == "failed":
            entry["error"] = error
        packages.append(entry)
    failed = [p["name"] for p in packages if p["status"] == "failed"]
    if failed:
        reasons.append("packages failed: " + ", ".join(failed))
    missing = [s for s, v in st.services.items() if v != "ok"]
    if missing:
        reasons.append("health: not running: " + ", ".join(missing))
    if st.command_rc not in (None, 0):
        reasons.append(f"health: command exited {st.command_rc}")
    return {"packages": packages, "reboot_needed": needed, "rebooted": st.rebooted,
            "health": {"services": st.services, "command_rc": st.command_rc},
            "check_mode": plan.check, "disk_free_percent": st.disk_free,
            "failed": bool(reasons), "reasons": reasons}
