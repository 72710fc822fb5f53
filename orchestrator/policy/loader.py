"""Load every policy document under a directory: YAML -> JSON Schema -> model -> cross-checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import PolicyError
from orchestrator.policy import model as m
from orchestrator.policy.build import build_object
from orchestrator.policy.files import UnreadableFile, find_policy_files, read_policy_text
from orchestrator.policy.schema import schema_problems
from orchestrator.policy.yamlpos import Document, YamlProblem, load_documents

_POSITION = re.compile(r"^(.*?):([0-9]+):([0-9]+):")


def _position_key(line: str) -> tuple[str, int, int]:
    """Sort problems by file, then line and column (a file may be named `REV:PATH`)."""
    found = _POSITION.match(line)
    if found is None:
        return (line, 0, 0)
    return (found.group(1), int(found.group(2)), int(found.group(3)))


def _identity(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return ("?", "?")
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return (str(data.get("kind")), str(name))


def _label(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    kind = data.get("kind") if isinstance(data.get("kind"), str) else "?"
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) and isinstance(meta.get("name"), str) else "?"
    label = f"{kind}/{name}"
    if not label.isprintable():  # a name with a newline must not start a second line
        label = repr(label)[1:-1]
    return f"{label}: "


class ParsedTexts:
    """Each text's documents with their schema verdicts, kept while loads share it: two
    revisions loaded with one (plan) parse and check a file they both hold once."""

    def __init__(self) -> None:
        self._by_text: dict[str, list[tuple[Document, list]]] = {}

    def documents(self, text: str) -> list[tuple[Document, list]]:
        """The non-empty documents of `text` and their schema problems; raises YamlProblem."""
        found = self._by_text.get(text)
        if found is None:
            found = [(d, schema_problems(d.data) if isinstance(d.data, dict) else [])
                     for d in load_documents(text) if d.data is not None]
            self._by_text[text] = found
        return found


def load_policies(root: Path, *, strict: bool = True,
                  memo: ParsedTexts | None = None) -> m.PolicySet:
    """Load and check every document. Raises PolicyError listing every problem found."""
    root = Path(root)
    found = find_policy_files(root)

    def texts() -> Iterator[tuple[Path, str | UnreadableFile]]:
        for file in found.files:
            try:
                yield file, read_policy_text(file)
            except UnreadableFile as exc:
                yield file, exc

    return load_policy_texts(root, texts(), list(found.problems), strict=strict,
                             empty=not found.files and not found.problems, memo=memo)


def load_policy_texts(root: Path, texts: Iterable[tuple[Path, str | UnreadableFile]],
                      problems: list[str], *, strict: bool = True, empty: bool = False,
                      memo: ParsedTexts | None = None) -> m.PolicySet:
    """Load documents from (file name, text) pairs: the folder walk's, or a git commit's.
    `problems`: what finding the files already reported; `memo`: parses to share."""
    result = m.PolicySet(root=root)
    failed: set[tuple[str, str]] = set()  # documents that did not load, by (kind, name)
    first_seen: dict[tuple[str, str], str] = {}
    for file, text in texts:
        if isinstance(text, UnreadableFile):
            problems.append(text.line)
            continue
        try:
            docs = (memo or ParsedTexts()).documents(text)
        except YamlProblem as exc:
            problems.append(f"{file}:{exc.line}:{exc.column}: {exc.message}")
            continue
        for doc, schema in docs:
            bad = _load_document(file, doc, result, first_seen, schema)
            if bad:
                problems.extend(bad)
                failed.add(_identity(doc.data))
    if empty:
        result.warnings.append(f"{root}: no policy files (*.yml, *.yaml) found")
    from orchestrator.policy.crosscheck import cross_check

    errors, warnings = cross_check(result, failed=failed)
    problems.extend(errors)
    result.warnings.extend(warnings)
    if problems and strict:
        raise PolicyError(sorted(problems, key=_position_key))
    result.problems.extend(sorted(problems, key=_position_key))
    return result


def _load_document(file: Path, doc: Document, result: m.PolicySet,
                   first_seen: dict[tuple[str, str], str], found: list) -> list[str]:
    label = _label(doc.data)
    if not isinstance(doc.data, dict):
        return [f"{file}:{doc.line}:{doc.column}: expected a policy document (a mapping with "
                "apiVersion, kind, metadata, spec)"]
    if found:
        out = []
        for path, at_key, message in found:
            line, col = doc.position(path, key=at_key)
            out.append(f"{file}:{line}:{col}: {label}{message}")
        return out
    kind, meta_raw = doc.data["kind"], doc.data["metadata"]
    name = meta_raw["name"]
    line, col = doc.position(("metadata", "name"))
    where = f"{file}:{line}:{col}"
    if (kind, name) in first_seen:
        return [f"{where}: {label}duplicate name; {kind} {name!r} is already defined at "
                f"{first_seen[(kind, name)]}"]
    first_seen[(kind, name)] = where
    meta = m.Meta(name=name, description=meta_raw.get("description"),
                  source=m.Location(file, doc.line, doc.column))
    try:
        obj = build_object(kind, meta, doc.data["spec"])
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        path = tuple(field.split("."))
        line, col = doc.position(path)
        return [f"{file}:{line}:{col}: {label}{exc}"]
    result.by_kind(kind)[name] = obj
    result.positions[(kind, name)] = (file, doc)
    return []
