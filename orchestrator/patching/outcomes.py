"""What a rollout says about its hosts: each host's outcome, the run's, and the event handler
that turns ansible-runner's events (or the Windows path's, in the same shape) into change-log
records as they arrive (never a parse of stdout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.context import RunContext
from orchestrator.errors import EXIT_CHANGES, EXIT_CLOSED, EXIT_OK
from orchestrator.patching.dependencies import held_back, install_entries

# task names of the playbook contract the handler keys on
RESULT_TASK = "orchestrator: result"
REBOOT_TASK = "orchestrator: reboot"
HOST_FAILED_TASK = "orchestrator: host failed"  # the last task, when anything failed

@dataclass
class HostOutcome:
    host: str
    status: str  # done | failed | up-to-date | deferred | budget-exhausted | would-install
    reason: str = ""
    packages: list[dict[str, Any]] = field(default_factory=list)
    rebooted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "reason": self.reason,
                "packages": self.packages, "rebooted": self.rebooted}


@dataclass
class ApplyRun:
    run: str
    group: str
    status: str = "done"  # done | failed | aborted | closed | check
    reason: str = ""
    batches: list[list[str]] = field(default_factory=list)
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    budget: str = ""

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hosts.values():
            out[h.status] = out.get(h.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "group": self.group, "status": self.status,
                "reason": self.reason, "batches": self.batches, "budget": self.budget,
                "hosts": [h.to_json() for h in self.hosts.values()],
                "summary": self.summary()}

    def exit_code(self) -> int:
        """SPEC: 0 done, 2 some hosts failed, 3 closed."""
        if self.status == "closed":
            return EXIT_CLOSED
        if any(h.status == "failed" for h in self.hosts.values()):
            return EXIT_CHANGES
        return EXIT_OK


class ApplyEvents:
    """ansible-runner event_handler for the patch playbooks: records each host's packages,
    reboot and health as the events arrive (never a parse of stdout)."""

    def __init__(self, ctx: RunContext, group: str, wanted: dict[str, list[dict[str, str]]],
                 check: bool, batch: int = 0,
                 about: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self.ctx, self.group, self.wanted, self.check = ctx, group, wanted, check
        self.about = about or {}  # host -> package -> classification, released, firstSeen
        self.batch = batch
        self.recorded: dict[str, HostOutcome] = {}  # outcomes written (patch.apply): final
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.unreachable: dict[str, str] = {}
        self.seen: set[str] = set()  # hosts any work started on (an event arrived)
        self.waiting: dict[str, tuple[str, str]] = {}  # never started: host -> (status, why)

    def not_started(self, host: str, reason: str, status: str | None = None) -> None:
        """`host` was not touched: no new host work could start (cutoff, freeze, budget,
        canceled before it began). Its outcome is `status` (by default from the reason:
        budget-exhausted or deferred), not a failure."""
        self.waiting[host] = (status or stop_status(reason), reason)

    def __call__(self, event: dict[str, Any]) -> bool:
        host, kind, task, res, data = event_parts(event)
        if not host or host not in self.wanted:
            return False
        self.seen.add(host)
        if kind == "runner_on_unreachable":
            self.unreachable[host] = one_line(res.get("msg") or "unreachable")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.setdefault(host, f"{task}: {one_line(res.get('msg') or 'failed')}")
            if task == REBOOT_TASK and not self.check:
                self.ctx.record("reboot", "failed", host=host, group=self.group,
                                reason=one_line(res.get("msg") or "failed"))
        elif kind == "runner_on_ok" and task == RESULT_TASK:
            result = res.get("orchestrator_result")
            if isinstance(result, dict):
                self.results[host] = result
                if not self.check:
                    self._record(host, result)
        elif kind == "runner_on_ok" and task == REBOOT_TASK and not self.check \
                and res.get("rebooted"):
            self.ctx.record("reboot", "done", host=host, group=self.group,
                            elapsed=res.get("elapsed"))
        return False  # ansible-runner: do not keep the event on disk

    def _record(self, host: str, result: dict[str, Any]) -> None:
        entries = install_entries(self.ctx, host, self.group,
                                  [p for p in result.get("packages") or [] if isinstance(p, dict)],
                                  self.about.get(host))
        health = result.get("health")
        if isinstance(health, dict):
            entries.append(self.ctx.entry("health", "ok" if _healthy(health) else "failed",
                                          host=host, group=self.group, **health))
        # the host's outcome in the same transaction as its installs: a run that dies later
        # leaves it finished (resumed runs skip it), never half-recorded
        if host in self.recorded:
            return  # one outcome per host (a repeated result event changes nothing)
        out = self.outcome(host)
        entries.append(self.ctx.entry("patch.apply", out.status, host=host, group=self.group,
                                      batch=self.batch, reason=out.reason,
                                      rebooted=out.rebooted))
        self.ctx.record_all(entries)
        self.recorded[host] = out

    def outcome(self, host: str) -> HostOutcome:
        if host in self.recorded:  # what the change log says stays what we say
            return self.recorded[host]
        result = self.results.get(host)
        if host in self.waiting and host not in self.seen and result is None:
            status, why = self.waiting[host]
            return HostOutcome(host, status, why)
        if host in self.unreachable:
            return HostOutcome(host, "failed", f"unreachable: {self.unreachable[host]}")
        if result is None:
            why = self.failures.get(host, "the playbook gave no result for this host")
            return HostOutcome(host, "failed", why)
        packages = [p for p in result.get("packages") or [] if isinstance(p, dict)]
        failed = [p["name"] for p in packages if p.get("status") == "failed"]
        health = result.get("health") if isinstance(result.get("health"), dict) else {}
        rebooted = bool(result.get("rebooted"))
        if self.check:
            return HostOutcome(host, "would-install", held_back(packages), packages, False)
        stage = self.failures.get(host, "")
        if stage and not stage.startswith(f"{HOST_FAILED_TASK}:"):
            reason = stage  # a stage stopped the host (pre-check, lock, refresh, reboot): why
        elif failed:
            reason = f"install failed: {', '.join(str(n) for n in failed)}"
        elif not _healthy(health or {}):
            reason = f"health check failed: {health}"
        elif host in self.failures:
            reason = self.failures[host]
        else:
            return HostOutcome(host, "done", held_back(packages), packages, rebooted)
        return HostOutcome(host, "failed", reason, packages, rebooted)


def _healthy(health: dict[str, Any]) -> bool:
    services = health.get("services") or {}
    return all(v == "ok" for v in services.values()) and health.get("command_rc") in (None, 0)


def event_parts(event: dict[str, Any]) -> tuple[Any, Any, str, dict[str, Any], dict[str, Any]]:
    """An ansible-runner event as every rollout's handler reads it: (host, event kind, task
    name, the task's result, the event data)."""
    data = event.get("event_data") or {}
    return (data.get("host"), event.get("event"), str(data.get("task") or ""),
            data.get("res") or {}, data)


def one_line(value: Any) -> str:
    text = str(value).strip()
    return (text.splitlines() or [""])[0][:300]


NOT_STARTED = ("deferred", "budget-exhausted")


def stop_status(reason: str) -> str:
    return "budget-exhausted" if reason.startswith("failure budget exhausted") else "deferred"
