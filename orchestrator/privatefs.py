"""Folders and files that only this user can have written (the state folder, the cache).

`private_dir` creates a folder and every missing parent 0700, so `.orchestrator/` is private
whichever command creates it first. `open_trusted_dir` and `read_trusted` check what is
there before anything is read from it: a folder or file must be this user's, writable by
nobody else, and not a symbolic link. Files are opened relative to the folder's descriptor
with O_NOFOLLOW and checked with fstat, so a folder swapped or a link planted between the
check and the read is caught too. A leaf module: the standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from orchestrator.errors import StateError

MAX_READ = 64 * 1024 * 1024  # a cache entry larger than this is not ours


def private_dir(path: Path | str) -> Path:
    """Create `path` and its missing parents, each 0700 (the umask can only narrow that).
    Folders that already exist are left as they are. Raises OSError."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:  # created meanwhile by another process: judged when opened
            continue
    return path


def _problem(st: os.stat_result, kind: str) -> str | None:
    if kind == "folder" and not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _refused(path: Path | str, why: str, kind: str) -> StateError:
    fix = "chmod go-w it" if "writable" in why else "remove it"
    return StateError(f"{path}: {kind} {why}; not trusted ({fix})")


def open_trusted_dir(path: Path | str) -> int:
    """A descriptor of folder `path`, which must be this user's, not writable by group or
    others, and not a symbolic link. StateError otherwise; FileNotFoundError when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise _refused(path, "is a symbolic link", "folder") from None
        raise
    why = _problem(os.fstat(fd), "folder")
    if why:
        os.close(fd)
        raise _refused(path, why, "folder")
    return fd


def read_trusted(dir_fd: int, name: str, where: Path | str) -> bytes:
    """The bytes of file `name` in the trusted folder `dir_fd`: it must be a regular file of
    this user's, not writable by group or others, not a link. StateError otherwise;
    FileNotFoundError when absent."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(where, "is a symbolic link", "file") from None
        raise
    try:
        st = os.fstat(fd)
        why = _problem(st, "file") or ("is too large" if st.st_size > MAX_READ else None)
        if why:
            raise _refused(where, why, "file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
