"""`.pre-commit-hooks.yaml`, tested with pre-commit itself on temporary repositories.

pre-commit clones a hook repository at the `rev:` a user pins. Here that repository is a
snapshot of this project as it is on disk (tracked files and new ones not ignored, so that
uncommitted work is what is tested, as `pre-commit try-repo` would do for tracked files),
committed in a temporary git repository. PRE_COMMIT_HOME is a temporary folder: nothing of
the user's pre-commit cache is read or written.

`orchestrator-validate` (language: python) makes pre-commit build a virtualenv and pip-install
this project with its dependencies on first use: measured here at 38 to 56 s on 2 busy
cores (one install, shared by the tests of this module, removed after them).
`orchestrator-validate-system` uses the orchestrator on PATH and installs nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gitrepo import window_yaml

REPO = Path(__file__).resolve().parents[2]
HOOKS = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent  # this venv: `pre-commit`, `orchestrator`

ERROR = re.compile(r"policies/windows\.yml:9:13: Window/patch-saturday: spec\.duration")


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    env = env or {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1",
                  "GIT_AUTHOR_NAME": "Ada Admin", "GIT_AUTHOR_EMAIL": "ada@example.com",
                  "GIT_COMMITTER_NAME": "Ada Admin", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This project, as on disk, committed in a repository of its own: (path, commit)."""
    dest = tmp_path_factory.mktemp("hook-repo")
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree, not yet in the index
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest, git(dest, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("pre-commit-home")
    yield home
    shutil.rmtree(home, ignore_errors=True)  # the hook's environment: about 580 MB


def user_repo(tmp: Path, hook_repo: tuple[Path, str], hook_id: str,
              duration: str = "4h") -> Path:
    """A policy repository whose .pre-commit-config.yaml uses `hook_id` from hook_repo."""
    repo = tmp / "policies-repo"
    (repo / "policies").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "orchestrator.yml").write_text("policies: policies/\n")
    (repo / "policies" / "windows.yml").write_text(window_yaml(duration=duration))
    (repo / "README.md").write_text("# policies\n")
    path, rev = hook_repo
    config = {"repos": [{"repo": str(path), "rev": rev, "hooks": [{"id": hook_id}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(repo, "add", "-A")
    return repo


def env_for(home: Path, tmp: Path, with_orchestrator: bool) -> dict[str, str]:
    """A clean environment; `orchestrator` on PATH only if asked (pre-commit itself is
    called by its full path)."""
    path = os.environ["PATH"]
    parts = [p for p in path.split(os.pathsep) if Path(p).resolve() != BIN.resolve()]
    assert shutil.which("orchestrator", path=os.pathsep.join(parts)) is None, \
        "another orchestrator is on PATH; this test needs to control which one runs"
    if with_orchestrator:
        parts.insert(0, str(BIN))
    (tmp / "home").mkdir(exist_ok=True)
    return {"PATH": os.pathsep.join(parts), "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
            "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada Admin",
            "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada Admin",
            "GIT_COMMITTER_EMAIL": "ada@example.com"}


def pre_commit(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "pre-commit"), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


def test_manifest_is_valid_for_pre_commit(tmp_path: Path, pre_commit_home: Path) -> None:
    env = env_for(pre_commit_home, tmp_path, with_orchestrator=False)
    done = pre_commit(tmp_path, env, "validate-manifest", str(HOOKS))
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS.read_text())}
    assert set(hooks) == {"orchestrator-validate", "orchestrator-validate-system"}
    for hook in hooks.values():
        assert hook["entry"] == "orchestrator validate"
        assert hook["pass_filenames"] is False  # validate checks the whole policy folder
        assert re.search(hook["files"], "policies/windows.yml")
        assert re.search(hook["files"], "orchestrator.yaml")
        assert not re.search(hook["files"], "README.md")
    assert hooks["orchestrator-validate"]["language"] == "python"
    assert hooks["orchestrator-validate-system"]["language"] == "system"


def test_system_hook_passes_a_valid_tree_and_blocks_a_commit_of_an_invalid_one(
        tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path) -> None:
    repo = user_repo(tmp_path, hook_repo, "orchestrator-validate-system")
    env = env_for(pre_commit_home, tmp_path, with_orchestrator=True)
    done = pre_commit(repo, env, "run", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"orchestrator validate \(installed orchestrator\)\.+Passed", done.stdout)
    # as a git hook: the commit of an invalid policy is refused, with file:line:col
    done = pre_commit(repo, env, "install")
    assert done.returncode == 0, done.stdout + done.stderr
    git(repo, "commit", "-q", "-m", "valid policies", env=env)  # the hook runs and passes
    (repo / "policies" / "windows.yml").write_text(window_yaml(duration="forever"))
    git(repo, "add", "-A")
    done = subprocess.run(["git", "commit", "-m", "a broken window"], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert ERROR.search(done.stdout + done.stderr), done.stdout + done.stderr
    assert git(repo, "log", "--format=%s") == "valid policies"
    # a commit without YAML does not run it (files: \.ya?ml$)
    git(repo, "reset", "-q", "--hard")
    (repo / "README.md").write_text("# policies\nreviewed by ops\n")
    git(repo, "add", "-A")
    done = pre_commit(repo, env, "run")
    assert done.returncode == 0
    assert re.search(r"\(no files to check\)Skipped", done.stdout), done.stdout


def test_system_hook_without_orchestrator_says_so(
        tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path) -> None:
    repo = user_repo(tmp_path, hook_repo, "orchestrator-validate-system")
    env = env_for(pre_commit_home, tmp_path, with_orchestrator=False)
    done = pre_commit(repo, env, "run", "--all-files")
    assert done.returncode == 1
    assert "Executable `orchestrator` not found" in done.stdout, done.stdout


def test_python_hook_installs_orchestrator_and_validates(
        tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path) -> None:
    """No orchestrator on PATH: pre-commit's own environment provides it."""
    env = env_for(pre_commit_home, tmp_path, with_orchestrator=False)
    valid = user_repo(tmp_path / "valid", hook_repo, "orchestrator-validate")
    started = time.monotonic()
    done = pre_commit(valid, env, "run", "--all-files")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"orchestrator validate\.+Passed", done.stdout), done.stdout
    print(f"pre-commit: environment for orchestrator-validate built and run in {took:.0f} s")
    invalid = user_repo(tmp_path / "invalid", hook_repo, "orchestrator-validate",
                        duration="forever")
    done = pre_commit(invalid, env, "run", "--all-files")
    assert done.returncode == 1
    assert re.search(r"orchestrator validate\.+Failed", done.stdout), done.stdout
    assert ERROR.search(done.stdout), done.stdout
