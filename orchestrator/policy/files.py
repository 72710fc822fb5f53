"""Find and read the policy files under a policy folder.

Symbolic links are followed (the folder itself, folders and files inside it); each real
folder is walked once and each real file read once, so a link back to an ancestor ends the
walk instead of looping. Hidden entries (a name starting with ".") are skipped. Anything
that could silently hide a policy is a problem: a broken link, a link loop, a folder that
cannot be listed, a `*.yml`/`*.yaml` that is not a regular file, cannot be read, is too
large or is not UTF-8.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import PolicyError

SUFFIXES = (".yml", ".yaml")
MAX_FILE_BYTES = 8 * 1024 * 1024  # a 10,000-package baseline is ~300 KB


@dataclass
class PolicyFiles:
    files: list[Path] = field(default_factory=list)  # as reached from the root, in order
    problems: list[str] = field(default_factory=list)  # one line each


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _link_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"{path}: symbolic link loop; fix the link or remove it"
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return (f"{path}: broken symbolic link (to {target}); restore its target or remove "
                "the link")
    return f"{path}: cannot follow symbolic link (to {target}): {_why(exc)}"


def find_policy_files(root: Path) -> PolicyFiles:
    """Every policy file under `root` (or `root` itself when it is a file).
    Raises PolicyError when `root` is missing; other problems are listed in the result."""
    found = PolicyFiles()
    try:
        st = os.stat(root)
    except OSError as exc:
        if os.path.islink(root):
            raise PolicyError([_link_problem(root, exc)]) from None
        raise PolicyError([f"{root}: policy directory not found; set 'policies' in "
                           "orchestrator.yml or pass --policies"]) from None
    if stat.S_ISREG(st.st_mode):
        found.files.append(root)
    elif stat.S_ISDIR(st.st_mode):
        _walk(root, st, found, set(), set())
    else:
        raise PolicyError([f"{root}: not a folder or a regular file; point 'policies' at the "
                           "policy folder"])
    return found


def _walk(root: Path, st: os.stat_result, found: PolicyFiles,
          folders: set[tuple[int, int]], files: set[tuple[int, int]]) -> None:
    """Depth-first, names in sorted order, with an explicit stack (a policy folder may be
    nested deeper than Python's recursion limit)."""
    stack: list[tuple[Path, Iterator[str]]] = []

    def enter(folder: Path, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key in folders:  # reached again through a link (or a loop): already read
            return
        folders.add(key)
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            found.problems.append(f"{folder}: cannot list the folder: {_why(exc)}; make it "
                                  "readable by this user or move it out of the policy folder")
            return
        stack.append((folder, iter(names)))

    enter(root, st)
    while stack:
        folder, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        if name.startswith("."):
            continue
        path = folder / name
        try:
            st = os.stat(path)
        except OSError as exc:
            if os.path.islink(path):
                found.problems.append(_link_problem(path, exc))
            else:
                found.problems.append(f"{path}: cannot read: {_why(exc)}; make it readable "
                                      "by this user or remove it")
            continue
        if stat.S_ISDIR(st.st_mode):
            enter(path, st)
        elif name.endswith(SUFFIXES):
            if not stat.S_ISREG(st.st_mode):
                found.problems.append(f"{path}: not a regular file; policy files must be "
                                      "plain files (or links to them)")
            elif (st.st_dev, st.st_ino) not in files:
                files.add((st.st_dev, st.st_ino))
                found.files.append(path)


class UnreadableFile(Exception):
    """A policy file cannot be read as text; `line` is the whole `file:line:col: ...`."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def read_policy_text(path: Path) -> str:
    """The file's text (UTF-8, at most MAX_FILE_BYTES); raises UnreadableFile."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UnreadableFile(f"{path}:1:1: cannot read: {_why(exc)}; make it readable by "
                             "this user or remove it") from None
    return policy_text(str(path), data)


def policy_text(name: str, data: bytes) -> str:
    """A policy file's bytes as text (UTF-8, at most MAX_FILE_BYTES); raises UnreadableFile
    naming `name`."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"{name}:1:1: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; "
                             "split it into several files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start:exc.start].decode("utf-8")) + 1
        raise UnreadableFile(f"{name}:{line}:{column}: not UTF-8 text (byte "
                             f"0x{data[exc.start]:02x}); save the file as UTF-8") from None
