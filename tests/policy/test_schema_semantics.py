"""The policy schema, as both validators (the fast one and jsonschema, extended) apply it:
patterns match whole values (no trailing newline slips past `$`), uniqueItems is linear,
lists have a size limit, and shell syntax in a package name is refused."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema._utils import uniq

from orchestrator.errors import PolicyError
from orchestrator.policy import schema as sc
from orchestrator.policy.loader import load_policies
from orchestrator.policy.yamlpos import load_documents

GOLDEN = Path(__file__).parent / "golden"


def baseline(**spec: object) -> dict:
    return {"apiVersion": "orchestrator/v1", "kind": "Baseline", "metadata": {"name": "b"},
            "spec": {"platform": "linux", **spec}}


def messages(doc: dict) -> list[str]:
    return [msg for _path, _key, msg in sc.schema_problems(doc)]


def jsonschema_errors(doc: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.validator}"
            for e in sc._validator().iter_errors(doc)]


# ---------------------------------------------------------------- package names
SHELL = ["x$(reboot)", "x;reboot", "x && reboot", "x|sh", "x`id`", "x>y", "x y", "$HOME",
         "-oProxyCommand=x", "x\n", "x\nreboot", "../x", "x'y", 'x"y', "x\\y", "*"]


@pytest.mark.parametrize("name", SHELL)
def test_package_name_with_shell_syntax_is_refused(name: str) -> None:
    doc = baseline(packages={"installed": [name]})
    assert sc.fast_valid(doc) is False
    assert messages(doc) == [
        f"spec.packages.installed[0]: {name!r} is not valid; expected package name"]


def test_package_name_reboot_through_the_loader(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(
        "apiVersion: orchestrator/v1\nkind: Baseline\nmetadata: {name: b}\n"
        "spec:\n  platform: linux\n  packages: {installed: ['x$(reboot)']}\n")
    with pytest.raises(PolicyError) as exc:
        load_policies(tmp_path)
    assert exc.value.problems == [
        f"{tmp_path}/b.yml:6:26: Baseline/b: spec.packages.installed[0]: 'x$(reboot)' is not "
        "valid; expected package name"]


def test_ordinary_package_names_pass() -> None:
    names = ["openssh-server", "libc6", "g++", "python3.11", "lib32z1", "NetworkManager",
             "libstdc++6", "kernel-5.14.0_1"]
    assert sc.fast_valid(baseline(packages={"installed": names})) is True
    assert jsonschema_errors(baseline(packages={"installed": names})) == []


# ---------------------------------------------------------------- whole-value patterns
def test_golden_trailing_newline_values_fail_in_both_validators() -> None:
    case = GOLDEN / "trailing-newline" / "policy.yml"
    docs = [d.data for d in load_documents(case.read_text(encoding="utf-8"))]
    expected = [
        ["metadata.name: pattern", "spec.files.0.group: pattern", "spec.files.0.mode: pattern",
         "spec.files.0.owner: pattern", "spec.packages.installed.0: pattern",
         "spec.services.running.0: pattern", "spec.sysctl: pattern"],
        ["spec.duration: pattern", "spec.timezone: pattern"],
        ["spec.checks.0: pattern", "spec.expires: pattern", "spec.hosts.0: pattern"]]
    for doc, want in zip(docs, expected, strict=True):
        assert sc.fast_valid(doc) is False
        assert sorted(jsonschema_errors(doc)) == want
        # Without the newlines, the same documents are valid: the newline alone is refused.
        clean = eval(repr(doc).replace("\\n", ""))  # noqa: S307 - our own literal
        assert sc.fast_valid(clean) is True, clean
        assert jsonschema_errors(clean) == []


@pytest.mark.parametrize(("field", "value"), [
    ("mode", "0600\n"), ("owner", "root\n"), ("group", "root\n"), ("mode", "644\n"),
    ("path", "/etc/x\n"), ("sha256", "a" * 64 + "\n")])
def test_file_rule_values_with_a_trailing_newline(field: str, value: str) -> None:
    rule = {"path": "/etc/x", field: value}
    doc = baseline(files=[rule])
    assert sc.fast_valid(doc) is False
    assert jsonschema_errors(doc) == [f"spec.files.0.{field}: pattern"]


def test_ecma_regex_anchors() -> None:
    assert sc.ecma_regex("^[a-z]+$").search("ssh\n") is None
    assert re.search("^[a-z]+$", "ssh\n") is not None  # what Python alone would say
    assert sc.ecma_regex("^[a-z]+$").search("ssh")
    owner = "^([a-z_][a-z0-9_.-]*\\$?|[0-9]+)$"  # `\$` is a literal dollar (machine accounts)
    assert sc.ecma_regex(owner).search("host$")
    assert sc.ecma_regex(owner).search("host$\n") is None
    assert sc.ecma_regex("^[$]+$").search("$$")  # a dollar in a class is a dollar
    assert sc.ecma_regex("^[^$]+$").search("ab")
    assert sc.ecma_regex("^[^$]+$").search("a$") is None
    assert sc.ecma_regex("^a(b|$)").search("a\n") is None
    assert sc.ecma_regex("^a(b|$)").search("a")
    assert sc.ecma_regex("\\S").search("x\n")  # unanchored patterns keep search semantics


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


PATTERNS = sorted(set(_patterns(sc.policy_schema())))
ANCHORED = [p for p in PATTERNS if p.startswith("^") and p.endswith("$") and
            "$" not in p[1:-1].replace("\\$", "")]


def test_every_shipped_pattern_is_anchored_at_both_ends() -> None:
    assert set(PATTERNS) - set(ANCHORED) == {"\\S"}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ANCHORED), st.text(alphabet="az09AZ_-./:$@+%\\ \n\r\t\x00()[]*?!",
                                         max_size=12), st.sampled_from(["", "\n", "\r\n"]))
def test_anchored_patterns_mean_fullmatch(pattern: str, text: str, tail: str) -> None:
    """ECMA-262 `^X$` (no m flag) matches exactly the texts Python's fullmatch(X) does."""
    value = text + tail
    assert bool(sc.ecma_regex(pattern).search(value)) == bool(
        re.fullmatch(pattern[1:-1], value)), (pattern, value)


