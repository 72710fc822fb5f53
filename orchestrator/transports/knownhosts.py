"""known_hosts lookups with file and line numbers (pure; no paramiko).

Understands plain and hashed (`|1|salt|hash`) host names, comma lists, `*`/`?` patterns,
`!` negation and the `@revoked` marker (`@cert-authority` lines are ignored).

Each file is read and indexed once per process and re-read when it changes (its size, inode,
mtime or ctime differ, or it was modified too recently for its timestamps to tell): plain
names are a dictionary lookup, hashed names cost one HMAC per distinct salt, and the lines
with patterns or negations are matched in full. What a host name matched is cached with the
index, so checking one connection's key reads nothing twice.

Trust: a file is read only if it is (or a link leads to) a regular file of at most
MAX_FILE_BYTES, owned by this user or root and writable by nobody else; it is opened
non-blocking, so a FIFO or a device cannot hang or exhaust the run. Anything else is a
HostKeyError naming the file for each connection that would consult it. A missing file
lists nothing. acceptNew creates a missing file with O_EXCL|O_NOFOLLOW, never through a
link.
"""

from __future__ import annotations

import base64
import fnmatch
import hmac
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import HostKeyError
from orchestrator.privatefs import owner_problem

# known_hosts key type -> the host-key algorithms that can prove it
ALGORITHMS = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-dss": ("ssh-dss",),
}

# A file modified less than this long before it was indexed is re-read at every lookup:
# timestamps are coarser than a write, so "same stat" would not prove "same content".
RACY_SECONDS = 2.0
MAX_FILE_BYTES = 64 * 1024 * 1024  # a hashed line is ~200 bytes: 300,000 hosts fit

_write_lock = threading.Lock()
_index_lock = threading.Lock()
_indexes: dict[str, _FileIndex] = {}


@dataclass(frozen=True)
class KnownKey:
    file: str
    line: int
    keytype: str
    key_b64: str
    revoked: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _hashed_field(pattern: str) -> tuple[bytes, bytes] | None:
    """(salt, digest) of a `|1|salt|hash` field; None if it is malformed (it never matches)."""
    try:
        _, one, salt_b64, hash_b64 = pattern.split("|")
        if one != "1":
            return None
        return base64.b64decode(salt_b64), base64.b64decode(hash_b64)
    except (ValueError, TypeError):
        return None


def _one_shot_hmac() -> Callable[[bytes, bytes, str], bytes]:
    """OpenSSL's one-shot HMAC without hmac.digest's Python wrapper (a hashed known_hosts
    costs one HMAC per line and host: the wrapper was a third of it), if it works here."""
    try:
        from _hashlib import hmac_digest  # type: ignore[import-not-found]

        if hmac_digest(b"k", b"m", "sha1") == hmac.digest(b"k", b"m", "sha1"):
            return hmac_digest  # type: ignore[no-any-return]
    except (ImportError, ValueError):
        pass
    return hmac.digest


_hmac = _one_shot_hmac()


def _hmac_sha1(salt: bytes, name: str) -> bytes:
    return _hmac(salt, name.encode(), "sha1")


def _hashed_match(pattern: str, name: str) -> bool:
    parsed = _hashed_field(pattern)
    if parsed is None:
        return False
    salt, want = parsed
    return hmac.compare_digest(_hmac_sha1(salt, name), want)


def host_matches(field: str, name: str) -> bool:
    """Does the comma-separated host field of a known_hosts line name `name`?"""
    if field.startswith("|"):
        return _hashed_match(field, name)
    matched = False
    for pat in field.split(","):
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        if pat == name or ("*" in pat or "?" in pat) and fnmatch.fnmatchcase(name, pat):
            if negate:
                return False
            matched = True
    return matched


class _FileIndex:
    """One known_hosts file, parsed: every key line filed where a lookup finds it fastest."""

    __slots__ = ("error", "exact", "found", "hashed", "patterns", "racy", "stamp")

    def __init__(self, stamp: tuple[int, ...] | None, racy: bool = False,
                 error: str | None = None) -> None:
        self.stamp = stamp  # None: missing or unreadable (it lists nothing)
        self.racy = racy
        self.error = error  # why the file is not trusted (then every lookup raises)
        self.exact: dict[str, list[KnownKey]] = {}  # plain names
        self.hashed: dict[bytes, dict[bytes, list[KnownKey]]] = {}  # salt -> HMAC -> keys
        self.patterns: list[tuple[str, KnownKey]] = []  # lines with * ? or !
        self.found: dict[str, tuple[KnownKey, ...]] = {}  # name -> its keys, once asked

    def add(self, host_field: str, key: KnownKey) -> None:
        if host_field.startswith("|"):
            parsed = _hashed_field(host_field)
            if parsed is not None:
                salt, digest = parsed
                self.hashed.setdefault(salt, {}).setdefault(digest, []).append(key)
            return
        names = host_field.split(",")
        if any(n.startswith("!") or "*" in n or "?" in n for n in names):
            self.patterns.append((host_field, key))
            return
        for n in dict.fromkeys(names):  # a name listed twice on one line is one match
            self.exact.setdefault(n, []).append(key)

    def lookup(self, name: str) -> tuple[KnownKey, ...]:
        hit = self.found.get(name)
        if hit is not None:
            return hit
        keys = list(self.exact.get(name, ()))
        if self.hashed:
            encoded, digest = name.encode(), _hmac
            for hit in [h for salt, table in self.hashed.items()
                        if (h := table.get(digest(salt, encoded, "sha1")))]:
                keys += hit
        keys += [k for host_field, k in self.patterns if host_matches(host_field, name)]
        keys.sort(key=lambda k: k.line)  # file order, as a line-by-line scan finds them
        self.found[name] = result = tuple(keys)
        return result


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _parse(file: str, text: str, stamp: tuple[int, ...], racy: bool) -> _FileIndex:
    index = _FileIndex(stamp, racy)
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        revoked = False
        if parts[0].startswith("@"):
            if parts[0] != "@revoked":
                continue
            revoked = True
            parts = parts[1:]
        if len(parts) < 3:
            continue
        index.add(parts[0], KnownKey(file, n, parts[1], parts[2], revoked))
    return index


