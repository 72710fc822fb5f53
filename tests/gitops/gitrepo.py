"""Real temporary git repositories holding a policy tree, for the GitOps tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {"GIT_AUTHOR_NAME": "Alice Author", "GIT_AUTHOR_EMAIL": "alice@example.org",
       "GIT_COMMITTER_NAME": "Carl Committer", "GIT_COMMITTER_EMAIL": "carl@example.org"}


WINDOW = """\
{modeline}apiVersion: orchestrator/v1
kind: Window
metadata:
  name: patch-saturday
spec:
  schedule:
    cron: "0 22 * * {day}"
  timezone: Europe/Berlin
  duration: {duration}
"""


def window_yaml(duration: str = "4h", day: str = "SAT", modeline: str = "") -> str:
    """One Window document (`duration` sits at line 9, column 13 without a modeline)."""
    return WINDOW.format(duration=duration, day=day, modeline=modeline)


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, **ENV}
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            env.pop(name, None)
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True,
                              text=True, env=env, check=True)
        return done.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def edit(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD")


def policy_repo(root: Path, *, require_applied: bool = False) -> GitRepo:
    """The project's example policies and inventory, committed on `main`."""
    repo = GitRepo(root)
    shutil.copytree(ROOT / "policies", root / "policies")
    shutil.copytree(ROOT / "inventories", root / "inventories")
    repo.write(".gitignore", ".orchestrator/\n")
    repo.write("orchestrator.yml", "policies: policies/\ninventory: inventories/example.yml\n"
               "state: sqlite:///.orchestrator/state.db\n"
               + ("requireApplied: true\n" if require_applied else ""))
    repo.commit("base policies")
    return repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    r = policy_repo(tmp_path / "repo")
    monkeypatch.chdir(r.root)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "pipeline@ci")
    return r


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code, out, err = run(capsys, "plan", "--format", "json", *args)
    assert code in (0, 2), err
    return code, json.loads(out)


def records(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    code, out, err = run(capsys, "log", "--format", "json", *args)
    assert code == 0, err
    return [json.loads(x) for x in out.splitlines()]
