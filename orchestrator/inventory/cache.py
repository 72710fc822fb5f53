"""A private cache of what ansible-core parsed from a static inventory file.

Reading an inventory through Ansible costs most of a light command's start (importing
Ansible's inventory, config and templating). A static file parses the same way every time,
so its result is kept as JSON under the state folder, keyed by the file's bytes and by the
names, sizes and times of everything in the `group_vars/` and `host_vars/` folders beside
it, the orchestrator's and ansible-core's versions. Dynamic sources (inventory scripts,
plugin configurations, directories) and files holding vaulted values are never cached.
The cache file is 0600 in a 0700 folder: it holds the same variables as the inventory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from orchestrator import __version__

FORMAT = 1


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


def load(cache_dir: Path, key: str) -> dict[str, Any] | None:
    path = cache_dir / f"inventory-{key[:32]}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


def save(cache_dir: Path, key: str, data: dict[str, Any]) -> None:
    """Atomic write (temp file 0600, rename); a cache that cannot be written is skipped."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".inventory-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**data, "key": key}, fh)
            os.replace(tmp, cache_dir / f"inventory-{key[:32]}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError):  # unwritable, or a value JSON cannot hold
        return