# ---------------------------------------------------------------- uniqueItems, maxItems
def test_unique_agrees_with_jsonschema_on_tricky_values() -> None:
    cases = [[1, True], [0, False], [1, 1.0], [[1], [True]], [[1], [1.0]], [{"a": 1}, {"a": 1.0}],
             [{"a": 1}, {"a": True}], [None, False], ["1", 1], [[], {}], [{"a": [1, 2]},
             {"a": [1, 2]}], [{"a": 1, "b": 2}, {"b": 2, "a": 1}], [0.0, -0.0], []]
    for items in cases:
        assert sc.unique(items) == uniq(items), items


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, 2.5]),
              st.sampled_from(["", "a", "1"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from("ab"), inner, max_size=2)),
    max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(st.lists(json_values, max_size=5))
def test_unique_agrees_with_jsonschema(items: list) -> None:
    assert sc.unique(items) == uniq(items)


def test_ten_thousand_packages_validate_in_linear_time() -> None:
    """20,000 packages took 16 s: the fast check compared every pair."""
    doc = baseline(packages={"installed": [f"pkg{i}" for i in range(10_000)]})
    started = time.monotonic()
    assert sc.schema_problems(doc) == []
    assert time.monotonic() - started < 2


def test_jsonschema_unique_items_is_linear_too() -> None:
    """A list jsonschema cannot sort (a number among names) made it compare every pair."""
    names: list = [f"pkg{i}" for i in range(10_000)]
    doc = baseline(packages={"installed": [*names, 7, "pkg5"]})
    started = time.monotonic()
    found = messages(doc)
    assert time.monotonic() - started < 3
    assert sorted(found) == [
        "spec.packages.installed has 10002 items, more than the 10000 allowed; split it over "
        "several documents",
        "spec.packages.installed lists the same item twice",
        "spec.packages.installed[10000] must be a string, not integer (put the value in quotes)"]


def _arrays(node: object, path: str = "") -> list[tuple[str, dict]]:
    if isinstance(node, dict):
        own = [(path, node)] if node.get("type") == "array" else []
        return own + [a for k, v in node.items() for a in _arrays(v, f"{path}/{k}")]
    return []


def test_every_list_has_a_size_limit() -> None:
    arrays = _arrays(sc.policy_schema())
    assert len(arrays) > 20
    assert [p for p, a in arrays if not isinstance(a.get("maxItems"), int)] == []
    assert all(a["maxItems"] <= 10_000 for _p, a in arrays)
    sysctl = sc.policy_schema()["$defs"]["BaselineSpec"]["properties"]["sysctl"]
    assert sysctl["maxProperties"] == 2000


def test_max_properties_in_both_validators() -> None:
    doc = baseline(sysctl={f"net.k{i}": 1 for i in range(2001)})
    assert sc.fast_valid(doc) is False
    assert messages(doc) == ["spec.sysctl has 2001 keys, more than the 2000 allowed"]
    doc["spec"]["sysctl"].popitem()
    assert sc.fast_valid(doc) is True


def test_shipped_schema_is_valid_draft_2020_12() -> None:
    schema = sc.policy_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
