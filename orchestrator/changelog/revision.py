"""The policy revision on every record: the git commit of the policy directory, with marks.

`+dirty`: the policy folder has uncommitted or untracked changes, or a policy file the
loader reads is ignored by git (so no commit holds it), or a tracked file in it is marked
assume-unchanged or skip-worktree (git would not show its edits).
`+external`: a policy file the loader reads resolves, through a symbolic link, outside the
git work tree, so the commit does not pin its content.
`unversioned`: the policy folder is not in a git work tree (or has no commit yet).

It runs for every command that records, so it costs three git processes and one walk of the
policy folder (the loader's own, orchestrator/policy/files.py: the same files it reads).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestrator.errors import OrchestratorError

UNVERSIONED = "unversioned"
DIRTY = "+dirty"
EXTERNAL = "+external"


def policy_revision(policies: Path) -> str:
    folder = policies if policies.is_dir() else policies.parent
    if not folder.exists():
        return UNVERSIONED
    try:
        env = {k: v for k, v in os.environ.items()  # pathspecs read as written here
               if k not in ("GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS",
                            "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS")}
        env["GIT_NO_REPLACE_OBJECTS"] = "1"  # the commit as made
        git = ["git", "--no-optional-locks", "-c", "core.useReplaceRefs=false", "-C",
               str(folder)]
        head = subprocess.run([*git, "rev-parse", "--show-toplevel", "HEAD"],
                              capture_output=True, text=True, timeout=10, env=env)
        lines = head.stdout.split("\n")
        if head.returncode != 0 or len(lines) < 2 or not lines[1].strip():
            return UNVERSIONED
        top, rev = os.path.realpath(lines[0]), lines[1].strip()
        real_files = _loaded_files(policies)
        outside = [f for f in real_files if not _under(f, top)]
        # "." is the policy folder; a file linked from elsewhere in the work tree is
        # pinned by the commit only if its own folder is clean too
        here = os.path.realpath(folder)
        linked = sorted({os.path.dirname(f) for f in real_files
                         if _under(f, top) and not _under(f, here)})
        # a policy folder that is itself a link: the link is part of what the commit pins
        entry = os.path.join(os.path.realpath(policies.parent), policies.name)
        if os.path.islink(policies) and _under(entry, top):
            linked.append(f":(top,literal){os.path.relpath(entry, top)}")
        status = subprocess.run(
            [*git, "status", "--porcelain", "-z", "--ignored=matching",
             "--untracked-files=all", "--", ".", *linked],
            capture_output=True, timeout=10, env=env)
        # files git is told not to look at (update-index --assume-unchanged or
        # --skip-worktree): `status` cannot see their edits, so the commit does not pin them
        flags = subprocess.run(
            [*git, "ls-files", "-v", "-z", "--", ".", *linked], capture_output=True,
            timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return UNVERSIONED
    if status.returncode != 0 or flags.returncode != 0:  # cannot tell what the commit pins
        return UNVERSIONED
    changed, ignored = _parse_status(status.stdout)
    changed = changed or any(item[:1].islower() or item[:1] == b"S"
                             for item in flags.stdout.split(b"\0") if item)
    unpinned = any(_under(f, os.path.join(top, p)) for f in real_files for p in ignored)
    return rev + (DIRTY if changed or unpinned else "") + (EXTERNAL if outside else "")


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _parse_status(out: bytes) -> tuple[bool, list[str]]:
    """(anything changed or untracked, the ignored paths relative to the work tree)."""
    changed, ignored = False, []
    items = out.split(b"\0")
    i = 0
    while i < len(items):
        item = items[i].decode("utf-8", "surrogateescape")
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        if code == "!!":
            ignored.append(path.rstrip("/"))
        else:
            changed = True
            if code[0] in "RC":  # a rename or copy: its origin follows
                i += 1
    return changed, ignored


def _loaded_files(policies: Path) -> list[str]:
    """The resolved path of every policy file the loader reads (its own walk)."""
    from orchestrator.policy.files import find_policy_files

    try:
        files = find_policy_files(policies).files
    except OrchestratorError:  # the loader reports it
        return []
    return [os.path.realpath(f) for f in files]
