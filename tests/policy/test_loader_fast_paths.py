"""The policy loader's fast paths give the same answers as the libraries they stand in for:

- the small schema validator agrees with jsonschema (extended with our pattern and
  uniqueItems, see orchestrator/policy/schema.py) on valid and mutated documents (when it
  says valid, jsonschema finds no error);
- libyaml composes the same nodes and marks as PyYAML's pure parser.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.policy.schema import _validator, fast_valid
from orchestrator.policy.yamlpos import _compose_fast, load_documents

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- policy schema
def _documents() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "policies").rglob("*.yml")) + sorted(
            (ROOT / "tests" / "policy" / "golden").rglob("*.yml")):
        if "alias-bomb" in path.parts:
            continue
        try:
            docs.extend(d.data for d in load_documents(path.read_text(encoding="utf-8"))
                        if isinstance(d.data, dict))
        except Exception:  # noqa: BLE001 - golden cases include unreadable files
            continue
    return docs


DOCS = _documents()
VALIDATOR = _validator()
ODD_VALUES = [None, True, False, 0, 1, 1.0, 2.5, -1, "", "x", "0600", "4h", "2026-01-01",
              "Europe/Berlin", [], ["a"], ["a", "a"], [1, True], {}, {"a": 1}, 10 ** 6,
              "x\n", "0600\n", "root\n", "4h\n", ["a", "a\n"], [{"a": 1}, {"a": 1.0}]]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, action, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{key}x"] = value
    else:
        parent[key] = value
    return doc


def test_fast_schema_check_agrees_on_shipped_and_golden_documents():
    assert DOCS
    for doc in DOCS:
        verdict = fast_valid(doc)
        assert verdict is not None
        assert verdict == VALIDATOR.is_valid(doc), doc


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_fast_schema_check_agrees_on_mutated_documents(data):
    doc = data.draw(st.sampled_from(DOCS))
    path = data.draw(st.sampled_from(list(_paths(doc))))
    action = data.draw(st.sampled_from(["set", "delete", "add"]))
    if action == "delete" and not path:
        action = "set"
    mutated = _mutate(doc, path, action, data.draw(st.sampled_from(ODD_VALUES)))
    verdict = fast_valid(mutated)
    if verdict is not None:
        assert verdict == VALIDATOR.is_valid(mutated)


# ---------------------------------------------------------------- YAML
def _tree(node):
    if node is None:
        return None
    mark = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, mark)
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, [_tree(n) for n in node.value], mark)
    return (node.tag, [(_tree(k), _tree(v)) for k, v in node.value], mark)


def _compose(text: str, loader) -> list | str:
    try:
        return [_tree(n) for n in yaml.compose_all(text, Loader=loader)]
    except yaml.YAMLError:
        return "error"
    except RecursionError:
        return "recursion"


def _fast(text: str) -> list | None:
    nodes = _compose_fast(text)  # None: the pure parser decides
    return None if nodes is None else [_tree(n) for n in nodes]


def test_libyaml_composes_policy_files_like_pyyaml():
    assert hasattr(yaml, "CSafeLoader"), "PyYAML without libyaml: the fast path is off"
    used = 0
    for path in sorted(ROOT.joinpath("policies").rglob("*.yml")) + sorted(
            ROOT.joinpath("tests", "policy", "golden").rglob("*.yml")):
        if not path.is_file():  # golden cases hold broken links
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        fast = _fast(text)
        if fast is not None:
            used += 1
            assert fast == _compose(text, yaml.SafeLoader), path
    assert used > 10


YAML_TOKENS = list("ab:- \n\t#'\"[]{},&*!|>%@`?é\u00a0") + [
    "  ", "key: value\n", "- item\n", "<<: *a\n", "&a ", "---\n", "\ufeff", "x: ü\n", "\r\n",
    "\r", "𝄞", "\x85", "\u2028", "0o7", "1e3", "~", "null", "yes", ".inf"]
yaml_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(yaml_text)
@example("!:!---\na")  # libyaml reads a tag handle PyYAML refuses
def test_libyaml_composes_like_pyyaml(text):
    fast = _fast(text)
    if fast is not None:
        assert fast == _compose(text, yaml.SafeLoader)
