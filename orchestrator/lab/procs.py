"""Start, check and stop the lab's background processes by remembered PID (never by name).

A PID is trusted only together with its start time (field 22 of /proc/PID/stat), so a PID reused
by an unrelated process after a crash is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> dict:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=cwd,
        )
    return {"pid": proc.pid, "start": start_time(proc.pid), "argv0": argv[0]}


def alive(rec: dict | None) -> bool:
    if not rec:
        return False
    st = start_time(rec["pid"])
    return st is not None and st == rec.get("start")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(recs: list[dict], timeout: float = 4.0) -> list[int]:
    """SIGKILL each live process (unshare --kill-child takes its namespace along); wait for all.

    Returns the PIDs still alive after the timeout (empty when all are gone)."""
    live = [r for r in recs if alive(r)]
    for rec in live:
        try:
            os.killpg(rec["pid"], signal.SIGKILL)  # its own session/process group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(rec["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    pending = list(live)
    while pending and time.monotonic() < deadline:
        for rec in pending:
            _reap(rec["pid"])
        pending = [r for r in pending if alive(r)]
        if pending:
            time.sleep(0.02)
    return [r["pid"] for r in pending]


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               fail: Callable[[], str | None] | None = None) -> None:
    """Poll check() until it is true; raise TimeoutError naming `what`."""
    from orchestrator.lab.errors import LabStartError

    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if check():
            return
        if fail is not None:
            reason = fail()
            if reason:
                raise LabStartError(f"{what} failed to start: {reason}")
        if time.monotonic() > deadline:
            raise LabStartError(f"{what} not ready after {timeout:.0f} s; see the logs under "
                                ".orchestrator/lab/")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def ssh_banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def https_ok(address: str, port: int, cafile: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(cafile))
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            with ctx.wrap_socket(sock, server_hostname=address) as tls:
                tls.sendall(f"GET /redfish/v1 HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
                return tls.recv(16).startswith(b"HTTP/1.")
    except (OSError, ssl.SSLError):
        return False


def port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def listeners_on(prefix: str) -> list[str]:
    """Listening TCP sockets whose local IPv4 address starts with prefix (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        local, state = parts[1], parts[3]
        if state != "0A":
            continue
        hexaddr, hexport = local.split(":")
        octets = [str(int(hexaddr[i:i + 2], 16)) for i in (6, 4, 2, 0)]
        addr = ".".join(octets)
        if addr.startswith(prefix):
            found.append(f"{addr}:{int(hexport, 16)}")
    return found


def mounts_under(path: Path) -> list[str]:
    """Mount points below path visible in any mount namespace of a live process would be better;
    this checks the machine's own namespace and every lab namespace is gone with its processes."""
    text = Path("/proc/self/mountinfo").read_text()
    prefix = str(path)
    return [line.split()[4] for line in text.splitlines() if line.split()[4].startswith(prefix)]
