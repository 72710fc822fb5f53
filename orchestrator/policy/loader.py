"""Load every policy document under a directory: YAML -> JSON Schema -> model -> cross-checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import PolicyError
from orchestrator.policy import model as m
from orchestrator.policy.build import build_object
from orchestrator.policy.files import UnreadableFile, find_policy_files, read_policy_text
from orchestrator.policy.schema import schema_problems
from orchestrator.policy.yamlpos import Document, YamlProblem, load_documents


def _position_key(line: str) -> tuple[str, int, int]:
    """Sort problems by file, then line and column."""
    parts = line.split(":", 3)
    try:
        return (parts[0], int(parts[1]), int(parts[2]))
    except (IndexError, ValueError):
        return (line, 0, 0)


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


def load_policies(root: Path, *, strict: bool = True) -> m.PolicySet:
    """Load and check every document. Raises PolicyError listing every problem found."""
    root = Path(root)
    found = find_policy_files(root)
    files = found.files
    result = m.PolicySet(root=root)
    problems: list[str] = list(found.problems)
    failed: set[tuple[str, str]] = set()  # documents that did not load, by (kind, name)
    first_seen: dict[tuple[str, str], str] = {}
    for file in files:
        try:
            text = read_policy_text(file)
        except UnreadableFile as exc:
            problems.append(exc.line)
            continue
        try:
            docs = list(load_documents(text))
        except YamlProblem as exc:
            problems.append(f"{file}:{exc.line}:{exc.column}: {exc.message}")
            continue
        for doc in docs:
            if doc.data is None:
                continue
            found = _load_document(file, doc, result, first_seen)
            if found:
                problems.extend(found)
                failed.add(_identity(doc.data))
    if not files and not found.problems:
        result.warnings.append(f"{root}: no policy files (*.yml, *.yaml) found")
    from orchestrator.policy.crosscheck import cross_check

    errors, warnings = cross_check(result, failed=failed)
    problems.extend(errors)
    result.warnings.extend(warnings)
    if problems and strict:
        raise PolicyError(sorted(problems, key=_position_key))
    return result


def _load_document(file: Path, doc: Document, result: m.PolicySet,
                   first_seen: dict[tuple[str, str], str]) -> list[str]:
    label = _label(doc.data)
    if not isinstance(doc.data, dict):
        return [f"{file}:{doc.line}:{doc.column}: expected a policy document (a mapping with "
                "apiVersion, kind, metadata, spec)"]
    found = schema_problems(doc.data)
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
