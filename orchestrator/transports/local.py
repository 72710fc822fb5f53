"""Local transport (ansible_connection=local): the controller itself, through /bin/sh."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import TransportError
from orchestrator.quoting import posix_command
from orchestrator.transports.base import (
    DEFAULT_COMMAND_TIMEOUT,
    Identity,
    RemoteFileError,
    Result,
)


class LocalTransport:
    shell = "sh"

    def __init__(self, name: str = "localhost") -> None:
        self.identity = Identity(name, "localhost", 0, os.environ.get("USER"))

    def connect(self) -> None:
        """Nothing to open: commands run on the controller."""

    def run(self, command: str, *args: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> Result:
        line = posix_command(command, args)
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", line],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # so a timeout can end the whole process group
            )
        except OSError as exc:
            raise TransportError(self.identity.name, f"cannot run /bin/sh: {exc}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TransportError(
                self.identity.name, f"command timed out after {timeout:g}s"
            ) from None
        return Result(proc.returncode, out, err)

    def read_file(self, path: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise RemoteFileError(
                self.identity.name, f"cannot read {path}: {exc.strerror}"
            ) from None

    def close(self) -> None:
        return None


def create(name: str, host_vars: Mapping[str, Any], settings: Any) -> LocalTransport:
    return LocalTransport(name)
