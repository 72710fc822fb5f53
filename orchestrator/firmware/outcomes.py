"""What a firmware rollout says about its hosts, and the ansible-runner event handler that turns
the firmware playbooks' events into change-log records as they arrive: `firmware.task` when the
BMC accepts an update (its task monitor: a run killed while the BMC works can be followed up
instead of flashing twice), each component's `firmware.update` with the resets it took
(`firmware.reset`) when that component ends, and the host's `firmware.apply` with its result
(with any component whose own result never came)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.context import RunContext
from orchestrator.firmware.versions import CURRENT, status
from orchestrator.patching.outcomes import HostOutcome, event_parts, one_line, stop_status
from orchestrator.redact import redact

RESULT_TASK = "orchestrator: result"
COMPONENT_TASK = "orchestrator: component result"
FLASH_TASK = "orchestrator: flash"
HOST_FAILED_TASK = "orchestrator: host failed"
COMPONENT_OK = ("current", "updated")
# a task monitor is a path on the BMC (never another host: it is requested with credentials)
HANDLE = re.compile(r"/redfish/v1/[A-Za-z0-9._/-]{1,300}")


def valid_handle(value: Any) -> str | None:
    return value if isinstance(value, str) and HANDLE.fullmatch(value) and ".." not in value \
        else None


@dataclass
class FirmwareOutcome(HostOutcome):
    """status: done | failed | up-to-date | deferred | budget-exhausted | already-done |
    would-update"""

    components: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "reason": self.reason,
                "components": self.components}


def _reset_target(uri: str) -> str:
    return "bmc" if "/Managers/" in uri else "system" if "/Systems/" in uri else "device"


class FirmwareEvents:
    """ansible-runner event_handler for the firmware playbooks (never a parse of stdout)."""

    def __init__(self, ctx: RunContext, group: str, wanted: dict[str, list[dict[str, Any]]],
                 batch: int = 0) -> None:
        self.ctx, self.group, self.wanted, self.batch = ctx, group, wanted, batch
        self.recorded: dict[str, FirmwareOutcome] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.unreachable: dict[str, str] = {}
        self.seen: set[str] = set()
        self.waiting: dict[str, tuple[str, str]] = {}
        self.components: dict[str, list[dict[str, Any]]] = {}  # recorded as they ended

    def not_started(self, host: str, reason: str, status_: str | None = None) -> None:
        self.waiting[host] = (status_ or stop_status(reason), reason)

    def __call__(self, event: dict[str, Any]) -> bool:
        host, kind, task, res, data = event_parts(event)
        if not host or host not in self.wanted:
            return False
        self.seen.add(host)
        if kind == "runner_on_unreachable":
            self.unreachable[host] = one_line(res.get("msg") or "unreachable")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            # a BMC's error may echo the image URL, with its user:password@
            why = one_line(res.get("msg") or "failed")
            self.failures.setdefault(host, redact(f"{task}: {why}"))
        elif kind == "runner_on_ok" and task == FLASH_TASK:
            self._task_started(host, res)
        elif kind == "runner_on_ok" and task == COMPONENT_TASK:
            comp = res.get("orchestrator_component")
            if isinstance(comp, dict) and host not in self.recorded:
                self._record_components(host, [comp])
        elif kind == "runner_on_ok" and task == RESULT_TASK:
            result = res.get("orchestrator_result")
            if isinstance(result, dict):
                self.results[host] = result
                self._record(host, result)
        return False  # ansible-runner: do not keep the event on disk

    def _task_started(self, host: str, res: dict[str, Any]) -> None:
        args = (res.get("invocation") or {}).get("module_args") or {}
        targets = args.get("update_targets") or []
        by_uri = {c.get("uri"): c for c in self.wanted[host]}
        comp = next((by_uri[t] for t in targets if t in by_uri), None)
        status_ = (res.get("return_values") or {}).get("update_status") or {}
        handle = valid_handle(status_.get("handle") if isinstance(status_, dict) else None)
        self.ctx.record("firmware.task", "started", host=host, group=self.group,
                        batch=self.batch, component=comp.get("id") if comp else None,
                        image=redact(str(args.get("update_image_uri") or "")),
                        version=comp.get("version")
                        if comp else None, handle=handle)

    def _components(self, host: str, items: list[Any]) -> list[dict[str, Any]]:
        out = []
        for raw in items:
            if not isinstance(raw, dict):
                continue
            c = {k: raw.get(k) for k in ("id", "match", "wanted", "before", "after", "status",
                                          "reason", "handle", "resets")}
            c["handle"] = valid_handle(c["handle"])
            c["reason"] = redact(str(c["reason"] or ""))
            install = raw.get("install")
            if isinstance(install, dict) and c["status"] == "failed":
                # fwupdmgr's own words, read as the recorded outcomes say (facts/fwupd.py)
                from orchestrator.facts.fwupd import parse_install

                got = parse_install(str(install.get("stdout") or ""),
                                    str(install.get("stderr") or ""),
                                    int(install.get("rc") or 1))
                if got.error:
                    c["reason"] = f"install: {got.error}"
            # the playbook compares strings; equal versions written differently count too
            if c["status"] == "failed" and c["after"] is not None and c["wanted"] \
                    and status(str(c["after"]), str(c["wanted"])) == CURRENT:
                c["status"], c["reason"] = "updated", ""
            out.append(c)
        return out

    def _entries(self, host: str, comps: list[dict[str, Any]]) -> list[Any]:
        entries = []
        for c in comps:
            entries.append(self.ctx.entry(
                "firmware.update", str(c["status"]), host=host, group=self.group,
                batch=self.batch, component=c["id"], match=c["match"], wanted=c["wanted"],
                before=c["before"], after=c["after"], reason=c["reason"] or "",
                handle=c["handle"]))
            for r in c.get("resets") or []:
                uri = str(r.get("uri") or "") if isinstance(r, dict) else ""
                kind = str(r.get("type") or "") if isinstance(r, dict) else str(r)
                target = r.get("target") if isinstance(r, dict) else None
                entries.append(self.ctx.entry("firmware.reset", "done", host=host,
                                              group=self.group, component=c["id"],
                                              target=str(target or _reset_target(uri)),
                                              resetType=kind))
        return entries

    def _record_components(self, host: str, items: list[Any]) -> None:
        """A component ended: its records now (a run killed later keeps them)."""
        done = {str(c.get("id")) for c in self.components.get(host, [])}
        comps = [c for c in self._components(host, items) if str(c["id"]) not in done]
        if comps:
            self.ctx.record_all(self._entries(host, comps))
            self.components.setdefault(host, []).extend(comps)

    def _record(self, host: str, result: dict[str, Any]) -> None:
        if host in self.recorded:
            return  # one outcome per host
        done = {str(c.get("id")) for c in self.components.get(host, [])}
        late = [c for c in self._components(host, result.get("components") or [])
                if str(c["id"]) not in done]
        self.components.setdefault(host, []).extend(late)
        out = self.outcome(host)
        self.ctx.record_all(self._entries(host, late) + [
            self.ctx.entry("firmware.apply", out.status, host=host, group=self.group,
                           batch=self.batch, reason=out.reason,
                           powerState=result.get("power_state"))])
        self.recorded[host] = out

    def outcome(self, host: str) -> FirmwareOutcome:
        if host in self.recorded:
            return self.recorded[host]
        result = self.results.get(host)
        if host in self.waiting and host not in self.seen and result is None:
            st, why = self.waiting[host]
            return FirmwareOutcome(host, st, why)
        done = self.components.get(host, [])  # recorded as they ended: part of the outcome
        if host in self.unreachable:
            return FirmwareOutcome(host, "failed", f"unreachable: {self.unreachable[host]}",
                                   components=done)
        if result is None:
            return FirmwareOutcome(host, "failed", self.failures.get(
                host, "the playbook gave no result for this host"), components=done)
        seen = {str(c.get("id")) for c in self.components.get(host, [])}
        comps = self.components.get(host, []) + [
            c for c in self._components(host, result.get("components") or [])
            if str(c["id"]) not in seen]
        bad = [c for c in comps if c["status"] not in COMPONENT_OK]
        todo = {str(c.get("id")) for c in self.wanted.get(host, [])}
        missing = todo - {str(c["id"]) for c in comps}
        stage = self.failures.get(host, "")
        if bad:
            first = bad[0]
            why = f"{first['id']}: {first['status']}" + (f": {first['reason']}"
                                                         if first["reason"] else "")
            if missing:
                why += f"; not tried after it: {', '.join(sorted(missing))}"
            return FirmwareOutcome(host, "failed", one_line(why), components=comps)
        if stage and not stage.startswith(f"{HOST_FAILED_TASK}:"):
            return FirmwareOutcome(host, "failed", stage, components=comps)
        if missing:
            return FirmwareOutcome(host, "failed", "the playbook gave no result for "
                                   + ", ".join(sorted(missing)), components=comps)
        if host in self.failures:
            return FirmwareOutcome(host, "failed", self.failures[host], components=comps)
        return FirmwareOutcome(host, "done", "", components=comps)
