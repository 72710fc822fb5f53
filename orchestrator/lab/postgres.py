"""A throwaway PostgreSQL cluster on loopback, for the tests and the demo.

Debian's server binaries (`/usr/lib/postgresql/N/bin`), a fresh data folder, a free port on
127.0.0.1, password authentication (scram-sha-256) for TCP, fsync off (it is thrown away).
PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` system user
(Debian's package creates it), else as this user.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from orchestrator.lab.errors import LabError


def server_bin() -> Path:
    """The newest installed server's bin folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise LabError("no PostgreSQL server installed; apt-get install postgresql "
                       "(make test installs it)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """start() -> a URL of a database; database(name) -> a URL of a new database; stop()."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="orch-pg-", dir=base))
        self.user = "orchestrator"
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.bin = server_bin()
        self._as: dict[str, int] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid}
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)

    def _run(self, *args: str) -> None:
        done = subprocess.run(list(args), capture_output=True, text=True, cwd=self.base,
                              timeout=120, **self._as)  # type: ignore[call-overload]
        if done.returncode != 0:
            why = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise LabError(f"{args[0]}: {why[-1] if why else done.returncode}")

    def start(self) -> str:
        data = self.base / "data"
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", self.user,
                  f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                  "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        self.port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.base / "server.log"), "start")
        return self.database("orchestrator")

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{db}"

    def database(self, name: str) -> str:
        """Create database `name` (letters, digits, _) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise LabError(f"{name!r}: not a plain database name")
        self._run(str(self.bin / "psql"), "-h", str(self.base), "-p", str(self.port),
                  "-U", self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
                  f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        data = self.base / "data"
        if data.exists():
            subprocess.run([str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60, cwd=self.base,
                           **self._as)  # type: ignore[call-overload]
        shutil.rmtree(self.base, ignore_errors=True)
