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

from collections import Counter
from pathlib import Path

from orchestrator.changelog.record import Record, sealed_right
from orchestrator.changelog.store import ChangeLogStore, LogFilter
from orchestrator.context import RunContext
from orchestrator.errors import OrchestratorError
from orchestrator.policy.gitsource import Revision
from orchestrator.policy.model import PolicySet


class NotApplied(OrchestratorError):
    """The policy folder is not at the applied revision (requireApplied)."""


def applied_record(store: ChangeLogStore) -> Record | None:
    """The latest `policy.apply` record marking a revision applied, if any. Raises
    NotApplied when that record does not fit the hash chain around it."""
    rec = store.latest(LogFilter(action="policy.apply", status="applied"))
    if rec is None:
        return None
    after = store.record_at(rec.seq + 1)
    if not sealed_right(rec, store.record_at(rec.seq - 1) if rec.seq > 1 else None) or (
            after is not None and after.prevHash != rec.hash):
        raise NotApplied(f"{store.url}: the applied mark (policy.apply record {rec.seq}) does "
                         "not fit the change log's hash chain; the log was altered: run "
                         "`orchestrator log verify`, investigate, restore the state database "
                         "from backup")
    return rec


def applied_commit(store: ChangeLogStore) -> str | None:
    rec = applied_record(store)
    commit = rec.details.get("commit") if rec is not None else None
    return commit if isinstance(commit, str) else None


def content_mismatch(rev: Revision, policies: Path, applied_path: str | None) -> str | None:
    """Why the policy folder does not hold exactly the revision's policy files, or None.
    Each file the loader reads must be one of the revision's, as git would store it
    (`git hash-object`: the repository's end-of-line and filter rules applied) or byte for
    byte (a file committed with CRLF, checked out unconverted), as many times."""
    from orchestrator.policy.files import find_policy_files
    from orchestrator.policy.gitsource import GitSourceError, object_names, read_revision

    if applied_path is not None and rev.prefix != ("" if applied_path == "." else
                                                   applied_path):
        return (f"the policy folder is {rev.prefix or '.'} in the repository, but "
                f"{applied_path} was applied")
    try:
        committed = Counter(read_revision(rev).oids)
        here = object_names(rev.top, find_policy_files(policies).files)
    except GitSourceError as exc:
        return f"cannot compare with the applied revision ({exc.message})"
    if here is None:
        return "a policy file lies outside the repository"
    for filtered, raw in here:
        name = filtered if committed[filtered] > 0 else raw
        if committed[name] <= 0:
            return "policy files differ from the applied commit's"
        committed[name] -= 1
    if +committed:
        return "policy files differ from the applied commit's (some are missing)"
    return None


def require_applied(ctx: RunContext, policies: Path, *, doing: str, group: str | None = None,
                    window: str | None = None) -> PolicySet:
    """The applied revision's policies, read from git objects (so what runs is exactly what
    was applied, whatever happens to the work tree meanwhile), if the policy folder is at
    that revision. Otherwise raise NotApplied after a `skip` record. Call only when
    `requireApplied` is on."""
    from orchestrator.policy.gitsource import GitSourceError, load_revision, resolve

    commit: str | None = None
    checked: Revision | None = None  # resolved once: what was checked is what is loaded
    try:
        rec = applied_record(ctx.store)
    except NotApplied as exc:
        rec, reason = None, exc.message
    else:
        found = rec.details.get("commit") if rec is not None else None
        commit = found if isinstance(found, str) else None
        if commit is not None:
            try:
                checked = resolve(policies, commit)
            except GitSourceError as exc:
                reason = f"the applied revision {commit[:12]} cannot be read here ({exc.message})"
        if commit is None or checked is not None:
            reason = _why_not(ctx, checked, policies, rec, commit)
    if reason is None and checked is not None:
        return load_revision(checked)
    extra = {"window": window} if window else {}
    ctx.record("skip", "not-applied", group=group, step=doing, reason=reason, applied=commit,
               **extra)
    raise NotApplied(f"{doing}: {reason}")


def _why_not(ctx: RunContext, checked: Revision | None, policies: Path, rec: Record | None,
             commit: str | None) -> str | None:
    current = ctx.policy_revision
    shown = current if current == "unversioned" else current[:12] + current[40:]
    if commit is None:
        return ("no policy revision has been applied yet (requireApplied is on); run "
                "`orchestrator apply` from the pipeline first")
    if current != commit:
        why = ("uncommitted changes" if "+dirty" in current
               else "a revision not in git" if current == "unversioned"
               else "files outside the repository" if "+external" in current
               else "another commit")
        return (f"the policies are at {shown} ({why}), not the applied revision "
                f"{commit[:12]} (requireApplied); check out the applied revision, or merge "
                "and let the pipeline run `orchestrator apply`")
    path = rec.details.get("path") if rec is not None else None
    assert checked is not None
    problem = content_mismatch(checked, policies, path if isinstance(path, str) else None)
    if problem is None:
        return None
    return (f"the policies at {commit[:12]} are not what was applied: {problem} "
            "(requireApplied); check out the applied revision cleanly")
