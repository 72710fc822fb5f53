"""Policy files read straight from git objects: a commit's tree, never a checkout.

`plan` and `apply` judge what a revision holds, not the work tree: nothing in the user's work
tree is touched (no checkout, no index update; `git` runs with GIT_OPTIONAL_LOCKS=0). The
policy folder is the configured one, taken relative to its git work tree; in the commit the
same rules hold as for the loader's folder walk (orchestrator/policy/files.py): `*.yml` and
`*.yaml` in any sub-folder, hidden names skipped, symbolic links followed inside the
repository (a link leading out of it, a link loop, a submodule or a file too large is a
problem line, never silently skipped).

A file is named `REV:PATH` (git's own spelling, PATH from the top of the repository), so a
problem reads `main:policies/web.yml:3:5: ...`.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.policy.files import MAX_FILE_BYTES, SUFFIXES, UnreadableFile, policy_text
from orchestrator.policy.loader import ParsedTexts, load_policy_texts
from orchestrator.policy.model import PolicySet

GIT_TIMEOUT = 60.0
MAX_LINK_HOPS = 40  # as the kernel's
MAX_LINK_BYTES = 4096  # PATH_MAX: a longer "link" is not a path


class GitSourceError(OrchestratorError):
    """The policy folder is not in git, a revision does not exist, or git failed."""


class FolderMissing(GitSourceError):
    """The revision has no policy folder (it was added later)."""


@dataclass(frozen=True)
class Revision:
    """A commit of the repository holding the policy folder."""

    top: Path  # the work tree's top folder
    prefix: str  # the policy folder (or file) relative to `top`, POSIX; "" for the top
    commit: str  # full object name
    label: str  # how problems name it: the ref as given, if short and plain, else the commit

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass
class RevisionFiles:
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (REV:PATH, content)
    problems: list[str] = field(default_factory=list)
    oids: list[str] = field(default_factory=list)  # each file's git object name


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a read never refreshes the user's index
    env["GIT_NO_REPLACE_OBJECTS"] = "1"  # a commit's objects as made, not `git replace`d
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE"):
        env.pop(name, None)  # the repository is the policy folder's, whatever the caller set
    return env


def git(top: Path | str, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git in `top`; its output, or a one-line GitSourceError."""
    try:
        done = subprocess.run(["git", "--literal-pathspecs", "-c", "core.useReplaceRefs=false",
                               "-C", str(top), *args],
                              input=stdin, capture_output=True, timeout=GIT_TIMEOUT,
                              env=_env())
    except FileNotFoundError:
        raise GitSourceError("git is not installed; install git (plan and apply read "
                             "policies from git commits)") from None
    except subprocess.TimeoutExpired:
        raise GitSourceError(f"{top}: git {args[0]} took longer than {GIT_TIMEOUT:g} s; "
                             "check the repository") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitSourceError(f"{top}: git {args[0]} failed: {why[-1] if why else done.returncode}")
    return done.stdout


def work_tree(policies: Path) -> tuple[Path, str]:
    """(top of the work tree, the policy folder relative to it). Only the folders above the
    policy folder are resolved here: when the policy folder itself is a symbolic link, each
    revision's own link decides where its policies are (read_revision)."""
    absolute = Path(os.path.abspath(policies))
    parent = Path(os.path.realpath(absolute.parent))
    real = parent / absolute.name if absolute.name else parent
    folder = real if real.is_dir() else real.parent
    if not folder.is_dir():
        raise GitSourceError(f"{policies}: policy directory not found; set 'policies' in "
                             "orchestrator.yml or pass --policies")
    try:
        out = git(folder, "rev-parse", "--show-toplevel")
    except GitSourceError:
        raise GitSourceError(f"{policies}: not in a git work tree; plan and apply read "
                             "policies from git commits (run `git init` and commit them)") \
            from None
    text = out.decode("utf-8", "surrogateescape")
    top = Path(os.path.realpath(text[:-1] if text.endswith("\n") else text))
    rel = os.path.relpath(real, top)
    if rel == ".." or rel.startswith("../"):
        # a link from outside the repository into it: the link is not in any commit, so
        # its target is the policy folder in every revision
        rel = os.path.relpath(os.path.realpath(policies), top)
    if rel == ".":
        rel = ""
    if rel == ".." or rel.startswith("../"):
        raise GitSourceError(f"{policies}: outside its git work tree {top}")
    return top, Path(rel).as_posix() if rel else ""


def resolve(policies: Path, ref: str) -> Revision:
    """The commit `ref` names in the policy folder's repository."""
    top, prefix = work_tree(policies)
    if not ref or "\n" in ref or "\0" in ref:
        raise GitSourceError(f"{ref!r}: not a git revision; give a branch, tag or commit")
    try:
        out = git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except GitSourceError:
        raise GitSourceError(f"{ref}: no such commit in {top}; fetch it first (in CI: a full "
                             "clone, e.g. fetch-depth: 0)") from None
    commit = out.decode().strip()
    plain = (ref.isprintable() and len(ref) <= 64 and ":" not in ref and " " not in ref
             and not commit.startswith(ref[:40] if len(ref) >= 13 else "-"))
    return Revision(top=top, prefix=prefix, commit=commit, label=ref if plain else commit[:12])


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str  # blob | tree | commit
    oid: str
    size: int  # blobs: bytes; others 0


