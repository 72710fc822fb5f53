"""known_hosts files are read only when they are regular files of a sane size that only this
user (or root) can write; a FIFO or a device cannot hang or exhaust a run; acceptNew never
creates a file through a link (issue 8)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import HostKeyError
from orchestrator.transports import TransportSettings, get_transport, knownhosts

NOBODY = 65534
LINE = "web-01 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"


@pytest.fixture(autouse=True)
def _fresh_indexes():
    knownhosts.forget()
    yield
    knownhosts.forget()


LOOKUP = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from orchestrator.errors import HostKeyError
from orchestrator.transports import knownhosts
try:
    knownhosts.lookup([sys.argv[1]], "web-01")
except HostKeyError as exc:
    print("refused:", exc)
else:
    print("read")
"""


def lookup_elsewhere(file: str) -> tuple[str, float]:
    """A lookup in a child process with 1 GiB of address space and 20 s: on the old code a
    FIFO hung and /dev/zero ate all memory, which must not take the test run down too."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", LOOKUP, file], capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "timed out", time.monotonic() - started
    return (proc.stdout.strip() or proc.stderr.strip().splitlines()[-1],
            time.monotonic() - started)


def test_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out, seconds = lookup_elsewhere(str(fifo))
    assert out.startswith(f"refused: {fifo}: known_hosts file is not a regular file"), out
    assert seconds < 10


def test_dev_zero_is_refused() -> None:
    out, _ = lookup_elsewhere("/dev/zero")
    assert out.startswith("refused: /dev/zero: known_hosts file is not a regular file"), out


def test_oversize_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "known_hosts"
    big.write_text(LINE)
    os.truncate(big, knownhosts.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(HostKeyError, match=r"known_hosts file is larger than 64 MiB"):
        knownhosts.lookup([str(big)], "web-01")


def test_file_at_the_cap_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(LINE)
    monkeypatch.setattr(knownhosts, "MAX_FILE_BYTES", len(LINE))
    assert [k.line for k in knownhosts.lookup([str(kh)], "web-01")] == [1]
    kh.write_text(LINE + LINE)
    with pytest.raises(HostKeyError, match="larger than"):
        knownhosts.lookup([str(kh)], "web-01")


@pytest.mark.parametrize("mode", [0o664, 0o646], ids=["group", "others"])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(LINE)
    kh.chmod(mode)
    with pytest.raises(HostKeyError) as info:
        knownhosts.verify([str(kh)], "web-01", "ssh-ed25519", LINE.split()[2])
    text = str(info.value)
    assert text.startswith(f"{kh}: known_hosts file is writable by group or others")
    assert "chmod go-w" in text and "\n" not in text
    kh.chmod(0o644)  # the fix is seen at once (chmod changes ctime)
    assert knownhosts.verify([str(kh)], "web-01", "ssh-ed25519", LINE.split()[2]).status \
        == "known"


def test_another_users_file_is_refused(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(LINE)
    os.chown(kh, NOBODY, NOBODY)
    with pytest.raises(HostKeyError, match=rf"owned by uid {NOBODY}, not by this user"):
        knownhosts.lookup([str(kh)], "web-01")
    os.chown(kh, 0, 0)  # a system file of root's is trusted by every user
    knownhosts.forget()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert len(knownhosts.lookup([str(kh)], "web-01")) == 1


def test_link_to_a_trusted_file_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_text(LINE)
    link = tmp_path / "known_hosts"
    link.symlink_to(real)
    assert len(knownhosts.lookup([str(link)], "web-01")) == 1


def test_missing_file_lists_nothing(tmp_path: Path) -> None:
    assert knownhosts.lookup([str(tmp_path / "absent")], "web-01") == []


def test_check_files_names_the_untrusted_one(tmp_path: Path) -> None:
    good = tmp_path / "known_hosts"
    good.write_text(LINE)
    knownhosts.check_files([str(good), str(tmp_path / "absent")])
    with pytest.raises(HostKeyError, match="^/dev/zero: known_hosts file is not a regular"):
        knownhosts.check_files([str(good), "/dev/zero"])


def test_accept_new_never_creates_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim" / "authorized_keys"
    victim.parent.mkdir()
    kh = tmp_path / "known_hosts"
    kh.symlink_to(victim)
    with pytest.raises(HostKeyError, match=r"known_hosts file cannot be written"):
        knownhosts.append(str(kh), "web-01", "ssh-ed25519", "AAAA")
    assert not victim.exists()


def test_accept_new_refuses_an_untrusted_file(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(LINE)
    kh.chmod(0o666)
    with pytest.raises(HostKeyError, match="writable by group or others"):
        knownhosts.append(str(kh), "web-02", "ssh-ed25519", "AAAA")
    assert kh.read_text() == LINE
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(HostKeyError, match="not a regular file"):
        knownhosts.append(str(fifo), "web-02", "ssh-ed25519", "AAAA")


def test_accept_new_creates_a_private_file(tmp_path: Path) -> None:
    kh = tmp_path / "ssh" / "known_hosts"
    assert knownhosts.append(str(kh), "web-01", "ssh-ed25519", "AAAA") == 1
    assert kh.stat().st_mode & 0o777 == 0o600
    assert knownhosts.append(str(kh), "web-02", "ssh-ed25519", "BBBB") == 2


@contextlib.contextmanager
def unblocked_after(fifo: Path, seconds: float) -> Iterator[None]:
    """If a reader blocks on `fifo` (the old code did), give it an end of file after
    `seconds`, so that the test fails instead of hanging."""
    done = threading.Event()

    def writer() -> None:
        if done.wait(seconds):
            return
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader yet
                done.wait(0.1)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def test_audit_connection_with_a_fifo_fails_fast(tmp_path: Path) -> None:
    """The reviewer's case: the inventory names a FIFO as UserKnownHostsFile. The connection
    fails with the file named, before any network traffic (port 9: nothing listens)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    host_vars = {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "root",
                 "ansible_ssh_common_args": f"-o UserKnownHostsFile={fifo}"}
    t = get_transport("ssh", host_vars, TransportSettings(known_hosts=kh, connect_timeout=2),
                      host="web-01")
    started = time.monotonic()
    try:
        with unblocked_after(fifo, 10), \
                pytest.raises(HostKeyError, match=rf"{fifo}: known_hosts file is not a regular"):
            t.connect()
    finally:
        t.close()
    assert time.monotonic() - started < 5
