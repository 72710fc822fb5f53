"""A private ansible-runner workspace per run: private folder, Ansible settings kept inside."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def host_key_vars(known_hosts: Sequence[Path], strict: bool = True) -> dict[str, object]:
    """Extra variables (which beat inventory variables) that keep Ansible's host-key policy
    the orchestrator's: checking always on; `acceptNew` adds unknown keys but, as OpenSSH's
    accept-new does, refuses a changed one. OpenSSH takes the first value of an option, and
    ssh_args come before an inventory's common and extra args."""
    mode = "yes" if strict else "accept-new"
    args = f"-o StrictHostKeyChecking={mode} -o ControlMaster=auto -o ControlPersist=60s"
    if known_hosts:
        files = " ".join(str(p) for p in dict.fromkeys(known_hosts))
        args = f"-o UserKnownHostsFile={shlex.quote(files)} " + args
    return {"ansible_ssh_args": args, "ansible_host_key_checking": True}


def ansible_env(known_hosts: Sequence[Path], strict: bool = True) -> dict[str, str]:
    """Environment for ansible-playbook: host keys checked, our venv's binaries first."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }
    env["ANSIBLE_SSH_ARGS"] = str(host_key_vars(known_hosts, strict)["ansible_ssh_args"])
    return env


class Workspace:
    """A temporary private_data_dir (0700), removed on exit; ANSIBLE_HOME inside it."""

    def __init__(self, prefix: str = "orchestrator-run-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.path, 0o700)
        (self.path / "ansible-home").mkdir(mode=0o700)

    def env(self, known_hosts: Sequence[Path], strict: bool = True) -> dict[str, str]:
        env = ansible_env(known_hosts, strict)
        env["ANSIBLE_HOME"] = str(self.path / "ansible-home")
        env["ANSIBLE_LOCAL_TEMP"] = str(self.path / "ansible-home" / "tmp")
        return env

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
