"""policyRevision: the commit of the policy folder, +dirty when the commit does not hold what
is loaded, +external when a loaded file lies outside the work tree (issue 8, finding 7)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.changelog.revision import UNVERSIONED, policy_revision

FREEZE = "apiVersion: x\nkind: Freeze\nmetadata: {name: year-end}\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "policies").mkdir(parents=True)
    (repo / "policies" / "groups.yml").write_text("a: 1\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "policies")
    return repo


def commit_all(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    return git(repo, "rev-parse", "HEAD")


def test_clean_commit(repo: Path) -> None:
    assert policy_revision(repo / "policies") == git(repo, "rev-parse", "HEAD")


def test_uncommitted_and_untracked_changes_are_dirty(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "policies" / "groups.yml").write_text("a: 2\n")
    assert policy_revision(repo / "policies") == head + "+dirty"
    git(repo, "checkout", "-q", "--", "policies")
    (repo / "policies" / "new.yml").write_text("b: 1\n")
    assert policy_revision(repo / "policies") == head + "+dirty"


def test_linked_folder_outside_the_work_tree_is_external(repo: Path, tmp_path: Path) -> None:
    """The reviewer's case: policies/freezes -> a folder outside the repository. git holds
    the link, not what is behind it, so a freeze added there changes the effective policy
    under the same commit."""
    outside = tmp_path / "extfreeze"
    outside.mkdir()
    (repo / "policies" / "freezes").symlink_to(outside)
    head = commit_all(repo)
    assert policy_revision(repo / "policies") == head  # nothing loaded from outside yet
    (outside / "freeze.yml").write_text(FREEZE)
    assert policy_revision(repo / "policies") == head + "+external"
    (repo / "policies" / "groups.yml").write_text("a: 2\n")
    assert policy_revision(repo / "policies") == head + "+dirty+external"


def test_linked_file_outside_the_work_tree_is_external(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "freeze.yml"
    outside.write_text(FREEZE)
    (repo / "policies" / "freeze.yml").symlink_to(outside)
    head = commit_all(repo)
    assert policy_revision(repo / "policies") == head + "+external"


def test_only_policy_files_count(repo: Path, tmp_path: Path) -> None:
    """A link to something the loader never reads (not *.yml, or hidden) marks nothing."""
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    (repo / "policies" / "notes.txt").symlink_to(notes)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "x.yml").write_text(FREEZE)
    (repo / "policies" / ".hidden").symlink_to(hidden)
    head = commit_all(repo)
    assert policy_revision(repo / "policies") == head


def test_linked_folder_elsewhere_in_the_work_tree_is_watched(repo: Path) -> None:
    """A link to another folder of the same repository: the commit pins it, but only if
    that folder is clean too (git status of the policy folder alone does not look there)."""
    shared = repo / "shared"
    shared.mkdir()
    (shared / "freeze.yml").write_text(FREEZE)
    (repo / "policies" / "freezes").symlink_to("../shared")
    head = commit_all(repo)
    assert policy_revision(repo / "policies") == head
    (shared / "freeze.yml").write_text(FREEZE + "spec: {}\n")
    assert policy_revision(repo / "policies") == head + "+dirty"
    git(repo, "checkout", "-q", "--", "shared")
    (shared / "second.yml").write_text(FREEZE)
    assert policy_revision(repo / "policies") == head + "+dirty"


def test_ignored_policy_file_is_dirty(repo: Path) -> None:
    """No commit holds a file git ignores, yet the loader reads it."""
    (repo / ".gitignore").write_text("local*.yml\n")
    head = commit_all(repo)
    assert policy_revision(repo / "policies") == head
    (repo / "policies" / "local-freeze.yml").write_text(FREEZE)
    assert policy_revision(repo / "policies") == head + "+dirty"


def test_outside_git(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.yml").write_text("a: 1\n")
    assert policy_revision(tmp_path / "p") == UNVERSIONED
    assert policy_revision(tmp_path / "missing") == UNVERSIONED
