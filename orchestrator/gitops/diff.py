"""Objects added, removed and changed between two policy sets, field by field.

Objects are matched by kind and name, so a file renamed or split keeps its objects
unchanged. Fields are compared as written (the YAML values), so a reviewer reads the
change in the policy's own words: `spec.schedule.cron: "0 22 * * 6" -> "0 23 * * 6"`.
Lists of plain values (packages, services, groups) show the items added and removed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from orchestrator.policy.model import KINDS, PolicySet

MISSING: Any = None  # a field that is not written


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted, list items as [i]
    old: Any = MISSING
    new: Any = MISSING
    added: tuple[Any, ...] = ()  # lists: the items added
    removed: tuple[Any, ...] = ()
    reordered: bool = False  # lists: the items kept are in another order too
    added_at: tuple[int, ...] = ()  # each added item's place in the new list (from 0)
    removed_at: tuple[int, ...] = ()  # each removed item's place in the old list

    def to_json(self) -> dict[str, Any]:
        if self.added or self.removed:
            return {"path": self.path, "added": [plain(v) for v in self.added],
                    "addedAt": list(self.added_at),
                    "removed": [plain(v) for v in self.removed],
                    "removedAt": list(self.removed_at), "reordered": self.reordered}
        return {"path": self.path, "old": plain(self.old), "new": plain(self.new)}


@dataclass(frozen=True)
class ObjectChange:
    kind: str
    name: str
    change: str  # added | removed | changed
    file: str  # where it is written (the head's; the base's for a removed object)
    fields: tuple[FieldChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "change": self.change,
                "file": self.file, "fields": [f.to_json() for f in self.fields]}


def plain(value: Any) -> Any:
    """A YAML value as JSON: dates as ISO text."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def document(ps: PolicySet, kind: str, name: str) -> dict[str, Any]:
    """The object's document as written (the YAML data), metadata.name left out."""
    found = ps.positions.get((kind, name))
    data = found[1].data if found else {}
    out = dict(data)
    meta = dict(out.get("metadata") or {})
    meta.pop("name", None)
    out["metadata"] = meta
    return out


def where(ps: PolicySet, kind: str, name: str, shown: Callable[[str], str] = str) -> str:
    """`file:line` of the object's document, the file as `shown` names it."""
    found = ps.positions.get((kind, name))
    if not found:
        return ""
    file, doc = found
    return f"{shown(str(file))}:{doc.line}"


def object_changes(base: PolicySet, head: PolicySet,
                   shown: Callable[[str], str] = str) -> list[ObjectChange]:
    """Every object added, removed or changed, by kind (SPEC order) then name."""
    out: list[ObjectChange] = []

    def where_(ps: PolicySet, kind: str, name: str) -> str:
        return where(ps, kind, name, shown)

    for kind in KINDS:
        old, new = base.by_kind(kind), head.by_kind(kind)
        for name in sorted(set(old) | set(new)):
            if name not in old:
                out.append(ObjectChange(kind, name, "added", where_(head, kind, name)))
            elif name not in new:
                out.append(ObjectChange(kind, name, "removed", where_(base, kind, name)))
            else:
                fields = tuple(field_changes(document(base, kind, name),
                                             document(head, kind, name)))
                if fields:
                    out.append(ObjectChange(kind, name, "changed", where_(head, kind, name),
                                            fields))
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, date))


def _key(value: Any) -> str:
    """A value as comparable text (lists of mappings are compared item by item)."""
    return json.dumps(plain(value), sort_keys=True, ensure_ascii=False)


def _split(items: list, extra: Counter[str]) -> tuple[list, list[int], list[str]]:
    """(the items counted in `extra`, their places, the keys of the others in order)."""
    taken, at, kept = [], [], []
    left = Counter(extra)
    for i, v in enumerate(items):
        k = _key(v)
        if left[k] > 0:
            left[k] -= 1
            taken.append(v)
            at.append(i)
        else:
            kept.append(k)
    return taken, at, kept


def _list_change(old: list, new: list, path: str) -> list[FieldChange]:
    """Items added and removed (as many times as they occur), in their order; the same
    items in another order are one whole-value change."""
    old_keys, new_keys = Counter(map(_key, old)), Counter(map(_key, new))
    if old_keys == new_keys:
        return [FieldChange(path, old, new)]
    added, added_at, kept_new = _split(new, new_keys - old_keys)
    removed, removed_at, kept_old = _split(old, old_keys - new_keys)
    # order matters (approval rules: the first match wins; rollout.serial): places are kept
    # and a changed order of the items kept is said
    return [FieldChange(path, added=tuple(added), removed=tuple(removed),
                        reordered=kept_old != kept_new, added_at=tuple(added_at),
                        removed_at=tuple(removed_at))]


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    if old == new and type(old) is type(new):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(FieldChange(sub, old[key], MISSING))
            elif key not in old:
                out.append(FieldChange(sub, MISSING, new[key]))
            else:
                out.extend(field_changes(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new) and not all(_scalar(v) for v in old + new):
            # the same number of rules or file entries: field by field, item by item
            out = []
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                out.extend(field_changes(a, b, f"{path}[{i}]"))
            return out
        return _list_change(old, new, path)
    return [FieldChange(path, old, new)]


def changed_names(changes: list[ObjectChange]) -> dict[str, set[str]]:
    """kind -> names of objects that govern hosts differently: added, removed, or changed
    beyond their metadata (a new description changes no host)."""
    out: dict[str, set[str]] = {k: set() for k in KINDS}
    for c in changes:
        if c.change != "changed" or any(not f.path.startswith("metadata.") for f in c.fields):
            out[c.kind].add(c.name)
    return out
