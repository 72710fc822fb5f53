"""Baseline rules -> checks. A check names the facts it needs and judges them, purely.

Check ids are SPEC's: package.installed:NAME, package.absent:NAME, service.running:NAME,
service.stopped:NAME, service.enabled:NAME, service.disabled:NAME, file.exists:PATH,
file.absent:PATH, file.owner:PATH, file.group:PATH, file.mode:PATH, file.contains:PATH,
file.sha256:PATH, sysctl:NAME, threshold.diskUsedPercent:MOUNT, threshold.memoryUsedPercent,
registry:KEY\\NAME, hotfix:KB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.facts import FactRequest, FactResult
from orchestrator.policy.model import Baseline, FileRule

Judge = Callable[[dict[FactRequest, FactResult]], tuple[bool, Any]]


@dataclass(frozen=True)
class Check:
    id: str
    expected: Any
    needs: tuple[FactRequest, ...]
    judge: Judge  # facts -> (passed, actual); raises CheckUndetermined when it cannot tell
    baseline: str


class CheckUndetermined(Exception):
    """The facts do not allow a verdict (fact error, unknown state). One-line message."""


class CheckNotApplicable(Exception):
    """The check has nothing to judge: a file's owner or mode when the file is missing
    (`file.exists:PATH` already reports that, once)."""


def fact(results: dict[FactRequest, FactResult], req: FactRequest) -> Any:
    res = results.get(req)
    if res is None:
        raise CheckUndetermined(f"fact {req.key} was not gathered")
    if res.error:
        raise CheckUndetermined(f"{req.key}: {res.error}")
    return res.value


PACKAGES = FactRequest("packages")


def _package(name: str, want: bool, baseline: str) -> Check:
    def judge(r: dict) -> tuple[bool, Any]:
        version = fact(r, PACKAGES).version(name)
        actual = version if version else "absent"
        return (version is not None) == want, actual
    return Check(f"package.{'installed' if want else 'absent'}:{name}",
                 "installed" if want else "absent", (PACKAGES,), judge, baseline)


def _service(name: str, state: str, windows: bool, baseline: str) -> Check:
    req = FactRequest("win.services", (name,)) if windows else FactRequest("service", (name,))

    def judge(r: dict) -> tuple[bool, Any]:
        value = fact(r, req)
        svc = value.get(name) if windows else value
        if svc is None or (windows and not svc.exists):
            return state in ("stopped", "disabled"), "not installed"
        if state in ("running", "stopped"):
            actual = "running" if svc.running else "stopped"
        else:
            if svc.enabled is None:
                raise CheckUndetermined(f"cannot tell whether {name} starts at boot "
                                        f"({getattr(svc, 'enabled_state', '') or 'no unit'})")
            actual = "enabled" if svc.enabled else "disabled"
        return actual == state, actual
    return Check(f"service.{state}:{name}", state, (req,), judge, baseline)


def _file_checks(rule: FileRule, baseline: str) -> list[Check]:
    path = rule.path
    stat = FactRequest("file.stat", (path,))
    if rule.absent:
        return [Check(f"file.absent:{path}", "absent", (stat,),
                      lambda r: (not fact(r, stat).exists,
                                 "absent" if not fact(r, stat).exists else "present"),
                      baseline)]
    checks = [Check(f"file.exists:{path}", "present", (stat,),
                    lambda r: (fact(r, stat).exists,
                               "present" if fact(r, stat).exists else "absent"), baseline)]

    def attr(name: str, want: str) -> Check:
        def judge(r: dict) -> tuple[bool, Any]:
            st = fact(r, stat)
            if not st.exists:
                raise CheckNotApplicable
            actual = getattr(st, name)
            if name == "mode":
                return int(actual, 8) == int(want, 8), actual
            return actual == want, actual
        return Check(f"file.{name}:{path}", want, (stat,), judge, baseline)

    for name in ("owner", "group", "mode"):
        want = getattr(rule, name)
        if want is not None:
            checks.append(attr(name, want))
    if rule.contains:
        req = FactRequest("file.contains", (path, *rule.contains))

        def contains(r: dict) -> tuple[bool, Any]:
            value = fact(r, req)
            if not value.exists:
                raise CheckNotApplicable
            missing = value.missing
            return not missing, {"missing": missing} if missing else list(rule.contains)
        checks.append(Check(f"file.contains:{path}", list(rule.contains), (req,), contains,
                            baseline))
    if rule.sha256:
        req = FactRequest("file.sha256", (path,))

        def digest(r: dict) -> tuple[bool, Any]:
            value = fact(r, req)
            if not value.exists:
                raise CheckNotApplicable
            return value.sha256 == rule.sha256, value.sha256
        checks.append(Check(f"file.sha256:{path}", rule.sha256, (req,), digest, baseline))
    return checks


def _sysctl(name: str, want: str, baseline: str) -> Check:
    req = FactRequest("sysctl", (name,))

    def judge(r: dict) -> tuple[bool, Any]:
        value = fact(r, req)
        if not value.exists:
            return False, "no such key"
        return " ".join(value.value.split()) == " ".join(want.split()), value.value
    return Check(f"sysctl:{name}", want, (req,), judge, baseline)


def _disk(mounts: tuple[str, ...], limit: float, baseline: str) -> list[Check]:
    req = FactRequest("disk.usage", mounts)

    def one(mount: str) -> Check:
        def judge(r: dict) -> tuple[bool, Any]:
            usage = fact(r, req).get(mount)
            if usage is None or not usage.exists or usage.used_percent is None:
                raise CheckUndetermined(f"{mount}: no such mount point")
            return usage.used_percent <= limit, usage.used_percent
        return Check(f"threshold.diskUsedPercent:{mount}", f"<= {limit:g}", (req,), judge,
                     baseline)
    return [one(m) for m in mounts]


def _memory(limit: float, baseline: str) -> Check:
    req = FactRequest("memory")

    def judge(r: dict) -> tuple[bool, Any]:
        used = fact(r, req).used_percent
        return used <= limit, used
    return Check("threshold.memoryUsedPercent", f"<= {limit:g}", (req,), judge, baseline)


def _registry(key: str, name: str, want: str | int, baseline: str) -> Check:
    req = FactRequest("win.registry", (key, name))

    def judge(r: dict) -> tuple[bool, Any]:
        value = fact(r, req)
        if not value.key_exists:
            return False, "key missing"
        if not value.exists:
            return False, "value missing"
        return str(value.value) == str(want), value.value
    return Check(f"registry:{key}\\{name}", want, (req,), judge, baseline)


def _hotfix(kb: str, baseline: str) -> Check:
    req = FactRequest("win.hotfixes")

    def judge(r: dict) -> tuple[bool, Any]:
        installed = kb.upper() in {k.upper() for k in fact(r, req)}
        return installed, "installed" if installed else "missing"
    return Check(f"hotfix:{kb}", "installed", (req,), judge, baseline)


def baseline_checks(b: Baseline) -> list[Check]:
    """Every fact-based check of a baseline (its `ansible:` playbook is run separately)."""
    win = b.platform == "windows"
    checks: list[Check] = []
    checks += [_package(n, True, b.name) for n in b.packages_installed]
    checks += [_package(n, False, b.name) for n in b.packages_absent]
    for state, names in (("running", b.services_running), ("stopped", b.services_stopped),
                         ("enabled", b.services_enabled), ("disabled", b.services_disabled)):
        checks += [_service(n, state, win, b.name) for n in names]
    for rule in b.files:
        checks += _file_checks(rule, b.name)
    checks += [_sysctl(k, v, b.name) for k, v in b.sysctl]
    t = b.thresholds
    if t.disk_used_percent is not None:
        checks += _disk(t.disk_used_percent.mounts, t.disk_used_percent.max, b.name)
    if t.memory_used_percent is not None:
        checks.append(_memory(t.memory_used_percent, b.name))
    checks += [_registry(r.key, r.name, r.value, b.name) for r in b.registry]
    checks += [_hotfix(kb, b.name) for kb in b.hotfixes_installed]
    return checks


def merge_needs(checks: list[Check]) -> list[FactRequest]:
    """The fact requests of all checks, each once; one disk request for all mounts."""
    seen: dict[FactRequest, None] = {}
    for c in checks:
        for req in c.needs:
            seen.setdefault(req, None)
    return list(seen)
