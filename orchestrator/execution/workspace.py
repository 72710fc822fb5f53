"""A private ansible-runner workspace per run: private folder, Ansible settings kept inside,
the orchestrator's host-key policy forced, and every process of the run ended with it."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

MARKER = "ORCHESTRATOR_WORKSPACE"  # in the environment of every process a run starts
_TRUE_VARS = ("ansible_host_key_checking", "ansible_ssh_host_key_checking",
              "ansible_paramiko_host_key_checking")


@functools.cache
def _ssh_knows(option: str) -> bool:
    """Does the local OpenSSH client accept `-o option` (KnownHostsCommand is 8.5+)?"""
    ssh = shutil.which("ssh")
    if ssh is None:
        return False
    try:
        return subprocess.run([ssh, "-G", "-o", option, "orchestrator.invalid"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ssh_args(known_hosts: Sequence[Path], strict: bool = True) -> str:
    """OpenSSH options that hold ssh to the orchestrator's host-key policy. OpenSSH takes
    the first value given for an option and Ansible puts ssh_args before an inventory's
    common and extra args, so nothing in the inventory can loosen these: checking on
    (`acceptNew`, like OpenSSH's accept-new, adds unknown keys but refuses a changed one),
    keys only from the orchestrator's known_hosts files (plus those the inventory names, as
    for the SSH transport), none from a global file, DNS or a command."""
    mode = "yes" if strict else "accept-new"
    opts = [f"-o StrictHostKeyChecking={mode}", "-o GlobalKnownHostsFile=/dev/null",
            "-o VerifyHostKeyDNS=no"]
    if _ssh_knows("KnownHostsCommand=none"):
        opts.append("-o KnownHostsCommand=none")
    if known_hosts:
        files = " ".join(str(p) for p in dict.fromkeys(known_hosts))
        opts.insert(0, f"-o UserKnownHostsFile={shlex.quote(files)}")
    return " ".join([*opts, "-o ControlMaster=auto", "-o ControlPersist=60s"])


def host_key_vars(known_hosts: Sequence[Path], strict: bool = True) -> dict[str, object]:
    """Extra variables (which beat every inventory, group, host and play variable) that keep
    Ansible's host-key policy the orchestrator's, whichever variable name the ssh or paramiko
    plugin reads, and the ssh binary the one on PATH (an inventory's ansible_ssh_executable
    could otherwise be a wrapper that drops our options)."""
    forced: dict[str, object] = {name: True for name in _TRUE_VARS}
    forced["ansible_ssh_args"] = ssh_args(known_hosts, strict)
    forced["ansible_ssh_executable"] = "ssh"
    return forced


def ansible_env(known_hosts: Sequence[Path], strict: bool = True) -> dict[str, str]:
    """Environment for ansible-playbook: host keys checked by every plugin (environment beats
    ansible.cfg, and paramiko's auto-add and record settings can only be set here), our
    venv's binaries first."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PARAMIKO_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD": "False",
        "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
        "ANSIBLE_SSH_EXECUTABLE": "ssh",
        "ANSIBLE_SSH_ARGS": ssh_args(known_hosts, strict),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read()
    except OSError:  # gone, or not ours to read
        return False
    return env.startswith(needle) or b"\0" + needle in env


class Workspace:
    """A temporary private_data_dir (0700), removed on exit; ANSIBLE_HOME inside it. Every
    process started with `env()` carries a marker naming this folder, so `end_processes`
    finds them all, even those that left ansible-playbook's process group."""

    def __init__(self, prefix: str = "orchestrator-run-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.path, 0o700)
        (self.path / "ansible-home").mkdir(mode=0o700)

    def env(self, known_hosts: Sequence[Path], strict: bool = True) -> dict[str, str]:
        env = ansible_env(known_hosts, strict)
        env["ANSIBLE_HOME"] = str(self.path / "ansible-home")
        env["ANSIBLE_LOCAL_TEMP"] = str(self.path / "ansible-home" / "tmp")
        env[MARKER] = str(self.path)
        return env

    def processes(self) -> list[int]:
        """Processes still running with this workspace's marker (Linux /proc)."""
        needle = f"{MARKER}={self.path}\0".encode()
        me = os.getpid()
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return []
        return [p for p in pids if p != me and _environ_has(p, needle)]

    def end_processes(self, grace: float = 3.0) -> list[int]:
        """End whatever the run left: ansible-playbook (ansible-runner kills only its process
        group on a timeout), its workers (each makes its own process group) and their ssh
        processes. SIGTERM to each one's whole process group, SIGKILL to what is left after
        `grace` seconds. Returns the pids found."""
        found = self.processes()
        if not found:
            return []
        own_group = os.getpgrp()
        self._signal(found, signal.SIGTERM, own_group)
        deadline = time.monotonic() + grace
        left = found
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.processes()
        if left:
            self._signal(left, signal.SIGKILL, own_group)
            deadline = time.monotonic() + grace
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.05)
        return found

    @staticmethod
    def _signal(pids: list[int], sig: int, own_group: int) -> None:
        for pid in pids:
            try:
                group = os.getpgid(pid)
                if group != own_group:
                    os.killpg(group, sig)
                else:  # never our own group: only the process itself
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                continue

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end_processes()
        shutil.rmtree(self.path, ignore_errors=True)
