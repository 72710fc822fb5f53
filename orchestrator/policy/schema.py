"""The shipped JSON Schema (draft 2020-12) and readable messages for its errors."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = "policy.schema.json"


def schema_text() -> str:
    """The shipped schema file, as written."""
    path = Path(__file__).with_name("schema") / SCHEMA_FILE
    if path.is_file():  # the usual install: read it directly (importlib.resources costs ~5 ms)
        return path.read_text("utf-8")
    from importlib import resources

    return resources.files("orchestrator.policy").joinpath("schema", SCHEMA_FILE).read_text("utf-8")


@cache
def policy_schema() -> dict[str, Any]:
    return json.loads(schema_text())


# ---------------------------------------------------------------- keyword semantics
# Two keywords are checked our own way in both validators (the fast one below and
# jsonschema, extended):
# - pattern: JSON Schema patterns are ECMA-262 regular expressions, in which `$` (no `m`
#   flag) matches only at the very end; Python's `$` also matches before a final newline,
#   so `re.search("^[a-z]+$", "ssh\n")` succeeds. ecma_regex() compiles a pattern with each
#   `$` as `\Z`, giving "ssh\n" the ECMA answer: no match.
# - uniqueItems: jsonschema compares every pair when the items cannot be sorted (and the
#   old fast check always did): 20,000 items took 16 s. unique() hashes each item once.


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    r"""`pattern` compiled for re.search with ECMA-262 anchors: `$` outside a character class
    and not escaped becomes `\Z` (end of text, never before a final newline)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "^":  # "[^" : the "^" is part of the opening
                out.append("[^")
                i += 2
                continue
        elif c == "$":
            c = "\\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


