"""What approved packages pull in, and the policy's `rejected` patterns (SPEC PatchPolicy
`rejected`, `rejectedAction`), on the controller's side of the patch playbooks.

The playbooks simulate each approved package's pinned install on the host and compare what it
would pull in with the rejected patterns, passed here as anchored regexes (`fnmatch.translate`:
the same case-sensitive match as the approval's `fnmatchcase`). With `block` a package that
would pull a rejected one is not installed (status `blocked`, the reason names what and which
pattern); with `allowAsDependency` it is installed and each rejected package it brought gets a
`patch.install` record of its own (`dependencyOf`). Every `patch.install` record lists the
package's `dependencies` (rejected or not) when it has any.
"""

from __future__ import annotations

from fnmatch import translate
from typing import Any

from orchestrator.context import RunContext
from orchestrator.policy.model import PatchPolicy


def rejected_vars(policy: PatchPolicy) -> dict[str, Any]:
    """The playbook contract's `orchestrator_rejected` ({pattern, regex}; the regex matches a
    whole name exactly when fnmatchcase(name, pattern)) and `orchestrator_rejected_action`."""
    return {"orchestrator_rejected": [{"pattern": p, "regex": translate(p)}
                                      for p in policy.rejected],
            "orchestrator_rejected_action": policy.rejected_action}


def _dependencies(package: dict[str, Any]) -> list[dict[str, Any]]:
    deps = package.get("dependencies")
    return [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else []


def _dep_json(dep: dict[str, Any]) -> dict[str, Any]:
    return {"name": dep.get("name"), "version": dep.get("version"),
            "rejected": dep.get("rejected") is True, "pattern": dep.get("pattern"),
            "after": dep.get("after")}


def install_entries(ctx: RunContext, host: str, group: str,
                    packages: list[dict[str, Any]],
                    about: dict[str, dict[str, Any]] | None = None) -> list[Any]:
    """The `patch.install` records of one host's result: one per approved package (status
    installed / installed_pending_reboot / failed / blocked), plus one per rejected package
    that an installed package brought with it (allowAsDependency). `about`: what the scan
    knew of each approved package (classification, released, firstSeen), kept in its record
    so that reports measure the time from release to install."""
    entries = []
    for p in packages:
        deps = _dependencies(p)
        extra: dict[str, Any] = dict((about or {}).get(str(p.get("name")), {}))
        if deps:
            extra["dependencies"] = [_dep_json(d) for d in deps]
        if p.get("status") == "blocked":
            extra["reason"] = p.get("reason")
        entries.append(ctx.entry("patch.install", str(p.get("status")), host=host, group=group,
                                 package=p.get("name"), version=p.get("wanted"),
                                 before=p.get("before"), after=p.get("after"), **extra))
        if p.get("status") not in ("installed", "installed_pending_reboot"):
            continue
        for d in deps:
            if d.get("rejected") is True and d.get("after") == d.get("version"):
                entries.append(ctx.entry(
                    "patch.install", "installed", host=host, group=group,
                    package=d.get("name"), version=d.get("version"), before=d.get("before"),
                    after=d.get("after"), dependencyOf=p.get("name"), rejected=True,
                    pattern=d.get("pattern"), reason=(
                        f"rejected ({d.get('pattern')}) but pulled in by {p.get('name')} "
                        f"{p.get('wanted')} (rejectedAction: allowAsDependency)")))
    return entries


def held_back(packages: list[dict[str, Any]]) -> str:
    """One line for a host's outcome naming the packages `block` held back, or ""."""
    blocked = [f"{p.get('name')} {p.get('wanted')} {p.get('reason') or ''}".strip()
               for p in packages if p.get("status") == "blocked"]
    return f"held back (rejectedAction block): {'; '.join(blocked)}" if blocked else ""
