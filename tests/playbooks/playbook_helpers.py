"""Helpers of the playbook tests (tests/playbooks): run a shipped patch playbook (or a
molecule scenario) against lab hosts with the lab's known_hosts and strict host-key checking,
and read its `orchestrator: result` from Ansible's JSON callback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.execution.workspace import ssh_args

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
RUN_TIMEOUT = 300


@dataclass
class PlayRun:
    rc: int
    result: dict[str, Any] | None  # orchestrator_result of the host
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> host results
    stderr: str = ""

    def package(self, name: str) -> dict[str, Any]:
        assert self.result is not None, self.stderr[-2000:]
        found = [p for p in self.result["packages"] if p["name"] == name]
        assert len(found) == 1, self.result
        return found[0]

    def statuses(self) -> dict[str, str]:
        assert self.result is not None, self.stderr[-2000:]
        return {p["name"]: p["status"] for p in self.result["packages"]}


def lab_env(lab, home: Path, control_dir: Path | None = None) -> dict[str, str]:
    """Ansible against the lab: the venv first on PATH, a private ANSIBLE_HOME, host keys
    checked against the lab's known_hosts only and ssh masters only in `control_dir` (as the
    orchestrator's workspace does; without it no multiplexing)."""
    env = dict(lab.ansible_env())
    env.update(ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
               ANSIBLE_SSH_ARGS=ssh_args([lab.known_hosts_path], control_dir=control_dir),
               ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_DEPRECATION_WARNINGS="False")
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_INVENTORY", "MOLECULE_EPHEMERAL_DIRECTORY"):
        env.pop(name, None)
    return env


def boot_id(lab, host: str) -> str:
    return lab.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout.strip()


@contextlib.contextmanager
def ssh_masters() -> Iterator[Path]:
    """A private folder for ssh control masters (short: a socket path holds 107 bytes); the
    masters in it are told to exit and the folder goes when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="pbcm-", dir="/tmp"))
    try:
        yield folder
    finally:
        for sock in folder.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"],
                           capture_output=True, timeout=30, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def playbook_runner(lab_fleet, tmp_path, control_dir: Path | None = None):
    """run(playbook, host, variables, *args, vars_text=None) -> PlayRun. The variables go in
    an extra-vars YAML file (vars_text: that file's text as is, for !unsafe tags)."""
    count = 0

    def run(playbook: str, host: str, variables: dict[str, Any] | None = None, *args: str,
            vars_text: str | None = None) -> PlayRun:
        nonlocal count
        count += 1
        vars_file = tmp_path / f"vars{count}.yml"
        vars_file.write_text(vars_text if vars_text is not None
                             else yaml.safe_dump(variables or {}))
        home = tmp_path / "ansible-home"
        home.mkdir(exist_ok=True)
        env = lab_env(lab_fleet, home, control_dir)
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(lab_fleet.inventory_path), "--limit", host,
             "-e", f"@{vars_file}", *args, str(PLAYBOOKS / playbook)],
            capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT, cwd=tmp_path)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from ansible-playbook (exit {proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}") from None
        tasks: dict[str, list[dict[str, Any]]] = {}
        for play in doc["plays"]:
            for task in play["tasks"]:
                if host in task["hosts"]:
                    tasks.setdefault(task["task"]["name"], []).append(task["hosts"][host])
        shown = [r for r in tasks.get("orchestrator: result", []) if "orchestrator_result" in r]
        result = shown[-1]["orchestrator_result"] if shown else None
        return PlayRun(proc.returncode, result, tasks, proc.stderr)

    return run


def molecule_env(lab, tmp_path: Path, inventory: Path,
                 control_dir: Path | None = None) -> dict[str, str]:
    env = lab_env(lab, tmp_path / "ansible-home", control_dir)
    (tmp_path / "ansible-home").mkdir(exist_ok=True)
    (tmp_path / "ephemeral").mkdir(exist_ok=True)
    env.update(ORCHESTRATOR_MOLECULE_INVENTORY=str(inventory),
               MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"),
               MOLECULE_NO_LOG="false", NO_COLOR="1", PY_COLORS="0", ANSIBLE_FORCE_COLOR="0")
    env.pop("MOLECULE_GLOB", None)
    os.makedirs(env["ANSIBLE_LOCAL_TEMP"], exist_ok=True)
    return env
