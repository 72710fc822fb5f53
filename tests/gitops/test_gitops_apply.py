"""`apply`: validate, record `policy.apply`, export the schedule, mark the revision; and
`requireApplied`: hosts are changed only from the applied revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import GitRepo, policy_repo, records, run

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.gitops.applied import applied_commit

SCHEDULE = ".orchestrator/schedule"


def _applied(repo: GitRepo) -> str | None:
    store = SqliteStore(repo.root / ".orchestrator" / "state.db")
    try:
        return applied_commit(store)
    finally:
        store.close()


def test_apply_records_the_commit_and_writes_the_schedule(repo: GitRepo, capsys) -> None:
    first = repo.git("rev-parse", "HEAD")
    code, out, err = run(capsys, "apply")
    assert code == 0, err
    assert f"applied {first[:12]} (HEAD), the first applied" in out
    files = sorted(p.name for p in (repo.root / SCHEDULE).iterdir())
    assert files == [f"orchestrator-window-{w}.{k}" for w in
                     ("canary-wednesday", "patch-saturday", "windows-sunday")
                     for k in ("service", "timer")]
    # a change merged: the window goes, its scheduler files go with it
    repo.edit("policies/groups/groups.yml", "windows: [canary-wednesday]", "windows: []")
    text = repo.read("policies/windows/windows.yml")
    start = text.index("apiVersion: orchestrator/v1\nkind: Window\nmetadata:\n  name: canary")
    end = text.index("---", start)
    repo.write("policies/windows/windows.yml", text[:start] + text[end + 4:])
    second = repo.commit("Retire the canary window\n\nThe canary ring now follows Saturday.")
    code, out, err = run(capsys, "--format", "json", "apply", "--revision", "main")
    assert code == 0, err
    done = json.loads(out)
    assert done["commit"] == second and done["previous"] == first
    assert done["summary"]["objects"] == {"added": 0, "removed": 1, "changed": 1}
    assert not (repo.root / SCHEDULE / "orchestrator-window-canary-wednesday.timer").exists()
    assert (repo.root / SCHEDULE / "orchestrator-window-patch-saturday.timer").exists()
    recs = records(capsys, "--action", "policy.apply")
    assert [(r["status"], r["details"]["commit"]) for r in recs] == [
        ("applied", first), ("applied", second)]
    d = recs[1]["details"]
    assert d["author"] == "Alice Author <alice@example.org>"
    assert d["committer"] == "Carl Committer <carl@example.org>"
    assert d["message"] == "Retire the canary window\n\nThe canary ring now follows Saturday."
    assert d["previous"] == first and d["ref"] == "main" and d["path"] == "policies"
    assert d["plan"]["objects"] == {"added": 0, "removed": 1, "changed": 1}
    assert recs[1]["policyRevision"] == second and recs[1]["actor"] == "pipeline@ci"
    assert _applied(repo) == second
    assert run(capsys, "log", "verify")[0] == 0


def test_apply_reads_the_commit_not_the_work_tree(repo: GitRepo, capsys) -> None:
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: nonsense")
    code, _, err = run(capsys, "apply")  # HEAD is valid; the broken edit is not committed
    assert code == 0, err
    timer = (repo.root / SCHEDULE / "orchestrator-window-patch-saturday.timer").read_text()
    assert "OnCalendar=" in timer


def test_an_invalid_revision_is_recorded_and_not_marked(repo: GitRepo, capsys) -> None:
    assert run(capsys, "apply")[0] == 0
    good = repo.git("rev-parse", "HEAD")
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: nonsense")
    bad = repo.commit("broken")
    code, out, err = run(capsys, "apply")
    assert code == 1 and err.startswith("HEAD:policies/windows/windows.yml:12:")
    recs = records(capsys, "--action", "policy.apply")
    assert [(r["status"], r["details"]["commit"]) for r in recs] == [
        ("applied", good), ("invalid", bad)]
    assert _applied(repo) == good


def test_an_unwritable_schedule_folder_marks_nothing(repo: GitRepo, capsys) -> None:
    (repo.root / ".orchestrator").mkdir(mode=0o700)
    (repo.root / SCHEDULE).write_text("a file where the folder should be\n")
    code, _, err = run(capsys, "apply")
    assert code == 1 and "cannot write the scheduler export" in err
    assert "schedule.output" in err and len(err.strip().splitlines()) == 1
    assert [r["status"] for r in records(capsys, "--action", "policy.apply")] == ["failed"]
    assert _applied(repo) is None


def test_cron_export_to_a_configured_folder(repo: GitRepo, capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "cron.d"
    repo.write("orchestrator.yml", repo.read("orchestrator.yml")
               + f"schedule: {{format: cron, output: {out_dir}}}\n")
    repo.commit("cron")
    assert run(capsys, "apply")[0] == 0
    crontab = (out_dir / "orchestrator-windows.crontab").read_text()
    assert "run-window patch-saturday" in crontab and oct((out_dir / "orchestrator-windows"
                                                           ".crontab").stat().st_mode)[-3:] \
        == "644"


@pytest.mark.parametrize("setting", ["schedule: {format: launchd}", "schedule: [x]",
                                     "requireApplied: maybe"])
def test_bad_settings_are_one_line_errors(repo: GitRepo, capsys, setting: str) -> None:
    repo.write("orchestrator.yml", repo.read("orchestrator.yml") + setting + "\n")
    code, _, err = run(capsys, "apply")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "orchestrator.yml" in err


# ------------------------------------------------------------------------- requireApplied
@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    r = policy_repo(tmp_path / "guarded", require_applied=True)
    monkeypatch.chdir(r.root)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "cron@scheduler")
    return r


ACTS = [("run-window", "patch-saturday"), ("patch", "apply", "--group", "web"),
        ("firmware", "apply", "--group", "web")]


@pytest.mark.parametrize("act", ACTS, ids=lambda a: " ".join(a[:2]))
def test_acting_commands_refuse_a_revision_not_applied(guarded: GitRepo, capsys,
                                                       act: tuple[str, ...]) -> None:
    code, _, err = run(capsys, *act)
    assert code == 1 and "no policy revision has been applied yet" in err
    assert run(capsys, "apply")[0] == 0
    applied = guarded.git("rev-parse", "HEAD")
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 5h")  # dirty
    code, _, err = run(capsys, *act)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"{applied[:12]}+dirty (uncommitted changes), not the applied revision " \
        f"{applied[:12]}" in err
    guarded.commit("unreviewed")  # another commit, on main but never applied
    code, _, err = run(capsys, *act)
    assert code == 1 and "(another commit), not the applied revision" in err
    skips = [r for r in records(capsys) if r["action"] == "skip"]
    assert [s["status"] for s in skips] == ["not-applied"] * 3
    assert skips[-1]["details"]["applied"] == applied
    assert skips[-1]["details"]["step"] == ("run-window" if act[0] == "run-window"
                                            else " ".join(act[:2]))
    # back at the applied revision the guard lets it through (the window is closed now)
    guarded.git("reset", "-q", "--hard", applied)
    code, _, err = run(capsys, *act)
    assert "not the applied revision" not in err and code in (0, 3), err


def test_reads_and_dry_runs_are_not_guarded(guarded: GitRepo, capsys) -> None:
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 5h")
    assert run(capsys, "validate")[0] == 0
    assert run(capsys, "plan", "--base", "main")[0] == 2
    for act in (("run-window", "patch-saturday", "--dry-run"),
                ("patch", "apply", "--group", "web", "--check"),
                ("firmware", "apply", "--group", "web", "--check")):
        code, out, err = run(capsys, *act)
        assert "not the applied revision" not in err and "applied yet" not in err, act
        assert code in (0, 2, 3), (act, err)
    assert [r for r in records(capsys) if r["status"] == "not-applied"] == []


def test_edits_git_is_told_to_ignore_are_caught(guarded: GitRepo, capsys) -> None:
    assert run(capsys, "apply")[0] == 0
    guarded.git("update-index", "--skip-worktree", "policies/windows/windows.yml")
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 24h")
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "+dirty (uncommitted changes)" in err
    # were the revision stamp fooled, the content check still holds
    from orchestrator.gitops.applied import content_mismatch
    from orchestrator.policy.gitsource import resolve

    commit = guarded.git("rev-parse", "HEAD")
    assert "policy files differ" in content_mismatch(resolve(guarded.root / "policies", commit),
                                                     guarded.root / "policies",
                                                     "policies")
    guarded.git("update-index", "--no-skip-worktree", "policies/windows/windows.yml")
    guarded.git("update-index", "--assume-unchanged", "policies/windows/windows.yml")
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "+dirty" in err


def test_another_folder_at_the_same_commit_is_refused(guarded: GitRepo, capsys) -> None:
    guarded.write("staging/w.yml", guarded.read("policies/windows/windows.yml"))
    guarded.commit("a second policy folder")
    assert run(capsys, "apply")[0] == 0
    code, _, err = run(capsys, "--policies", "staging", "run-window", "patch-saturday")
    assert code == 1 and "the policy folder is staging in the repository, but policies " \
        "was applied" in err


def test_a_forged_applied_record_is_not_taken(guarded: GitRepo, capsys) -> None:
    import sqlite3

    assert run(capsys, "apply")[0] == 0
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 24h")
    forged = guarded.commit("not reviewed")
    db = sqlite3.connect(guarded.root / ".orchestrator" / "state.db")
    db.execute("INSERT INTO records SELECT seq + 1, time, run, occurrence, ?, actor, host, grp, "
               "action, status, json_set(details, '$.commit', ?), hash, "
               "'0000000000000000000000000000000000000000000000000000000000000000' "
               "FROM records WHERE seq = 1", (forged, forged))
    db.commit()
    db.close()
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "does not fit the change log's hash chain" in err
    assert len(err.strip().splitlines()) == 1


def test_a_failed_export_writes_nothing(repo: GitRepo, capsys) -> None:
    out = repo.root / SCHEDULE
    (out / "orchestrator-window-retired.timer").mkdir(parents=True)  # in the way
    code, _, err = run(capsys, "apply")
    assert code == 1 and "orchestrator-window-retired.timer: in the way" in err
    assert sorted(p.name for p in out.iterdir()) == ["orchestrator-window-retired.timer"]
    assert _applied(repo) is None


def test_one_apply_at_a_time(repo: GitRepo, capsys) -> None:
    from datetime import UTC, datetime, timedelta

    from orchestrator.changelog.lease import this_owner

    (repo.root / ".orchestrator").mkdir(mode=0o700)
    store = SqliteStore(repo.root / ".orchestrator" / "state.db")
    assert store.acquire_lease("policy:apply", "apply:other", datetime.now(UTC)
                               + timedelta(minutes=5), owner=this_owner())
    code, _, err = run(capsys, "apply")
    assert code == 1 and "another `orchestrator apply` is running" in err
    store.release_lease("policy:apply", "apply:other")
    store.close()
    assert run(capsys, "apply")[0] == 0


def test_require_applied_from_the_environment(repo: GitRepo, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_REQUIRE_APPLIED", "true")
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "requireApplied is on" in err
    monkeypatch.setenv("ORCHESTRATOR_REQUIRE_APPLIED", "false")
    assert run(capsys, "run-window", "patch-saturday")[0] == 3  # closed: not refused


def test_a_guarded_run_uses_the_applied_commit_whatever_the_work_tree(
        guarded: GitRepo, capsys, monkeypatch) -> None:
    """Were the work tree edited between the guard's check and the load (a race), the run
    still uses the applied commit's policies: they are read from git after the guard."""
    from dataclasses import replace

    from orchestrator.cli.output import acting_policies
    from orchestrator.config import load_config
    from orchestrator.context import AppContext
    from orchestrator.gitops import applied

    assert run(capsys, "apply")[0] == 0
    commit = guarded.git("rev-parse", "HEAD")
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 24h")
    monkeypatch.setattr(applied, "content_mismatch", lambda *a: None)  # the race won
    a = AppContext(config=load_config(None, cwd=guarded.root))
    rc = replace(a.run_context(), policy_revision=commit)
    ps = acting_policies(a, rc, "run-window", acting=True, window="patch-saturday")
    assert ps.windows["patch-saturday"].duration.total_seconds() == 4 * 3600
    assert a.policies.windows["patch-saturday"].duration.total_seconds() == 24 * 3600
    a.close()


