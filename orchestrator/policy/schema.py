"""The shipped JSON Schema (draft 2020-12) and readable messages for its errors."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "policy.schema.json"


@cache
def policy_schema() -> dict[str, Any]:
    text = resources.files("orchestrator.policy").joinpath("schema", SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(policy_schema())


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


def schema_problems(document: dict[str, Any]) -> list[tuple[tuple, bool, str]]:
    """Validate one document. Returns (path, at_key, message) for each problem, sorted by path."""
    problems: list[tuple[tuple, bool, str]] = []
    for error in _validator().iter_errors(document):
        path = tuple(error.absolute_path)
        name = field_name(path)
        v = error.validator
        if v == "additionalProperties":
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
        elif v == "uniqueItems":
            msg = f"{name} lists the same item twice"
        elif v in ("minLength", "maxLength"):
            msg = f"{name} is too {'short' if v == 'minLength' else 'long'}"
        else:
            msg = f"{name}: {error.message}"
        problems.append((path, False, msg))
    problems.sort(key=lambda p: [str(x) for x in p[0]])
    return problems
