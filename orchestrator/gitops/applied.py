"""The applied revision, and the `requireApplied` guard.

`apply` marks a revision applied by writing a `policy.apply` record with status `applied`
(the change log is the store's own evidence). The applied revision is the commit of the
latest such record whose place in the hash chain holds (its own hash, and the hash of the
record before it): a row written into the database by other means is not taken.

With `requireApplied: true`, commands that change hosts (`run-window`, `patch apply`,
`firmware apply`) act only when the policy folder is the applied one and holds exactly the
applied commit's policy files: its revision stamp is that commit (not dirty, not another
branch or a newer commit), its path in the repository is the one applied, and the bytes of
every policy file the loader reads are those of the commit (which also catches files git
is told to ignore changes of: skip-worktree, assume-unchanged). Otherwise they write a
`skip` record (`not-applied`) and stop with a one-line reason. Reads (`audit`, `scan`,
`plan`) and dry runs are not guarded.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from orchestrator.changelog.record import Record, sealed_right
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError


class NotApplied(OrchestratorError):
    """The policy folder is not at the applied revision (requireApplied)."""


def applied_record(store: ChangeLogStore) -> Record | None:
    """The latest `policy.apply` record marking a revision applied, if its chain holds."""
    rec = store.latest(LogFilter(action="policy.apply", status="applied"))
    if rec is None:
        return None
    if not sealed_right(rec, store.record_at(rec.seq - 1) if rec.seq > 1 else None):
        raise NotApplied(f"{store.url}: the policy.apply record {rec.seq} does not fit the "
                         "change log's hash chain; run `orchestrator log verify` and "
                         "investigate before applying again")
    return rec


def applied_commit(store: ChangeLogStore) -> str | None:
    rec = applied_record(store)
    commit = rec.details.get("commit") if rec is not None else None
    return commit if isinstance(commit, str) else None


def _digests(contents: list[bytes]) -> Counter[str]:
    return Counter(hashlib.sha256(c).hexdigest() for c in contents)


def content_mismatch(policies: Path, commit: str, applied_path: str | None) -> str | None:
    """Why the policy folder does not hold exactly the commit's policy files, or None."""
    from orchestrator.policy.files import find_policy_files
    from orchestrator.policy.gitsource import GitSourceError, read_revision, resolve

    try:
        rev = resolve(policies, commit)
        committed = read_revision(rev)
    except GitSourceError as exc:
        return f"the applied revision cannot be read here ({exc.message})"
    if applied_path is not None and rev.prefix != ("" if applied_path == "." else applied_path):
        return (f"the policy folder is {rev.prefix or '.'} in the repository, but "
                f"{applied_path} was applied")
    here = []
    for f in find_policy_files(policies).files:
        try:
            here.append(Path(f).read_bytes())
        except OSError as exc:
            return f"{f}: cannot read: {exc.strerror}"
    if _digests(here) != _digests([c for _n, c in committed.files]):
        return "policy files differ from the applied commit's (changes git is told to ignore?)"
    return None


def require_applied(ctx: RunContext, policies: Path, *, doing: str, group: str | None = None,
                    window: str | None = None) -> None:
    """Raise NotApplied (after a `skip` record) unless the policies are at the applied
    revision. Call only when `requireApplied` is on."""
    rec = applied_record(ctx.store)
    commit = rec.details.get("commit") if rec is not None else None
    current = ctx.policy_revision
    shown = current if current == "unversioned" else current[:12] + current[40:]
    if not isinstance(commit, str):
        reason = ("no policy revision has been applied yet (requireApplied is on); run "
                  "`orchestrator apply` from the pipeline first")
    elif current != commit:
        why = ("uncommitted changes" if "+dirty" in current
               else "a revision not in git" if current == "unversioned"
               else "files outside the repository" if "+external" in current
               else "another commit")
        reason = (f"the policies are at {shown} ({why}), not the applied revision "
                  f"{commit[:12]} (requireApplied); check out the applied revision, or merge "
                  "and let the pipeline run `orchestrator apply`")
    else:
        path = rec.details.get("path") if rec is not None else None
        problem = content_mismatch(policies, commit, path if isinstance(path, str) else None)
        if problem is None:
            return
        reason = (f"the policies at {commit[:12]} are not what was applied: {problem} "
                  "(requireApplied); check out the applied revision cleanly")
    extra = {"window": window} if window else {}
    ctx.record("skip", "not-applied", group=group, step=doing, reason=reason,
               applied=commit if isinstance(commit, str) else None, **extra)
    raise NotApplied(f"{doing}: {reason}")