def test_git_replace_does_not_fool_the_guard(guarded: GitRepo, capsys) -> None:
    assert run(capsys, "apply")[0] == 0
    applied_sha = guarded.git("rev-parse", "HEAD")
    guarded.git("checkout", "-q", "-b", "evil")
    guarded.edit("policies/windows/windows.yml", "duration: 4h", "duration: 24h")
    evil = guarded.commit("evil")
    guarded.git("checkout", "-q", "main")
    guarded.git("replace", applied_sha, evil)
    guarded.git("reset", "-q", "--hard", applied_sha)  # checks out the replacement's tree
    assert "duration: 24h" in guarded.read("policies/windows/windows.yml")
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "not the applied revision" in err
    guarded.git("config", "core.useReplaceRefs", "true")  # overrides the environment
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 1 and "not the applied revision" in err


def test_a_checkout_git_converts_is_not_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    r = policy_repo(tmp_path / "crlf", require_applied=True)
    r.write(".gitattributes", "*.yml text eol=crlf\n")
    r.commit("CRLF in the work tree")
    for f in (r.root / "policies").rglob("*.yml"):
        f.unlink()
    r.git("checkout", "--", ".")
    assert b"\r\n" in (r.root / "policies/windows/windows.yml").read_bytes()
    monkeypatch.chdir(r.root)
    assert run(capsys, "apply")[0] == 0
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 3 and "applied" not in err  # the guard passed; the window is closed