def _list(top: Path, commit: str, path: str | None) -> dict[str, _Entry]:
    """The entries of the commit's tree (under `path`, or all), recursively, trees too."""
    args = ["ls-tree", "-r", "-t", "-z", "-l", "--full-tree", commit]
    if path:
        args += ["--", path]
    out = git(top, *args)
    entries: dict[str, _Entry] = {}
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, _, name = item.partition(b"\t")
        mode, kind, oid, size = meta.decode().split()
        entries[name.decode("utf-8", "surrogateescape")] = _Entry(
            mode, kind, oid, int(size) if size.isdigit() else 0)
    return entries


class _Tree:
    """The whole commit's entries, listed only when a symbolic link needs resolving."""

    def __init__(self, top: Path, commit: str, first: dict[str, _Entry]) -> None:
        self.top, self.commit = top, commit
        self.entries, self.complete = first, False
        self.link_targets: dict[str, bytes] = {}

    def all(self) -> dict[str, _Entry]:
        if not self.complete:
            self.entries = _list(self.top, self.commit, None)
            self.complete = True
            links = {p: e.oid for p, e in self.entries.items()
                     if e.mode == "120000" and e.size <= MAX_LINK_BYTES}
            self.link_targets.update(_blobs(self.top, links))  # one git process for all
        return self.entries

    def resolve(self, path: str) -> tuple[str | None, str | None]:
        """(the path a link at `path` finally names, or None; a problem, or None)."""
        entries = self.all()
        hops = 0
        while True:
            # resolve every leading folder that is itself a link, then the entry
            parts, done = path.split("/"), []
            for i, part in enumerate(parts):
                cur = "/".join([*done, part])
                entry = entries.get(cur)
                if entry is not None and entry.mode == "120000":
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        return None, "symbolic link loop"
                    target = self.link_targets.get(cur)
                    if target is None:  # a link too long to be a path (never read)
                        return None, "symbolic link target longer than 4096 bytes"
                    text = target.decode("utf-8", "surrogateescape")
                    if text.startswith("/"):
                        return None, f"symbolic link to {text}, outside the repository"
                    joined = posixpath.normpath(posixpath.join("/".join(done), text))
                    if joined == ".." or joined.startswith("../"):
                        return None, f"symbolic link to {text}, outside the repository"
                    path = "/".join(p for p in [joined if joined != "." else "", *parts[i + 1:]]
                                    if p)
                    break
                done.append(part)
            else:
                return (path if path in entries or path == "" else None), None


def read_revision(rev: Revision) -> RevisionFiles:
    """Every policy file of the revision, in the order the folder walk reads them (depth
    first, names sorted), with its content."""
    where = f"{rev.label}:{rev.prefix or '.'}"
    tree = _Tree(rev.top, rev.commit, _list(rev.top, rev.commit, rev.prefix or None))
    if rev.prefix and rev.prefix not in tree.entries:
        raise FolderMissing(f"{where}: the policy folder does not exist in {rev.label} "
                             f"({rev.short}); compare revisions that have it")
    if any(e.mode == "120000" for e in tree.entries.values()):
        tree.all()  # links may lead anywhere in the repository
    base = rev.prefix
    if base and tree.entries[base].mode == "120000":
        target, problem = tree.resolve(base)
        if target is None:
            raise GitSourceError(f"{where}: {problem or 'broken symbolic link'}")
        base = target
    return _walk(rev, tree, base)


def _walk(rev: Revision, tree: _Tree, base: str) -> RevisionFiles:
    out = RevisionFiles()
    entries = tree.entries
    children: dict[str, list[str]] = {}
    for path in entries:
        children.setdefault(posixpath.dirname(path), []).append(path)
    wanted: dict[str, str] = {}  # blob oid by real path
    shown: dict[str, str] = {}  # real path -> the name problems give (the first reached)
    order: list[str] = []
    first = entries.get(base) if base else None
    if first is not None and first.kind == "blob":  # the policy "folder" is one file
        _take(rev, base, base, first, wanted, shown, order, out)
    folders: set[str] = set()
    stack: list[object] = []

    def enter(folder: str) -> None:
        if folder in folders:  # reached again through a link: already read
            return
        folders.add(folder)
        stack.append(iter(sorted(children.get(folder, []), key=posixpath.basename)))

    if first is None or first.kind == "tree":
        enter(base)
    while stack:
        path = next(stack[-1], None)  # type: ignore[call-overload]
        if path is None:
            stack.pop()
            continue
        if posixpath.basename(path).startswith("."):
            continue
        entry = entries[path]
        if entry.kind == "tree":
            enter(path)
        elif entry.kind == "commit":
            out.problems.append(f"{rev.label}:{path}: a git submodule; plan and apply read "
                                "only this repository; move the policies into it")
        elif entry.mode == "120000":
            target, problem = tree.resolve(path)
            real = (_ROOT if target == "" else entries.get(target)) if target is not None \
                else None
            if real is None:
                out.problems.append(f"{rev.label}:{path}: {problem or 'broken symbolic link'}"
                                    "; fix the link or remove it")
            elif real.kind == "tree":
                enter(target)  # type: ignore[arg-type]
            elif real.kind == "root":
                enter("")
            elif path.endswith(SUFFIXES):
                _take(rev, target, path, real, wanted, shown, order, out)  # type: ignore[arg-type]
        elif path.endswith(SUFFIXES):
            _take(rev, path, path, entry, wanted, shown, order, out)
    content = dict(_blobs(rev.top, wanted))
    out.files = [(shown[p], content[p]) for p in order]
    out.oids = [wanted[p] for p in order]
    return out


