"""`apply`: what a pipeline runs on merge.

In order, and nothing is marked unless every step before it held:
1. the revision's policies are read from git objects and validated (an invalid revision is
   a `policy.apply` record with status `invalid`, and exit 1);
2. the plan from the previously applied revision (if this repository has it) is summarised;
3. the scheduler export is written to the configured folder (each file written beside and
   renamed into place; our files of windows that no longer exist removed);
4. a `policy.apply` record with status `applied` marks the revision applied, carrying the
   commit, author, committer, message and the plan's summary.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.changelog.lease import claim
from orchestrator.config import Config
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError, PolicyError
from orchestrator.gitops.applied import applied_commit
from orchestrator.gitops.plan import Side, make_plan
from orchestrator.policy.gitsource import (
    GitSourceError,
    Revision,
    commit_info,
    load_revision,
    resolve,
)
from orchestrator.policy.model import PolicySet

MESSAGE_LIMIT = 4000
LEASE = "policy:apply"  # one apply at a time, on any machine sharing the store
LEASE_TIME = timedelta(minutes=15)
OURS = ("orchestrator-window-", "orchestrator-windows.crontab")


class ApplyError(OrchestratorError):
    """The revision could not be applied (nothing was marked)."""


@dataclass
class Applied:
    commit: str
    previous: str | None
    files: list[str]
    output: Path
    summary: dict[str, Any]
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "previous": self.previous, "schedule": {
            "output": str(self.output), "files": self.files}, "summary": self.summary,
            "record": self.details}


def apply_revision(ctx: RunContext, config: Config, ref: str, now: datetime,
                   command: list[str], workdir: str) -> Applied:
    """Apply `ref`; `command` is how the scheduler entries call the orchestrator."""
    rev = resolve(config.policies, ref)
    ctx = replace(ctx, policy_revision=rev.commit)
    info = commit_info(rev)
    if len(info["message"]) > MESSAGE_LIMIT:
        info["message"] = info["message"][:MESSAGE_LIMIT] + "..."
    try:
        head = load_revision(rev)
    except PolicyError as exc:
        ctx.record("policy.apply", "invalid", commit=rev.commit, ref=ref,
                   problems=len(exc.problems), first=exc.problems[0] if exc.problems else None)
        raise
    holder = f"apply:{ctx.run_id}"
    if not claim(ctx.store, LEASE, holder, datetime.now(UTC) + LEASE_TIME).taken:
        raise ApplyError("another `orchestrator apply` is running; wait for it to finish "
                         "(its lease policy:apply is in the state store)")
    try:
        return _apply(ctx, config, rev, ref, info, head, now, command, workdir)
    finally:
        ctx.store.release_lease(LEASE, holder)


def _apply(ctx: RunContext, config: Config, rev: Revision, ref: str, info: dict[str, str],
           head: PolicySet, now: datetime, command: list[str], workdir: str) -> Applied:
    previous = applied_commit(ctx.store)
    base, note = _previous(config, previous)
    plan = make_plan(base, head, base_side=Side(previous or "nothing applied", previous),
                     head_side=Side(ref, rev.commit), now=now)
    summary = plan.summary()
    try:
        files = write_schedule(head, config, now, command, workdir)
    except ApplyError as exc:
        ctx.record("policy.apply", "failed", commit=rev.commit, ref=ref, reason=exc.message)
        raise
    details = {**info, "ref": ref, "path": rev.prefix or ".", "previous": previous,
               "plan": summary, "schedule": {"format": config.schedule.format,
                                             "output": str(config.schedule.output),
                                             "files": sorted(files)}}
    if note:
        details["note"] = note
    ctx.record("policy.apply", "applied", **details)
    return Applied(rev.commit, previous, sorted(files), config.schedule.output, summary,
                   details)


def _previous(config: Config, previous: str | None) -> tuple[PolicySet, str | None]:
    """The previously applied revision's policies (as far as they load), or none."""
    empty = PolicySet(root=config.policies)
    if previous is None:
        return empty, None
    try:
        return load_revision(resolve(config.policies, previous), strict=False), None
    except (GitSourceError, PolicyError) as exc:
        return empty, (f"previously applied {previous[:12]} not readable here ({exc.message}); "
                       "the plan summary counts every object as added")


def write_schedule(ps: PolicySet, config: Config, now: datetime, command: list[str],
                   workdir: str) -> list[str]:
    """Write the export: every file first beside its place, then (only if all were written
    and nothing in the way) renamed into place, then our files of windows that are gone
    removed."""
    from orchestrator.windows.export import export_cron, export_systemd

    make = export_cron if config.schedule.format == "cron" else export_systemd
    files = make(ps, now, command, workdir)
    out = config.schedule.output
    written: list[tuple[str, str]] = []
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o755)
        stale = [e for e in os.listdir(out) if e.startswith(OURS) and e not in files]
        for name in [*files, *stale]:
            place = out / name
            if place.is_symlink() or (place.exists() and not place.is_file()):
                raise ApplyError(f"{place}: in the way of the scheduler export (not a plain "
                                 "file); remove it, or fix schedule.output in the "
                                 "configuration")
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            written.append((tmp, name))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
        for tmp, name in written:
            os.replace(tmp, out / name)
        written = []
        for name in stale:
            os.unlink(out / name)  # a window that no longer exists
    except OSError as exc:
        raise ApplyError(f"{out}: cannot write the scheduler export: "
                         f"{exc.strerror or exc}; fix schedule.output in the configuration") \
            from None
    finally:
        for tmp, _name in written:  # not renamed: leave nothing half-written behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return list(files)