def test_a_link_from_outside_into_the_repository(repo: GitRepo, capsys, tmp_path: Path,
                                                 monkeypatch) -> None:
    import os

    os.symlink(repo.root / "policies", tmp_path / "policies-link")
    repo.write("orchestrator.yml", repo.read("orchestrator.yml").replace(
        "policies: policies/", f"policies: {tmp_path / 'policies-link'}"))
    repo.commit("policies through a link")
    code, out, err = run(capsys, "apply")
    assert code == 0, err
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: 5h")
    assert run(capsys, "plan", "--base", "HEAD")[0] == 2


def test_a_file_committed_with_crlf_under_autocrlf(tmp_path: Path, monkeypatch,
                                                  capsys) -> None:
    r = policy_repo(tmp_path / "crlf2", require_applied=True)
    win = r.root / "policies/windows/windows.yml"
    win.write_bytes(win.read_bytes().replace(b"\n", b"\r\n"))
    r.commit("CRLF committed as is")
    r.git("config", "core.autocrlf", "true")  # git status stays clean; hash-object converts
    monkeypatch.chdir(r.root)
    assert run(capsys, "apply")[0] == 0
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 3 and "applied" not in err


def test_odd_policy_file_names_pass_the_guard(guarded: GitRepo, capsys) -> None:
    text = guarded.read("policies/windows/freezes.yml")
    (guarded.root / "policies/windows/freezes.yml").unlink()
    guarded.write('policies/windows/"quoted\nname.yml', text)
    guarded.commit("an odd file name")
    assert run(capsys, "apply")[0] == 0
    code, _, err = run(capsys, "run-window", "patch-saturday")
    assert code == 3 and "applied" not in err, err
