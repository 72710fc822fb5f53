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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "ORCHESTRATOR_WORKSPACE"  # in the environment of every process a run starts
_TRUE_VARS = ("ansible_host_key_checking", "ansible_ssh_host_key_checking",
              "ansible_paramiko_host_key_checking")
# sun_path holds 108 bytes with its NUL; OpenSSH binds `<ControlPath>.<16 random>` first and
# %C expands to 40 hex digits
_SOCKET_MAX = 107 - len("/") - 40 - len(".") - 16
# ssh's getopt string (OpenSSH 9): the flags that take an argument
_SSH_FLAGS_WITH_ARG = frozenset("bceilmopBDEFIJLOPQRSwW")
_SSH_ARG_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")


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


def control_path(control_dir: Path | None) -> str | None:
    """The ControlPath of a run's ssh masters (`<control_dir>/%C`), or None (multiplexing off)
    when there is no private folder or its path is too long for a Unix socket."""
    if control_dir is None or len(os.fsencode(str(control_dir))) > _SOCKET_MAX:
        return None
    return f"{control_dir}/%C"


def ssh_args(known_hosts: Sequence[Path], strict: bool = True,
             control_dir: Path | None = None) -> str:
    """OpenSSH options that hold ssh to the orchestrator's host-key policy. OpenSSH takes
    the first value given for an option and Ansible puts ssh_args before an inventory's
    common and extra args, so nothing in the inventory can loosen these: checking on
    (`acceptNew`, like OpenSSH's accept-new, adds unknown keys but refuses a changed one),
    keys only from the orchestrator's known_hosts files (plus those the inventory names, as
    for the SSH transport), none from a global file, DNS or a command.

    First of all the ControlPath: a session multiplexed over an existing master checks no
    host key, so masters live only in `control_dir` (the run's private folder, empty when the
    run starts) and no inventory `-o ControlPath`, `ansible_control_path(_dir)` or Ansible
    default (~/.ansible/cp, shared with the user's own runs) is ever used. Without a usable
    `control_dir`, multiplexing is off."""
    path = control_path(control_dir)
    mode = "yes" if strict else "accept-new"
    opts = [f"-o StrictHostKeyChecking={mode}", "-o GlobalKnownHostsFile=/dev/null",
            "-o VerifyHostKeyDNS=no"]
    if _ssh_knows("KnownHostsCommand=none"):
        opts.append("-o KnownHostsCommand=none")
    if known_hosts:
        files = " ".join(str(p) for p in dict.fromkeys(known_hosts))
        opts.insert(0, f"-o UserKnownHostsFile={shlex.quote(files)}")
    if path is None:
        return " ".join(["-o ControlPath=none", *opts, "-o ControlMaster=no"])
    return " ".join([f"-o ControlPath={shlex.quote(path)}", *opts,
                     "-o ControlMaster=auto", "-o ControlPersist=60s"])


def host_key_vars(known_hosts: Sequence[Path], strict: bool = True,
                  control_dir: Path | None = None) -> dict[str, object]:
    """Extra variables (which beat every inventory, group, host and play variable) that keep
    Ansible's host-key policy the orchestrator's, whichever variable name the ssh or paramiko
    plugin reads; the ssh binary the one on PATH (an inventory's ansible_ssh_executable
    could otherwise be a wrapper that drops our options); control sockets in `control_dir`
    (ssh_args); and files sent by `dd` over that same ssh (`piped`), never by sftp or scp,
    whose executables and extra args (`-S program`) an inventory could make a wrapper of."""
    forced: dict[str, object] = {name: True for name in _TRUE_VARS}
    forced["ansible_ssh_args"] = ssh_args(known_hosts, strict, control_dir)
    forced["ansible_ssh_executable"] = "ssh"
    forced["ansible_ssh_transfer_method"] = "piped"
    forced["ansible_sftp_executable"] = "sftp"
    forced["ansible_scp_executable"] = "scp"
    if control_dir is not None:  # unused while ssh_args names a ControlPath; kept ours anyway
        forced["ansible_control_path_dir"] = str(control_dir)
        forced["ansible_control_path"] = "%(directory)s/%%C"
    return forced


