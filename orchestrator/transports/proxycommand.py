"""A ProxyCommand as a socket: the command's stdin and stdout are one end of a socket pair.

paramiko reads the other end like any TCP socket, so a proxy that exits is an end of file at
once (paramiko's own ProxyCommand spins until its timeout), and what the proxy said on stderr
(kept in an unnamed temporary file, so it can never block the proxy) explains the failure.
The proxy runs in its own session; closing ends its whole process group.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time

from orchestrator.errors import TransportError
from orchestrator.textsafe import clean

STDERR_TAIL = 4096


class ProxyCommand:
    """Start `command` (split like a shell would, not run by one) for inventory host `host`."""

    def __init__(self, command: str, host: str) -> None:
        self.host = host
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise TransportError(host, f"ProxyCommand is not valid shell words: {exc}") from None
        if not argv:
            raise TransportError(host, "ProxyCommand is empty")
        self.program = argv[0]
        mine, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                argv, stdin=theirs, stdout=theirs, stderr=self._stderr, close_fds=True,
                start_new_session=True)
        except OSError as exc:
            mine.close()
            self._stderr.close()
            raise TransportError(host, f"cannot start ProxyCommand {clean(self.program)!r}: "
                                       f"{exc.strerror or exc}") from None
        finally:
            theirs.close()
        self.sock = mine

    def exit_status(self, wait: float = 0.0) -> int | None:
        """How the proxy ended (negative: killed by that signal), waiting up to `wait` seconds;
        None while it runs. Does not reap it, so its process group stays ours to end."""
        deadline = time.monotonic() + wait
        while True:
            try:
                info = os.waitid(os.P_PID, self.process.pid,
                                 os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped already
                return self.process.returncode
            if info is not None:
                return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def stderr_line(self) -> str:
        """The proxy's last non-blank line on stderr (escaped, at most 200 characters)."""
        try:
            size = os.fstat(self._stderr.fileno()).st_size
            self._stderr.seek(max(0, size - STDERR_TAIL))
            tail = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
        return clean(lines[-1])[:200] if lines else ""

    def failure(self) -> str | None:
        """Why the connection failed if the proxy is the reason (it exited), else None."""
        status = self.exit_status(wait=0.5)
        if status is None:
            return None
        how = f"exited with status {status}" if status >= 0 else f"was killed by signal {-status}"
        said = self.stderr_line()
        return (f"ProxyCommand {clean(self.program)!r} {how} before the SSH connection was "
                f"set up" + (f": {said}" if said else ""))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.process.returncode is None:  # not reaped: its pid still names its group
            _killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            # what the proxy left behind in its group (while a member lives, the group's id
            # cannot be given to another process)
            _killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._stderr.close()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
