"""Policies read straight from git objects: renames, deletions, merges, links, and nothing
in the user's work tree touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitrepo import GitRepo, plan_json, run

from orchestrator.policy.gitsource import GitSourceError, load_revision, read_revision, resolve

WINDOW = """apiVersion: orchestrator/v1
kind: Window
metadata: {{name: {name}}}
spec:
  schedule: {{cron: "{cron}"}}
  timezone: Europe/Berlin
  duration: 2h
"""


def test_reading_a_commit_touches_nothing_in_the_work_tree(repo: GitRepo, capsys) -> None:
    assert run(capsys, "apply")[0] == 0  # a state store: plan reads it (and the revision)
    os.utime(repo.root / "policies" / "groups" / "groups.yml")  # stale in the index
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: 6h")
    (repo.root / "policies" / "new.yml").write_text(WINDOW.format(name="extra", cron="0 1 * * *"))
    index = repo.root / ".git" / "index"
    before = (repo.git("--no-optional-locks", "status", "--porcelain"), index.stat().st_mtime_ns,
              index.read_bytes(), sorted(os.listdir(repo.root / ".git")))
    code, plan = plan_json(capsys, "--base", "main", "--head", "main")
    assert code == 0 and plan["objects"] == []
    code, plan = plan_json(capsys, "--base", "main")  # head: the work tree
    assert code == 2
    assert {(o["kind"], o["name"], o["change"]) for o in plan["objects"]} == {
        ("Window", "extra", "added"), ("Window", "patch-saturday", "changed")}
    after = (repo.git("--no-optional-locks", "status", "--porcelain"), index.stat().st_mtime_ns,
             index.read_bytes(), sorted(os.listdir(repo.root / ".git")))
    assert after == before  # no checkout, no index refresh, no lock left behind
    assert "duration: 6h" in repo.read("policies/windows/windows.yml")


def test_a_renamed_or_split_file_is_no_change(repo: GitRepo, capsys) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.git("mv", "policies/waivers/waivers.yml", "policies/exceptions.yml")
    text = repo.read("policies/windows/windows.yml")
    first, _, rest = text.partition("\n---\n")
    repo.write("policies/windows/windows.yml", first + "\n")
    repo.write("policies/windows/more/other.yml", rest)
    head = repo.commit("reorganise files")
    code, plan = plan_json(capsys, "--base", base, "--head", head)
    assert code == 0 and plan["changed"] is False and plan["objects"] == []
    code, out, _ = run(capsys, "plan", "--base", base, "--head", head)
    assert code == 0 and "no change (exit 0)" in out


def test_deleted_objects_and_files_are_removed(repo: GitRepo, capsys) -> None:
    base = repo.git("rev-parse", "HEAD")
    (repo.root / "policies" / "waivers" / "waivers.yml").unlink()
    repo.commit("drop the waiver")
    code, plan = plan_json(capsys, "--base", base, "--head", "HEAD")
    assert code == 2
    [obj] = plan["objects"]
    assert (obj["kind"], obj["name"], obj["change"]) == ("Waiver", "legacy-telnet", "removed")
    assert obj["file"] == "policies/waivers/waivers.yml:1"  # where it was, in the base


def test_merge_commits(repo: GitRepo, capsys) -> None:
    root = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("policies/windows/feature.yml", WINDOW.format(name="feature", cron="0 3 * * *"))
    repo.commit("feature window")
    repo.git("checkout", "-q", "main")
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: 3h")
    repo.commit("shorter saturday")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    assert len(repo.git("rev-list", "--parents", "-n", "1", "HEAD").split()) == 3
    _, plan = plan_json(capsys, "--base", root, "--head", "main")
    assert {(o["name"], o["change"]) for o in plan["objects"]} == {
        ("feature", "added"), ("patch-saturday", "changed")}
    # against its first parent a merge brings the feature; against the second, main's work
    _, plan = plan_json(capsys, "--base", "main^1", "--head", "main")
    assert [(o["name"], o["change"]) for o in plan["objects"]] == [("feature", "added")]
    _, plan = plan_json(capsys, "--base", "main^2", "--head", "main")
    assert [(o["name"], o["change"]) for o in plan["objects"]] == [("patch-saturday", "changed")]
    assert plan["base"]["ref"] == "main^2" and len(plan["base"]["commit"]) == 40


def test_invalid_head_is_exit_1_with_file_line_col(repo: GitRepo, capsys) -> None:
    repo.write("policies/windows/bad.yml", WINDOW.format(name="bad", cron="0 3 * * *")
               .replace("duration: 2h", "duration: forever"))
    head = repo.commit("a broken window")
    code, out, err = run(capsys, "plan", "--base", "HEAD~1", "--head", head)
    assert code == 1 and out == ""
    assert err.startswith(f"{head[:12]}:policies/windows/bad.yml:7:"), err
    # the work tree as head: its own file name
    code, out, err = run(capsys, "plan", "--base", "HEAD~1")
    assert code == 1 and "policies/windows/bad.yml:7:" in err and "Window/bad" in err
    # an invalid base is compared as far as it loads, with a warning
    repo.write("policies/windows/bad.yml", WINDOW.format(name="bad", cron="0 3 * * *"))
    code, plan = plan_json(capsys, "--base", head)
    assert code == 2 and plan["base"]["problems"]
    assert [(o["name"], o["change"]) for o in plan["objects"]] == [("bad", "added")]


@pytest.mark.parametrize("ref", ["no-such-branch", "--all", "--since=1.year",
                                 "--git-dir", "HEAD:policies", ""])
def test_unknown_revisions_are_one_line_errors(repo: GitRepo, capsys, ref: str) -> None:
    code, out, err = run(capsys, "plan", f"--base={ref}")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "Traceback" not in err
    assert "no such commit" in err or "not a git revision" in err


def test_policy_folder_outside_git(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "w.yml").write_text(WINDOW.format(name="w", cron="0 1 * * *"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = run(capsys, "plan", "--base", "main")
    assert code == 1 and "not in a git work tree" in err and "policies" in err


def test_base_without_the_policy_folder_adds_everything(repo: GitRepo, capsys) -> None:
    repo.git("checkout", "-q", "--orphan", "empty")
    repo.git("rm", "-rq", "--cached", ".")
    repo.git("commit", "-q", "--allow-empty", "-m", "empty")
    repo.git("checkout", "-q", "-f", "main")
    code, plan = plan_json(capsys, "--base", "empty")
    assert code == 2 and plan["summary"]["objects"]["added"] == 16
    assert "does not exist in empty" in plan["base"]["problems"][0]


def test_links_hidden_folders_and_submodules(repo: GitRepo) -> None:
    repo.write("shared/common.yml", WINDOW.format(name="linked", cron="0 4 * * *"))
    os.symlink("../shared", repo.root / "policies" / "shared")  # a linked folder
    os.symlink("../shared/common.yml", repo.root / "policies" / "again.yml")  # read once
    os.symlink("/etc/passwd", repo.root / "policies" / "escape.yml")
    os.symlink("../../outside.yml", repo.root / "policies" / "up.yml")
    os.symlink("loop.yml", repo.root / "policies" / "loop.yml")
    repo.write("policies/.hidden/secret.yml", "not: a policy\n")
    head = repo.commit("links")
    sub = repo.git("rev-parse", "HEAD")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub},policies/vendored")
    repo.git("commit", "-q", "-m", "a submodule")
    rev = resolve(repo.root / "policies", "HEAD")
    found = read_revision(rev)
    names = [n for n, _ in found.files]
    assert "HEAD:policies/again.yml" in names and "HEAD:policies/shared/common.yml" not in names
    assert not any(".hidden" in n for n in names)
    problems = "\n".join(found.problems)
    assert "escape.yml: symbolic link to /etc/passwd, outside the repository" in problems
    assert "up.yml: symbolic link to ../../outside.yml, outside the repository" in problems
    assert "loop.yml: symbolic link loop" in problems
    assert "policies/vendored: a git submodule" in problems
    ps = load_revision(rev, strict=False)
    assert "linked" in ps.windows
    with pytest.raises(Exception) as err:
        load_revision(resolve(repo.root / "policies", head))
    assert "escape.yml" in str(getattr(err.value, "problems", err.value))


def test_revision_errors_name_the_repository(repo: GitRepo) -> None:
    with pytest.raises(GitSourceError, match="no such commit"):
        resolve(repo.root / "policies", "v9.9")


def test_a_linked_policy_folder_is_followed_in_each_revision(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    repo = GitRepo(tmp_path / "r")
    for folder, name in (("A", "only-in-a"), ("B", "only-in-b")):
        repo.write(f"{folder}/w.yml", WINDOW.format(name=name, cron="0 1 * * *"))
    os.symlink("A", repo.root / "pol")
    repo.write("orchestrator.yml", "policies: pol\nstate: sqlite:///.orchestrator/s.db\n")
    repo.write(".gitignore", ".orchestrator/\n")
    repo.commit("pol -> A")
    (repo.root / "pol").unlink()
    os.symlink("B", repo.root / "pol")
    repo.commit("pol -> B")
    monkeypatch.chdir(repo.root)
    code, plan = plan_json(capsys, "--base", "HEAD~1", "--head", "HEAD")
    assert code == 2
    assert {(o["name"], o["change"]) for o in plan["objects"]} == {
        ("only-in-a", "removed"), ("only-in-b", "added")}
    repo.git("checkout", "-q", "HEAD~1")  # the work tree's link now points at A
    code, plan = plan_json(capsys, "--base", "HEAD", "--head", "main")
    assert {(o["name"], o["change"]) for o in plan["objects"]} == {
        ("only-in-a", "removed"), ("only-in-b", "added")}


def test_a_huge_file_is_a_problem_and_never_read(repo: GitRepo, monkeypatch) -> None:
    from orchestrator.policy import gitsource

    with open(repo.root / "policies" / "huge.yml", "wb") as fh:
        fh.write(b"# " + b"x" * (9 * 1024 * 1024) + b"\n")
    repo.commit("huge")
    asked: list[str] = []
    real = gitsource._blobs
    monkeypatch.setattr(gitsource, "_blobs", lambda top, wanted: asked.extend(wanted) or
                        real(top, wanted))
    found = read_revision(resolve(repo.root / "policies", "HEAD"))
    assert "HEAD:policies/huge.yml:1:1: larger than 8 MiB" in "\n".join(found.problems)
    assert not any("huge" in a for a in asked)


def test_a_repository_path_ending_in_a_blank(tmp_path: Path, monkeypatch, capsys) -> None:
    from gitrepo import policy_repo

    repo = policy_repo(tmp_path / "policies repo ")
    monkeypatch.chdir(repo.root)
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: 5h")
    code, plan = plan_json(capsys, "--base", "main")
    assert code == 2 and plan["objects"][0]["name"] == "patch-saturday"


def test_a_link_to_the_repository_top(repo: GitRepo) -> None:
    repo.write("extra/top.yml", WINDOW.format(name="from-top", cron="0 5 * * *"))
    os.symlink("..", repo.root / "policies" / "up")
    repo.commit("a link to the top")
    found = read_revision(resolve(repo.root / "policies", "HEAD"))
    assert "HEAD:extra/top.yml" in [n for n, _ in found.files]
    assert not found.problems