def ansible_env(known_hosts: Sequence[Path], strict: bool = True,
                control_dir: Path | None = None) -> dict[str, str]:
    """Environment for ansible-playbook: host keys checked by every plugin (environment beats
    ansible.cfg, and paramiko's auto-add and record settings can only be set here), the same
    ssh settings as host_key_vars, our venv's binaries first."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PARAMIKO_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD": "False",
        "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
        "ANSIBLE_SSH_EXECUTABLE": "ssh",
        "ANSIBLE_SSH_ARGS": ssh_args(known_hosts, strict, control_dir),
        "ANSIBLE_SSH_TRANSFER_METHOD": "piped",
        "ANSIBLE_SFTP_EXECUTABLE": "sftp",
        "ANSIBLE_SCP_EXECUTABLE": "scp",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }
    # Pipelining: modules go through the ssh session's stdin instead of a temporary file
    # per task (about a fifth of the patch playbooks' time). Needs no `requiretty` for sudo
    # (Debian, Ubuntu, RHEL 7+ ship without it); a host that has it sets `ansible_pipelining:
    # false` in the inventory (inventory beats this), a site sets ANSIBLE_PIPELINING.
    if "ANSIBLE_PIPELINING" not in os.environ:
        env["ANSIBLE_PIPELINING"] = "True"
    if control_dir is not None:
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
        env["ANSIBLE_SSH_CONTROL_PATH"] = "%(directory)s/%%C"
    return env


def ssh_socket_flag(args: str) -> bool:
    """Do these ssh command-line words hold `-S` (a control socket)? Unlike `-o ControlPath`,
    where the first value wins, `-S` replaces every earlier ControlPath, ours too. Reads
    bundled flags (`-vS/x`) and flags after a non-option word the way ssh's getopt does.
    Words that are not valid shell words count as holding it (they cannot be checked)."""
    try:
        words = shlex.split(args)
    except ValueError:
        return True
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if not word.startswith("-") or word in ("-", "--"):
            continue
        for i, flag in enumerate(word[1:], start=1):
            if flag == "S":
                return True
            if flag in _SSH_FLAGS_WITH_ARG:
                skip = i == len(word) - 1  # the argument is the next word
                break
    return False


def ssh_args_refusal(host_vars: Mapping[str, Any]) -> str | None:
    """Why a host's inventory ssh arguments cannot be held to the policy, or None."""
    for name in _SSH_ARG_VARS:
        value = host_vars.get(name)
        if value and ssh_socket_flag(str(value)):
            return (f"refused: {name} gives ssh -S (a control socket: a session over another "
                    "ssh's master checks no host key) or is not valid shell words; remove it")
    return None


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:  # gone, or not ours to read
        return False
    return data.startswith(needle) or b"\0" + needle in data


def _cmdline_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return needle in fh.read()
    except OSError:
        return False


class Workspace:
    """A temporary private_data_dir (0700), removed on exit; ANSIBLE_HOME and the ssh control
    sockets (`cp/`) inside it. Every process started with `env()` carries a marker naming
    this folder, and every ssh master names its socket in its command line (OpenSSH rewrites
    its environment area with the process title), so `end_processes` finds them all, even
    those that left ansible-playbook's process group."""

    def __init__(self, prefix: str = "orchestrator-run-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.path, 0o700)
        (self.path / "ansible-home").mkdir(mode=0o700)
        self.control_dir = self.path / "cp"
        self.control_dir.mkdir(mode=0o700)

    def env(self, known_hosts: Sequence[Path], strict: bool = True) -> dict[str, str]:
        env = ansible_env(known_hosts, strict, self.control_dir)
        env["ANSIBLE_HOME"] = str(self.path / "ansible-home")
        env["ANSIBLE_LOCAL_TEMP"] = str(self.path / "ansible-home" / "tmp")
        env[MARKER] = str(self.path)
        return env

    def extravars(self, known_hosts: Sequence[Path], strict: bool = True) -> dict[str, object]:
        """host_key_vars with this workspace's control sockets."""
        return host_key_vars(known_hosts, strict, self.control_dir)

    def processes(self) -> list[int]:
        """Processes still running with this workspace's marker in their environment, or its
        folder in their command line (Linux /proc)."""
        marker = f"{MARKER}={self.path}\0".encode()
        folder = os.fsencode(f"{self.path}{os.sep}")
        me = os.getpid()
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return []
        return [p for p in pids if p != me and (_environ_has(p, marker)
                                                 or _cmdline_has(p, folder))]

    def close_masters(self, timeout: float = 5.0) -> None:
        """Ask each ssh master of the run to exit (`ssh -O exit` on its socket)."""
        try:
            sockets = [p for p in self.control_dir.iterdir() if p.is_socket()]
        except OSError:
            return
        ssh = shutil.which("ssh")
        if not sockets or ssh is None:
            return
        procs = []
        for sock in sockets:
            try:
                procs.append(subprocess.Popen(
                    [ssh, "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit",
                     "orchestrator.invalid"], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            except OSError:
                continue
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def end_processes(self, grace: float = 3.0) -> list[int]:
        """End whatever the run left: ansible-playbook (ansible-runner kills only its process
        group on a timeout), its workers (each makes its own process group), their ssh
        processes and ssh masters. SIGTERM to each one's whole process group, SIGKILL to what
        is left after `grace` seconds. Returns the pids found."""
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
        self.close_masters()
        self.end_processes()
        shutil.rmtree(self.path, ignore_errors=True)
