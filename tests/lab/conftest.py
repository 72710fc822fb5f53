"""Helpers of the lab tests: serve a (tampered) copy of the lab repository, reboot a host."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def repo_copy(lab_fleet, tmp_path):
    """copy(): a copy of the lab's repository folder (to tamper with), served on the repository
    address at another port; returns (folder, port). Servers stop when the test ends."""
    servers: list[ThreadingHTTPServer] = []
    address, _ = lab_fleet.repo_address

    def copy() -> tuple[Path, int]:
        folder = tmp_path / f"repo{len(servers)}"
        shutil.copytree(lab_fleet.root / "repo", folder)
        handler = functools.partial(_Quiet, directory=str(folder))
        server = ThreadingHTTPServer((address, 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return folder, server.server_address[1]

    yield copy
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def lab_reboot(lab_fleet):
    """reboot(host): reboot through the host's own `reboot`, wait for a new boot_id."""
    return functools.partial(_reboot, lab_fleet)


def _reboot(lab, host: str, timeout: float = 30) -> None:
    before = lab.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    lab.ssh(host, "reboot")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = lab.ssh(host, "cat /proc/sys/kernel/random/boot_id", check=False, timeout=10)
        if proc.returncode == 0 and proc.stdout.strip() not in ("", before):
            return
        time.sleep(0.3)
    raise AssertionError(f"{host} did not come back from reboot within {timeout} s")