def _untrusted(st: os.stat_result) -> str | None:
    """Why a known_hosts file with this (followed) stat is not read, with what to do."""
    if not stat.S_ISREG(st.st_mode):
        return ("is not a regular file; point UserKnownHostsFile or ssh.knownHosts at a "
                "known_hosts file")
    if st.st_size > MAX_FILE_BYTES:
        return (f"is larger than {MAX_FILE_BYTES >> 20} MiB; point UserKnownHostsFile or "
                "ssh.knownHosts at a known_hosts file")
    why = owner_problem(st, allow_root=True)
    if why is None:
        return None
    if "writable" in why:
        return f"{why}, who could add keys to it; chmod go-w it"
    return f"{why}, who could add keys to it; copy the keys you trust into a file of yours"


def _refuse(file: str, why: str) -> HostKeyError:
    return HostKeyError(file, f"known_hosts file {why}")


def _read(fd: int) -> bytes | None:
    """At most MAX_FILE_BYTES (None if there is more: the file grew past the cap)."""
    chunks, total = [], 0
    while total <= MAX_FILE_BYTES:
        chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return None


def _index(file: str) -> _FileIndex:
    """The index of `file`, re-read if the file changed since it was indexed."""
    try:
        st = os.stat(file)
    except OSError:
        return _FileIndex(None)
    stamp = _stamp(st)
    with _index_lock:
        cached = _indexes.get(file)
        if cached is not None and cached.stamp == stamp and not cached.racy:
            return cached
        try:  # non-blocking: a FIFO opens at once (and is refused below)
            fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            _indexes.pop(file, None)
            return _FileIndex(None)
        try:
            st = os.fstat(fd)
            why = _untrusted(st)
            data = None if why else _read(fd)
            if not why and data is None:
                why = _untrusted(os.fstat(fd)) or "grew while it was read; try again"
        except OSError:
            _indexes.pop(file, None)
            return _FileIndex(None)
        finally:
            os.close(fd)
        now = time.time()
        racy = now - st.st_mtime < RACY_SECONDS or now - st.st_ctime < RACY_SECONDS
        if why or data is None:
            index = _FileIndex(_stamp(st), racy, why)
        else:
            index = _parse(file, data.decode("utf-8", errors="replace"), _stamp(st), racy)
        _indexes[file] = index
        return index


def forget(file: str | None = None) -> None:
    """Drop the index of `file` (of every file if None): the next lookup reads it again."""
    with _index_lock:
        if file is None:
            _indexes.clear()
        else:
            _indexes.pop(file, None)


def check_files(files: list[str]) -> None:
    """HostKeyError for the first of `files` that is there but not trusted (see the module
    docstring); for callers that hand the files to another program, such as OpenSSH."""
    for f in files:
        index = _index(f)
        if index.error:
            raise _refuse(f, index.error)


def lookup(files: list[str], name: str) -> list[KnownKey]:
    """Every key listed for `name` (OpenSSH naming: host or [host]:port) across `files`, in
    file and line order. HostKeyError when a file is there but not trusted."""
    found: list[KnownKey] = []
    for f in files:
        index = _index(f)
        if index.error:
            raise _refuse(f, index.error)
        found.extend(index.lookup(name))
    return found


@dataclass(frozen=True)
class Verdict:
    status: str  # known | unknown | changed | revoked
    match: KnownKey | None = None
    others: tuple[KnownKey, ...] = ()


def verify(files: list[str], name: str, keytype: str, key_b64: str) -> Verdict:
    keys = lookup(files, name)
    for k in keys:
        if k.revoked and k.key_b64 == key_b64:
            return Verdict("revoked", k)
    listed = [k for k in keys if not k.revoked]
    for k in listed:
        if k.keytype == keytype and k.key_b64 == key_b64:
            return Verdict("known", k)
    if listed:
        same_type = [k for k in listed if k.keytype == keytype]
        return Verdict("changed", (same_type or listed)[0], tuple(listed))
    return Verdict("unknown")


def known_types(files: list[str], name: str) -> set[str]:
    return {k.keytype for k in lookup(files, name) if not k.revoked}


def append(file: str, name: str, keytype: str, key_b64: str) -> int:
    """Add a key line (file created 0600, folder 0700); returns the new line's number."""
    with _write_lock:
        forget(file)
        try:
            return _append(file, name, keytype, key_b64)
        finally:
            forget(file)


def _append(file: str, name: str, keytype: str, key_b64: str) -> int:
    path = Path(file)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:  # a new file: never created through a link planted in its place
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except FileExistsError:  # there already (or a link to it): judged like a lookup
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _refuse(file, f"cannot be written ({exc.strerror or exc}); fix it or set "
                      "ssh.hostKeys: strict and add the key yourself (ssh-keyscan)") from None
    try:
        why = _untrusted(os.fstat(fd))
        if why:
            raise _refuse(file, why)
        size = os.fstat(fd).st_size
        prefix = b""
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                prefix = b"\n"
            os.lseek(fd, 0, os.SEEK_SET)
            existing = os.read(fd, size + 1).count(b"\n") + (1 if prefix else 0)
        else:
            existing = 0
        os.write(fd, prefix + f"{name} {keytype} {key_b64}\n".encode())
    finally:
        os.close(fd)
    return existing + 1
