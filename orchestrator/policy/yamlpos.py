"""Safe YAML with positions: plain JSON-like data plus `path -> (line, column)` for every node.

Only the safe tags of YAML 1.1 are accepted (as yaml.safe_load). Timestamps stay the
strings they were written as, so that the JSON Schema sees what the author wrote.
Duplicate keys are errors rather than silently overriding each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path_ = tuple[str | int, ...]
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SAFE_SCALARS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    _TIMESTAMP,
}
_MAX_DEPTH = 64
MAX_NODES = 100_000  # values (scalars, lists, mappings) in one file
MAX_INT = 2**64  # |integer| below this: enough for any sysctl; str() of huge ones fails
_INT = "tag:yaml.org,2002:int"
ALIAS_MESSAGE = ("YAML anchors and aliases (&name, *name) are not allowed in policy files; "
                 "write the value out in full")


class YamlProblem(Exception):
    """A YAML document cannot be read; line and column are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Document:
    data: Any
    line: int
    column: int
    # position of each value, and of each mapping key, by path from the document root
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """The closest known position of `path` (walking up to the root)."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return (self.line, self.column)


def _too_many() -> str:
    return f"more than {MAX_NODES} values in one file; split it into several files"


def _pos(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")
        self.count = 0  # values in the file so far
        self.seen: set[int] = set()  # the document's nodes: a node met twice is an alias

    def build(self, node: Node) -> Document:
        self.seen = set()  # ids of an earlier document's nodes may be reused once it is freed
        doc = Document(data=None, line=_pos(node)[0], column=_pos(node)[1])
        doc.data = self._value(node, (), doc, 0)
        return doc

    def _value(self, node: Node, path: Path_, doc: Document, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise YamlProblem("nesting too deep (recursive alias?)", *_pos(node))
        # The composer already refuses aliases (_PolicyLoader); this guard keeps a shared
        # node from being expanded again, whichever parser composed it.
        if id(node) in self.seen:
            raise YamlProblem(ALIAS_MESSAGE, *_pos(node))
        self.seen.add(id(node))
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(_too_many(), *_pos(node))
        doc.values[path] = _pos(node)
        if isinstance(node, ScalarNode):
            if node.tag not in _SAFE_SCALARS:
                raise YamlProblem(f"tag {node.tag!r} is not allowed; use plain values", *_pos(node))
            if node.tag == _TIMESTAMP:
                return node.value
            try:
                value = self.loader.construct_object(node)
            except yaml.YAMLError as exc:
                raise YamlProblem(f"cannot read value: {exc}", *_pos(node)) from None
            except ValueError:  # int() of more than 4,300 digits
                value = MAX_INT if node.tag == _INT else None
                if value is None:
                    raise YamlProblem("cannot read value", *_pos(node)) from None
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
                raise YamlProblem("number too large (more than 64 bits); put it in quotes if it "
                                  "is text", *_pos(node))
            if isinstance(value, float) and value != value:  # NaN has no place in a policy
                raise YamlProblem("not-a-number is not a valid value", *_pos(node))
            return value
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise YamlProblem(f"tag {node.tag!r} is not allowed; use a plain list", *_pos(node))
            return [self._value(n, path + (i,), doc, depth + 1) for i, n in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                raise YamlProblem(
                    f"tag {node.tag!r} is not allowed; use a plain mapping", *_pos(node)
                )
            try:
                self.loader.flatten_mapping(node)  # YAML merge keys (<<)
            except yaml.YAMLError as exc:
                raise YamlProblem(f"bad merge key: {exc}", *_pos(node)) from None
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise YamlProblem("mapping keys must be plain strings", *_pos(key_node))
                key = self._value(key_node, path + ("\0key",), doc, depth + 1)
                doc.values.pop(path + ("\0key",), None)
                if isinstance(key, bool) or key is None:
                    raise YamlProblem(
                        f"key {key_node.value!r} reads as {key!r}; quote it", *_pos(key_node)
                    )
                key = str(key)
                if key in result:
                    raise YamlProblem(f"duplicate key {key!r}", *_pos(key_node))
                doc.keys[path + (key,)] = _pos(key_node)
                result[key] = self._value(value_node, path + (key,), doc, depth + 1)
            return result
        raise YamlProblem("unsupported YAML node", *_pos(node))  # pragma: no cover


class _PolicyLoader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing anchors and aliases where they are written (an
    alias bomb is a few hundred bytes that expand to billions of values) and stopping at
    MAX_NODES values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise YamlProblem(ALIAS_MESSAGE, mark.line + 1, mark.column + 1)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            mark = event.start_mark
            raise YamlProblem(_too_many(), mark.line + 1, mark.column + 1)
        return super().compose_node(parent, index)


# Characters the two parsers treat differently (PyYAML refuses some tabs that libyaml accepts;
# byte order marks and the Unicode line breaks): texts holding them take the pure parser.
_PURE_ONLY = re.compile("[\t\ufeff\x85\u2028\u2029]")


def _compose_fast(text: str) -> list[Node | None] | None:
    """Every document's node tree composed by libyaml (~15x faster than PyYAML's own parser,
    the same nodes, tags and line/column marks), or None when libyaml is not available, finds
    a problem, or the text holds what the two read differently (_PURE_ONLY, empty values) or
    what the builder rejects (nesting too deep, anchors and aliases, too many values): then
    the pure parser runs, so every answer stays PyYAML's.
    tests/policy/test_loader_fast_paths.py compares both on random text."""
    loader = getattr(yaml, "CSafeLoader", None)
    # "&": an anchor (libyaml's nodes do not say where one was written; the pure composer does)
    # "!": a tag (libyaml accepts tag handles PyYAML refuses, e.g. `!:!x`)
    if loader is None or _PURE_ONLY.search(text) or "&" in text or "!" in text:
        return None
    try:
        nodes = list(yaml.compose_all(text, Loader=loader))
    except Exception:  # noqa: BLE001 - any problem: the pure parser decides and reports
        return None
    # Too deep, an alias (a node shared by two parents) or too many values: the pure composer
    # reports exactly where; stop at the first such node.
    stack = [(n, 0) for n in nodes if n is not None]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH or id(node) in seen or len(seen) >= MAX_NODES:
            return None
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if node.value == "" and node.style not in ("'", '"'):
                return None  # an empty value: libyaml marks it elsewhere than PyYAML
        elif isinstance(node, SequenceNode):
            stack.extend((n, depth + 1) for n in node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
    return nodes


def load_documents(text: str) -> Iterator[Document]:
    """Yield each non-empty document of `text`; raises YamlProblem."""
    builder = _Builder()
    nodes = _compose_fast(text)
    try:
        for node in nodes if nodes is not None else yaml.compose_all(text, Loader=_PolicyLoader):
            if node is None:
                continue
            yield builder.build(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "not valid YAML"
        raise YamlProblem(f"invalid YAML: {problem}", line, col) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", 1, 1) from None
    except RecursionError:
        raise YamlProblem("nesting too deep", 1, 1) from None
