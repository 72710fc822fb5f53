"""Folders and files that only this user can have written (the state folder, the cache).

`private_dir` creates a folder and every missing parent 0700, so `.orchestrator/` is private
whichever command creates it first. `open_trusted_dir` and `read_trusted` check what is
there before anything is read from it: a folder or file must be this user's, writable by
nobody else, and not a symbolic link. Files are opened relative to the folder's descriptor
with O_NOFOLLOW and checked with fstat, so a folder swapped or a link planted between the
check and the read is caught too.

The state database is opened by SQLite by name, not through our descriptor, so for it
`check_entry` (lstat relative to the checked folder) and `resolve_trusted` (every folder
on the way must be root's or this user's and writable by nobody else unless sticky, as
OpenSSH asks of the folders above authorized_keys; every link root's or this user's)
make sure nobody else can swap what the name leads to. Root is trusted where `allow_root`
says so: it can write anything anyway. A leaf module: the standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
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


def owner_problem(st: os.stat_result, allow_root: bool = False) -> str | None:
    """Why a file or folder with this stat could have been written by another user."""
    me = os.geteuid()
    if st.st_uid != me and not (allow_root and st.st_uid == 0):
        also = " or root" if allow_root and me != 0 else ""
        return f"is owned by uid {st.st_uid}, not by this user (uid {me}){also}"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _problem(st: os.stat_result, kind: str, allow_root: bool = False) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if kind == "folder" and not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return owner_problem(st, allow_root)


Fix = Callable[[str], str] | None  # why it is refused -> what to do about it


def _refused(path: Path | str, why: str, kind: str, fix: Fix = None) -> StateError:
    todo = fix(why) if fix else "chmod go-w it" if "writable" in why else "remove it"
    return StateError(f"{path}: {kind} {why}; not trusted ({todo})")


def open_trusted_dir(path: Path | str, *, allow_root: bool = False, kind: str = "folder",
                     fix: Fix = None) -> int:
    """A descriptor of folder `path`, which must be this user's (or root's, if
    `allow_root`), not writable by group or others, and not a symbolic link. StateError
    (`kind` and `fix` word it) otherwise; FileNotFoundError when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise _refused(path, "is a symbolic link", kind, fix) from None
        raise
    why = _problem(os.fstat(fd), "folder", allow_root)
    if why:
        os.close(fd)
        raise _refused(path, why, kind, fix)
    return fd


def check_entry(dir_fd: int, name: str, where: Path | str, *, allow_root: bool = False,
                kind: str = "file", fix: Fix = None) -> os.stat_result | None:
    """The lstat of `name` in the trusted folder `dir_fd`, None when absent. StateError when
    it is a link, not a regular file, another user's or writable by group or others."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    why = _problem(st, "file", allow_root)
    if why:
        raise _refused(where, why, kind, fix)
    return st


def resolve_trusted(path: Path | str, *, fix: str, judge_last: bool = False) -> Path:
    """`path` resolved (links followed), checking on the way that nobody else can change
    where it leads: every folder passed through (`path` itself only if `judge_last`: else
    the caller judges it) must be root's or this user's and not writable by group or
    others unless it is sticky (then nobody else can rename what is ours in it), and every
    link root's or this user's. StateError naming the first that is not; OSError when
    something is missing."""
    me = os.geteuid()

    def judge(at: Path, st: os.stat_result) -> None:
        if st.st_uid not in (0, me):
            raise StateError(f"{at} (on the way to {path}): owned by uid {st.st_uid}, not by "
                             f"root or this user (uid {me}), who could change where it "
                             f"leads; not trusted ({fix})")
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise StateError(f"{at} (on the way to {path}): writable by group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}), who could change where it "
                             f"leads; not trusted (chmod go-w or +t it, or {fix})")

    here = Path("/")
    judge(here, os.stat(here))
    todo = list(reversed(Path(os.path.abspath(path)).parts[1:]))
    hops = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            here = here.parent
            continue
        nxt = here / part
        st = os.lstat(nxt)
        if todo or judge_last or stat.S_ISLNK(st.st_mode):
            judge(nxt, st)
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
            target = os.readlink(nxt)
            if target.startswith("/"):
                here = Path("/")
            todo.extend(reversed(Path(target).parts[1 if target.startswith("/") else 0:]))
        else:
            here = nxt
    return here


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