def _hashable(value: Any) -> Any:
    """A key equal for two values exactly when jsonschema's `equal` says they are equal:
    True differs from 1, 1 equals 1.0, lists and mappings compare deeply."""
    if isinstance(value, bool) or value is None:
        return ("\0const", value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ("\0list", tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("\0map", frozenset((k, _hashable(v)) for k, v in value.items()))
    raise TypeError(f"unexpected {type(value).__name__} in a policy document")


def unique(items: list) -> bool:
    """No two items equal (jsonschema's uniqueItems), in linear time."""
    seen: set = set()
    for item in items:
        key = _hashable(item)
        if key in seen:
            return False
        seen.add(key)
    return True


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not ecma_regex(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    def unique_items(validator: Any, wanted: bool, instance: Any, schema: Any) -> Any:
        if wanted and validator.is_type(instance, "array") and not unique(instance):
            yield ValidationError(f"{instance!r} has non-unique elements")

    policy_validator = validators.extend(
        Draft202012Validator, {"pattern": pattern, "uniqueItems": unique_items})
    return policy_validator(policy_schema())


def field_name(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "a whole number", "number": "a number", "boolean": "true or false"}


def _describe(error: Any) -> str:
    desc = error.schema.get("description") if isinstance(error.schema, dict) else None
    if desc:
        return desc
    return ""


# ---------------------------------------------------------------- fast path
# Importing jsonschema and building its validator costs ~100 ms, most of the startup of a
# light command such as `windows check`. Valid documents (the usual case) are therefore
# checked by the small validator below, which implements exactly the keywords the shipped
# schema uses, with jsonschema's semantics (bool is not a number, 1.0 is an integer, enum
# and uniqueItems tell True from 1) and the pattern and uniqueItems above. When it finds a
# problem, or meets a keyword it does not know, jsonschema runs and writes the messages, so
# every answer is jsonschema's. tests/policy/test_loader_fast_paths.py compares both on
# mutated documents.


class _Unsupported(Exception):
    """The fast validator does not know a keyword or reference; jsonschema decides."""


_ANNOTATIONS = frozenset({"$id", "$schema", "$comment", "title", "description", "examples",
                          "default", "$defs", "then", "else"})
_SIMPLE_TYPES = {"object": dict, "array": list, "string": str, "null": type(None)}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name not in _SIMPLE_TYPES:
        raise _Unsupported
    return isinstance(value, _SIMPLE_TYPES[name])


def _unbool(value: Any) -> Any:
    return ("\0bool", value) if isinstance(value, bool) else value


def _equal(one: Any, two: Any) -> bool:
    """jsonschema._utils.equal: True differs from 1, lists and mappings compared deeply."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, list | tuple) and isinstance(two, list | tuple):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    return _unbool(one) == _unbool(two)


def _resolve(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise _Unsupported
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise _Unsupported
        node = node[part]
    return node


def _valid(value: Any, schema: Any, root: dict[str, Any]) -> bool:  # noqa: C901
    if schema is True:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict):
        raise _Unsupported
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            ok = _valid(value, _resolve(root, arg), root)
        elif key == "type":
            ok = any(_is_type(value, t) for t in ([arg] if isinstance(arg, str) else arg))
        elif key == "properties":
            ok = not isinstance(value, dict) or all(
                _valid(value[k], sub, root) for k, sub in arg.items() if k in value)
        elif key == "additionalProperties":
            if not isinstance(value, dict):
                continue
            if "patternProperties" in schema:
                raise _Unsupported
            known = schema.get("properties", {})
            extras = [k for k in value if k not in known]
            ok = all(_valid(value[k], arg, root) for k in extras)
        elif key == "propertyNames":
            ok = not isinstance(value, dict) or all(_valid(k, arg, root) for k in value)
        elif key == "required":
            ok = not isinstance(value, dict) or all(k in value for k in arg)
        elif key == "items":
            if "prefixItems" in schema:
                raise _Unsupported
            ok = not isinstance(value, list) or all(_valid(v, arg, root) for v in value)
        elif key == "enum":
            ok = any(_equal(each, value) for each in arg)
        elif key == "const":
            ok = _equal(value, arg)
        elif key == "pattern":
            ok = not isinstance(value, str) or ecma_regex(arg).search(value) is not None
        elif key in ("minLength", "maxLength"):
            ok = not isinstance(value, str) or (
                len(value) >= arg if key == "minLength" else len(value) <= arg)
        elif key in ("minimum", "maximum"):
            ok = not _is_type(value, "number") or (
                value >= arg if key == "minimum" else value <= arg)
        elif key in ("minItems", "maxItems"):
            ok = not isinstance(value, list) or (
                len(value) >= arg if key == "minItems" else len(value) <= arg)
        elif key in ("minProperties", "maxProperties"):
            ok = not isinstance(value, dict) or (
                len(value) >= arg if key == "minProperties" else len(value) <= arg)
        elif key == "uniqueItems":
            ok = not (arg and isinstance(value, list)) or unique(value)
        elif key == "allOf":
            ok = all(_valid(value, sub, root) for sub in arg)
        elif key == "anyOf":
            ok = any(_valid(value, sub, root) for sub in arg)
        elif key == "oneOf":
            ok = sum(1 for sub in arg if _valid(value, sub, root)) == 1
        elif key == "if":
            if _valid(value, arg, root):
                ok = "then" not in schema or _valid(value, schema["then"], root)
            else:
                ok = "else" not in schema or _valid(value, schema["else"], root)
        else:
            raise _Unsupported
        if not ok:
            return False
    return True


def fast_valid(document: Any) -> bool | None:
    """True when `document` satisfies the shipped schema, False when it does not, None when
    the fast validator cannot tell (jsonschema must decide)."""
    schema = policy_schema()
    try:
        return _valid(document, schema, schema)
    except (_Unsupported, RecursionError, TypeError):
        return None


def schema_problems(document: dict[str, Any]) -> list[tuple[tuple, bool, str]]:
    """Validate one document. Returns (path, at_key, message) for each problem, sorted by path."""
    if fast_valid(document):
        return []
    problems: list[tuple[tuple, bool, str]] = []
    for error in _validator().iter_errors(document):
        path = tuple(error.absolute_path)
        name = field_name(path)
        v = error.validator
        if v == "additionalProperties":
            import difflib

            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(k for k in error.instance if k not in allowed):
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append((path + (key,), True,
                                 f"unknown key {key!r} in {name} (expected one of: "
                                 f"{', '.join(allowed)}){hint}"))
            continue
        if v == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            msg = f"{name} is missing required key {missing!r}"
        elif v == "type":
            want = error.validator_value
            wants = [want] if isinstance(want, str) else list(want)
            words = " or ".join(_TYPE_WORDS.get(w, w) for w in wants)
            msg = f"{name} must be {words}, not {_json_type(error.instance)}"
            if "string" in wants and isinstance(error.instance, int | float) and not isinstance(
                error.instance, bool
            ):
                msg += " (put the value in quotes" + (
                    ', e.g. "0600": unquoted, YAML reads 0600 as an octal number)'
                    if path and path[-1] == "mode" else ")"
                )
        elif v == "pattern":
            desc = _describe(error) or f"text matching {error.validator_value}"
            msg = f"{name}: {error.instance!r} is not valid; expected {desc}"
        elif v == "enum":
            opts = ", ".join(str(o) for o in error.validator_value)
            msg = f"{name}: {error.instance!r} is not one of: {opts}"
        elif v == "const":
            msg = f"{name} must be {error.validator_value!r}, not {error.instance!r}"
        elif v in ("oneOf", "anyOf"):
            desc = _describe(error)
            if not desc and isinstance(error.instance, dict):
                keys = [r.get("required", [None])[0] for r in error.validator_value
                        if isinstance(r, dict) and "required" in r]
                if keys:
                    word = "exactly one" if v == "oneOf" else "at least one"
                    desc = f"{word} of: {', '.join(keys)}"
            msg = f"{name}: expected {desc or 'a valid value'}"
        elif v in ("minimum", "maximum"):
            word = "at least" if v == "minimum" else "at most"
            msg = f"{name} must be {word} {error.validator_value}, not {error.instance!r}"
        elif v == "minItems":
            msg = f"{name} needs at least {error.validator_value} item(s)"
        elif v == "maxItems":
            msg = (f"{name} has {len(error.instance)} items, more than the "
                   f"{error.validator_value} allowed; split it over several documents")
        elif v == "maxProperties":
            msg = (f"{name} has {len(error.instance)} keys, more than the "
                   f"{error.validator_value} allowed")
        elif v == "uniqueItems":
            msg = f"{name} lists the same item twice"
        elif v in ("minLength", "maxLength"):
            msg = f"{name} is too {'short' if v == 'minLength' else 'long'}"
        else:
            msg = f"{name}: {error.message}"
        problems.append((path, False, msg))
    problems.sort(key=lambda p: [str(x) for x in p[0]])
    return problems
