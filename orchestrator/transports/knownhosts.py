"""known_hosts lookups with file and line numbers (pure; no paramiko).

Understands plain and hashed (`|1|salt|hash`) host names, comma lists, `*`/`?` patterns,
`!` negation and the `@revoked` marker (`@cert-authority` lines are ignored).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

# known_hosts key type -> the host-key algorithms that can prove it
ALGORITHMS = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-dss": ("ssh-dss",),
}

_write_lock = threading.Lock()


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


def _hashed_match(pattern: str, name: str) -> bool:
    try:
        _, one, salt_b64, hash_b64 = pattern.split("|")
        if one != "1":
            return False
        salt = base64.b64decode(salt_b64)
        want = base64.b64decode(hash_b64)
    except (ValueError, TypeError):
        return False
    got = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


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


def lookup(files: list[str], name: str) -> list[KnownKey]:
    """Every key listed for `name` (OpenSSH naming: host or [host]:port) across `files`."""
    found: list[KnownKey] = []
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError:
            continue
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
            if host_matches(parts[0], name):
                found.append(KnownKey(f, n, parts[1], parts[2], revoked))
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
        path = Path(file)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
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
