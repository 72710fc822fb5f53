"""The applied revision, and the `requireApplied` guard.

`apply` marks a revision applied by writing a `policy.apply` record with status `applied`
(the change log is the store's own evidence: a mark nobody can change without breaking the
hash chain). The applied revision is the commit of the latest such record.

With `requireApplied: true`, commands that change hosts (`run-window`, `patch apply`,
`firmware apply`) act only when the policy folder's revision is exactly that commit: not
dirty, not another branch, not a newer commit the pipeline has not applied. Otherwise they
write a `skip` record (`not-applied`) and stop with a one-line reason. Reads (`audit`,
`scan`, `plan`) and dry runs are not guarded.
"""

from __future__ import annotations

from orchestrator.changelog.record import Record
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError


class NotApplied(OrchestratorError):
    """The policy folder is not at the applied revision (requireApplied)."""


def applied_record(store: ChangeLogStore) -> Record | None:
    return store.latest(LogFilter(action="policy.apply", status="applied"))


def applied_commit(store: ChangeLogStore) -> str | None:
    rec = applied_record(store)
    commit = rec.details.get("commit") if rec is not None else None
    return commit if isinstance(commit, str) else None


def require_applied(ctx: RunContext, *, doing: str, group: str | None = None,
                    window: str | None = None) -> None:
    """Raise NotApplied (after a `skip` record) unless the policies are at the applied
    revision. Call only when `requireApplied` is on."""
    commit = applied_commit(ctx.store)
    current = ctx.policy_revision
    if commit is None:
        reason = ("no policy revision has been applied yet (requireApplied is on); run "
                  "`orchestrator apply` from the pipeline first")
    elif current == commit:
        return
    else:
        why = ("uncommitted changes" if "+dirty" in current
               else "a revision not in git" if current == "unversioned"
               else "files outside the repository" if "+external" in current
               else "another commit")
        shown = current if current == "unversioned" else current[:12] + current[40:]
        reason = (f"the policies are at {shown} ({why}), not the applied revision "
                  f"{commit[:12]} (requireApplied); check out the applied revision, or merge "
                  "and let the pipeline run `orchestrator apply`")
    extra = {"window": window} if window else {}
    ctx.record("skip", "not-applied", group=group, step=doing, reason=reason,
               applied=commit, **extra)
    raise NotApplied(f"{doing}: {reason}")
