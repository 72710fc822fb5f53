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
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.config import Config
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError, PolicyError
from orchestrator.gitops.applied import applied_commit
from orchestrator.gitops.plan import Side, make_plan
from orchestrator.policy.gitsource import GitSourceError, commit_info, load_revision, resolve
from orchestrator.policy.model import PolicySet

MESSAGE_LIMIT = 4000
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
    from orchestrator.windows.export import export_cron, export_systemd

    make = export_cron if config.schedule.format == "cron" else export_systemd
    files = make(ps, now, command, workdir)
    out = config.schedule.output
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o755)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, out / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        for entry in os.listdir(out):
            if entry.startswith(OURS) and entry not in files:
                os.unlink(out / entry)  # a window that no longer exists
    except OSError as exc:
        raise ApplyError(f"{out}: cannot write the scheduler export: "
                         f"{exc.strerror or exc}; fix schedule.output in the configuration") \
            from None
    return list(files)
