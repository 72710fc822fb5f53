"""A private cache of what ansible-core parsed from a static inventory file.

Reading an inventory through Ansible costs most of a light command's start (importing
Ansible's inventory, config and templating). A static file parses the same way every time,
so its result is kept as JSON under the state folder, keyed by the file's bytes and by the
names, sizes and times of everything in the `group_vars/` and `host_vars/` folders beside
it, the orchestrator's and ansible-core's versions. Dynamic sources (inventory scripts,
plugin configurations, directories) and files holding vaulted values are never cached.
What is cached is the parse before any Jinja is rendered (inventory/render.py renders after
loading), so no lookup or vault result is ever written here.

Trust: an entry is read only from a folder that is this user's, writable by nobody else and
not a link, and only when the entry itself is such a file (privatefs: descriptor-relative,
O_NOFOLLOW, fstat). Another user who can write the state folder therefore cannot plant an
entry (say, a ProxyCommand); an entry that fails the check is removed and the inventory
parsed again, and a folder that fails it is not used at all (one warning). We check owners
rather than sign entries: an HMAC key kept beside the database would need exactly the same
owner checks to be worth anything, and would add a secret to lose.

One entry per inventory file (named after its resolved path); the entry of a changed file
is replaced, and each write also removes entries whose file is gone or changed since, so a
rotated password does not linger in an old entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.errors import StateError
from orchestrator.privatefs import open_trusted_dir, private_dir, read_trusted
from orchestrator.textsafe import clean

FORMAT = 2
PREFIX = "inventory-"
TEMP_MAX_AGE = 3600.0  # seconds: a temporary file older than this was left by a crash
_warned: set[str] = set()


def _warn(message: str) -> None:
    """One line on stderr, once per process and message: the cache is an optimisation,
    never a reason to fail, but a planted or exposed entry is something to know about."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {clean(message)}", file=sys.stderr)


def _vars_files(source: Path) -> list[Path]:
    files: list[Path] = []
    for folder in ("group_vars", "host_vars"):
        base = source.parent / folder
        if base.is_dir():
            files.extend(sorted(base.rglob("*")))
    return files


def _vaulted(data: bytes) -> bool:
    return b"$ANSIBLE_VAULT" in data or b"!vault" in data


def cacheable(source: Path) -> bool:
    """A static file: not executable, not a plugin configuration, no vaulted value in it or
    in its vars folders, every vars file readable."""
    if not source.is_file() or os.access(source, os.X_OK):
        return False
    try:
        text = source.read_bytes()
        if _vaulted(text) or any(line.startswith(b"plugin:") for line in text.splitlines()):
            return False
        return not any(_vaulted(p.read_bytes()) for p in _vars_files(source) if p.is_file())
    except OSError:
        return False


def cache_key(source: Path) -> str | None:
    """Everything Ansible reads for a static file: the file and its vars folders. None when
    something cannot be read (a broken link, a vanished file): then nothing is cached."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ansible_version = version("ansible-core")
    except PackageNotFoundError:
        ansible_version = "?"
    h = hashlib.sha256()
    try:
        h.update(f"{FORMAT}:{__version__}:{ansible_version}:{source.resolve()}\0".encode())
        h.update(source.read_bytes())
        for path in _vars_files(source):
            st = path.stat()
            h.update(f"\0{path.relative_to(source.parent)}:{st.st_size}:{st.st_mtime_ns}".encode())
    except OSError:
        return None
    return h.hexdigest()


def entry_name(source: Path) -> str:
    """The one cache entry of an inventory file, named after its resolved path."""
    return f"{PREFIX}{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:32]}.json"


def _open_dir(cache_dir: Path) -> int | None:
    try:
        return open_trusted_dir(cache_dir)
    except FileNotFoundError:
        return None
    except StateError as exc:
        _warn(f"{exc.message}; the inventory cache is not used")
        return None
    except OSError as exc:
        _warn(f"{cache_dir}: cannot open the inventory cache ({exc.strerror or exc}); "
              "it is not used")
        return None


def _unlink(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _read_entry(dir_fd: int, name: str, where: Path) -> dict[str, Any] | None:
    """A trusted entry's JSON; an untrusted or unreadable one is removed. None if absent."""
    try:
        data = json.loads(read_trusted(dir_fd, name, where))
    except FileNotFoundError:
        return None
    except StateError as exc:
        _warn(f"{exc.message}; removed, the inventory is parsed again")
        _unlink(dir_fd, name)
        return None
    except (OSError, ValueError):
        _unlink(dir_fd, name)
        return None
    if not isinstance(data, dict):
        _unlink(dir_fd, name)
        return None
    return data


def load(cache_dir: Path, source: Path, key: str) -> dict[str, Any] | None:
    """The cached parse of `source` if its entry is trusted and current; a stale entry (the
    file or its vars changed) is removed."""
    dir_fd = _open_dir(cache_dir)
    if dir_fd is None:
        return None
    try:
        name = entry_name(source)
        data = _read_entry(dir_fd, name, cache_dir / name)
        if data is None:
            return None
        if data.get("key") != key or data.get("format") != FORMAT:
            _unlink(dir_fd, name)
            return None
        return data
    finally:
        os.close(dir_fd)


def save(cache_dir: Path, source: Path, key: str, data: dict[str, Any]) -> None:
    """Atomic write (temp file 0600 in the trusted folder, rename); stale entries go. A cache
    that cannot be written, or a folder that is not trusted, is skipped."""
    try:
        body = json.dumps({**data, "key": key, "format": FORMAT,
                           "source": str(source.resolve())}).encode()
    except (TypeError, ValueError):  # a value JSON cannot hold
        return
    try:
        private_dir(cache_dir)
    except OSError:
        return
    dir_fd = _open_dir(cache_dir)
    if dir_fd is None:
        return
    try:
        name = entry_name(source)
        tmp = f".{PREFIX}{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dir_fd)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            _unlink(dir_fd, tmp)
            return
        _sweep(dir_fd, cache_dir, keep=name)
    finally:
        os.close(dir_fd)


def _sweep(dir_fd: int, cache_dir: Path, keep: str) -> None:
    """Remove entries whose inventory file is gone, changed or no longer cacheable, entries
    of an older format, and temporary files a crash left behind."""
    now = time.time()
    try:
        names = [e.name for e in os.scandir(dir_fd)]
    except OSError:
        return
    for name in names:
        if name.startswith(f".{PREFIX}") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if now - st.st_mtime > TEMP_MAX_AGE:
                    _unlink(dir_fd, name)
            continue
        if name == keep or not (name.startswith(PREFIX) and name.endswith(".json")):
            continue
        data = _read_entry(dir_fd, name, cache_dir / name)
        if data is None:
            continue
        source = data.get("source")
        current = None
        if data.get("format") == FORMAT and isinstance(source, str):
            path = Path(source)
            if cacheable(path) and entry_name(path) == name:
                current = cache_key(path)
        if current is None or current != data.get("key"):
            _unlink(dir_fd, name)
