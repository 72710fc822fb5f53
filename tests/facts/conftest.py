from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "transports"))

from sshd_server import Sshd, keygen, make_sshd  # noqa: E402


@pytest.fixture
def sshd_host(tmp_path: Path):
    key = tmp_path / "id_ed25519"
    keygen(key)
    s: Sshd = make_sshd(tmp_path, "127.0.0.5", key)
    yield s
    s.stop()
