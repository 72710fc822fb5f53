"""A real OpenSSH server on a loopback address, for tests (needs /usr/sbin/sshd)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    address: str
    port: int
    dir: Path
    host_key: Path
    client_key: Path
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def host_pub(self) -> str:
        """`keytype base64` of the server's host key."""
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def known_hosts_line(self) -> str:
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{name} {self.host_pub}\n"

    def host_vars(self, **extra: object) -> dict:
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": os.environ.get("USER") or "root",
            "ansible_ssh_private_key_file": str(self.client_key),
            **extra,
        }

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill_all(self) -> None:
        """SIGKILL the listener and every session process it forked (by pid, children first)."""
        if not self.proc or self.proc.poll() is not None:
            return
        pids, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            for st in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = st.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    child = int(st.parent.name)
                    pids.append(child)
                    frontier.append(child)
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.kill()
        self.proc.wait(timeout=10)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-E", str(self.log), "-f", str(self.dir / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # poll for the SSH banner
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-500:] if self.log.exists() else ""
                raise RuntimeError(f"sshd exited: {tail}")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5) as s:
                    if s.recv(8).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("sshd did not become ready")

    def regenerate_host_key(self) -> None:
        self.host_key.unlink()
        Path(str(self.host_key) + ".pub").unlink()
        keygen(self.host_key)


def keygen(path: Path, kind: str = "ed25519") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, capture_output=True
    )


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def make_sshd(tmp: Path, address: str, client_key: Path, extra: str = "") -> Sshd:
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        raise RuntimeError("openssh-server is not installed (apt-get install openssh-server)")
    d = tmp / f"sshd-{address}"
    d.mkdir()
    host_key = d / "host_ed25519"
    keygen(host_key)
    auth = d / "authorized_keys"
    auth.write_text(Path(str(client_key) + ".pub").read_text())
    auth.chmod(0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    port = free_port(address)
    (d / "sshd_config").write_text(
        f"ListenAddress {address}:{port}\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {auth}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "AllowTcpForwarding yes\n"
        "LogLevel DEBUG1\n" + extra
    )
    s = Sshd(address, port, d, host_key, client_key, d / "sshd.log")
    s.start()
    return s
