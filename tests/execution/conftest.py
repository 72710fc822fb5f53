"""Helpers for the execution tests: a local OpenSSH server (tests/transports/sshd_server.py)
and a look at which ssh processes still hold a connection to a server."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "transports"))


def _tcp_inodes(address: str, port: int) -> set[str]:
    """Socket inodes of established IPv4 connections to address:port (this network
    namespace's /proc/net/tcp)."""
    want = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == want and fields[3] == "01":  # remote address, TCP_ESTABLISHED
            inodes.add(fields[9])
    return inodes


def ssh_clients_of(address: str, port: int) -> list[int]:
    """Processes named ssh with a connection open to address:port (a run's masters)."""
    inodes = {f"socket:[{i}]" for i in _tcp_inodes(address, port)}
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "ssh":
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def ssh_clients() -> Callable[[str, int], list[int]]:
    return ssh_clients_of