_ROOT = _Entry("040000", "root", "", 0)  # the repository's top folder, as a link target


def _take(rev: Revision, real: str, path: str, entry: _Entry, wanted: dict[str, str],
          shown: dict[str, str], order: list[str], out: RevisionFiles) -> None:
    if entry.kind != "blob":
        out.problems.append(f"{rev.label}:{path}: not a regular file; policy files must be "
                            "plain files (or links to them)")
        return
    if entry.size > MAX_FILE_BYTES:  # never read into memory
        out.problems.append(f"{rev.label}:{path}:1:1: larger than "
                            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB; split it into several files")
        return
    if real not in wanted:  # a file reached twice (through a link) is read once
        wanted[real] = entry.oid
        shown[real] = f"{rev.label}:{path}"
        order.append(real)


def _blobs(top: Path, wanted: dict[str, str]) -> list[tuple[str, bytes]]:
    """The content of each blob (by name), through one `git cat-file --batch`."""
    if not wanted:
        return []
    paths = sorted(wanted)
    out = git(top, "cat-file", "--batch",
              stdin="".join(wanted[p] + "\n" for p in paths).encode())
    found: list[tuple[str, bytes]] = []
    pos = 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split(b" ")
        if len(header) < 3 or not header[2].isdigit():  # "<oid> missing"
            raise GitSourceError(f"{top}: git object {wanted[path]} ({path}) is missing; "
                                 "fetch the whole history")
        size = int(header[2])
        start = end + 1
        found.append((path, out[start:start + size]))
        pos = start + size + 1
    return found


def _c_quoted(path: str) -> str:
    """A path as git reads it from --stdin-paths: C-quoted when it holds a newline, a
    backslash or a double quote, or starts with a quote."""
    if not any(c in path for c in '\n"\\\t\r') and not path.startswith('"'):
        return path
    body = "".join({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t",
                    "\r": "\\r"}.get(c, c) for c in path)
    return f'"{body}"'


def object_names(top: Path, files: list[Path]) -> list[tuple[str, str]] | None:
    """For each work-tree file, the git object name it would have if added now (the
    repository's end-of-line and filter rules applied, `git hash-object`) and the name of
    its bytes as they are (a file committed with CRLF, checked out unconverted); None when
    one lies outside the repository."""
    rels = []
    for f in files:
        rel = os.path.relpath(os.path.realpath(f), top)
        if rel == ".." or rel.startswith("../"):
            return None
        rels.append(rel)
    if not rels:
        return []
    paths = "".join(_c_quoted(r) + "\n" for r in rels).encode("utf-8", "surrogateescape")
    filtered = git(top, "hash-object", "--stdin-paths", stdin=paths).decode().split()
    raw = git(top, "hash-object", "--no-filters", "--stdin-paths", stdin=paths).decode().split()
    return list(zip(filtered, raw, strict=True))


def commit_info(rev: Revision) -> dict[str, str]:
    """Author, committer, their dates and the message of the revision's commit."""
    out = git(rev.top, "show", "-s", "--no-show-signature",
              "--format=%an <%ae>%x00%aI%x00%cn <%ce>%x00%cI%x00%B", rev.commit)
    parts = out.decode("utf-8", "replace").split("\0", 4)
    while len(parts) < 5:
        parts.append("")
    author, authored, committer, committed, message = parts
    return {"commit": rev.commit, "author": author, "authored": authored,
            "committer": committer, "committed": committed, "message": message.strip()}


def load_revision(rev: Revision, *, strict: bool = True,
                  memo: ParsedTexts | None = None) -> PolicySet:
    """The revision's policies, loaded and checked as the folder's are (`strict`: raise
    PolicyError listing every problem; else keep them in `problems`)."""

    found = read_revision(rev)

    def texts() -> Iterator[tuple[Path, str | UnreadableFile]]:
        for name, data in found.files:
            try:
                yield Path(name), policy_text(name, data)
            except UnreadableFile as exc:
                yield Path(name), exc

    return load_policy_texts(Path(f"{rev.label}:{rev.prefix or '.'}"), texts(),
                             list(found.problems), strict=strict,
                             empty=not found.files and not found.problems, memo=memo)
