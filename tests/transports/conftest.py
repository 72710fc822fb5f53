from __future__ import annotations

from pathlib import Path

import pytest
from sshd_server import Sshd, keygen, make_sshd


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("client") / "id_ed25519"
    keygen(key)
    return key


@pytest.fixture
def sshd_factory(tmp_path: Path, client_key: Path):
    started: list[Sshd] = []

    def make(address: str = "127.0.0.2", extra: str = "") -> Sshd:
        s = make_sshd(tmp_path, address, client_key, extra)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def sshd(sshd_factory) -> Sshd:
    return sshd_factory("127.0.0.2")
