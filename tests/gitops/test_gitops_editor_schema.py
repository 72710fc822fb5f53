"""The JSON Schema published for editors: `orchestrator schema` is a valid draft 2020-12
schema, and the YAML language server modeline the README shows points a real schema checker
(check-jsonschema) at it.

The modeline is read as yaml-language-server reads it (services/modelineUtil.ts and
yamlSchemaService.ts): a comment line `# yaml-language-server: $schema=PATH`, PATH relative
to the folder of the YAML file. The language server checks a schema against draft-07's
metaschema before using it, so the schema must pass that too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from gitrepo import window_yaml

BIN = Path(sys.executable).parent
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
MODELINE = "# yaml-language-server: $schema=../.schemas/orchestrator-policy.json\n"

def schema_text() -> str:
    done = subprocess.run([str(BIN / "orchestrator"), "schema"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_jsonschema(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", *args],
                          capture_output=True, text=True, timeout=120)


def modeline_schema(path: Path) -> Path:
    """The schema a YAML file names, as yaml-language-server finds it: the first comment
    that is a modeline (`^#\\s+yaml-language-server\\s*:`), its `$schema=` value, relative
    to the file's folder."""
    for line in path.read_text().splitlines():
        if re.match(r"#\s+(?:yaml-language-server\s*:|\$schema:)", line):
            found = re.search(r"\$schema(?:=|:\s*)(\S+)", line)
            assert found, line
            return (path.parent / found.group(1)).resolve()
    raise AssertionError(f"{path}: no yaml-language-server modeline")


def test_schema_is_a_valid_draft_2020_12_schema(tmp_path: Path) -> None:
    text = schema_text()
    schema = json.loads(text)
    assert schema["$schema"] == DRAFT_2020_12
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(schema)  # what the editor checks it against
    path = tmp_path / "orchestrator-policy.json"
    path.write_text(text)
    done = check_jsonschema("--check-metaschema", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    # and the check can fail: a keyword of the wrong type
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**schema, "required": "apiVersion"}))
    done = check_jsonschema("--check-metaschema", str(broken))
    assert done.returncode == 1, done.stdout + done.stderr


def schema_nodes(node: object, path: str = "#") -> list[tuple[str, dict]]:
    """Every subschema (not the property names of `properties` and `$defs`)."""
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            for name, sub in value.items():
                found += schema_nodes(sub, f"{path}/{key}/{name}")
        elif isinstance(value, dict):
            found += schema_nodes(value, f"{path}/{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                found += schema_nodes(sub, f"{path}/{key}/{i}")
    return found


def test_schema_means_the_same_to_a_draft_07_editor() -> None:
    """Editors (yaml-language-server, JetBrains) implement draft 07: no keyword that only
    2019-09/2020-12 know, and no `$ref` beside other keywords (ignored before 2019-09)."""
    newer = {"$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
             "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired",
             "dependentSchemas", "minContains", "maxContains", "$vocabulary"}
    nodes = schema_nodes(json.loads(schema_text()))
    assert len(nodes) > 50
    for path, node in nodes:
        assert not newer & set(node), f"{path}: {sorted(newer & set(node))}"
        assert "$ref" not in node or set(node) <= {"$ref", "description", "title"}, path


@pytest.mark.parametrize("duration, valid", [("4h", True), ("forever", False)])
def test_modeline_points_a_schema_checker_at_the_schema(tmp_path: Path, duration: str,
                                                        valid: bool) -> None:
    """The layout the README shows: the schema written once to .schemas/ at the top of the
    repository, each policy file naming it relative to its own folder."""
    (tmp_path / ".schemas").mkdir()
    (tmp_path / ".schemas" / "orchestrator-policy.json").write_text(schema_text())
    (tmp_path / "policies").mkdir()
    policy = tmp_path / "policies" / "windows.yml"
    policy.write_text(window_yaml(modeline=MODELINE, duration=duration))
    (tmp_path / "orchestrator.yml").write_text("policies: policies/\n")
    schema = modeline_schema(policy)
    assert schema == tmp_path / ".schemas" / "orchestrator-policy.json"
    done = check_jsonschema("--schemafile", str(schema), str(policy))
    assert (done.returncode == 0) is valid, done.stdout + done.stderr
    if not valid:
        assert "forever" in done.stdout + done.stderr
    # orchestrator validate agrees, and the modeline (a comment) changes nothing for it
    done = subprocess.run([str(BIN / "orchestrator"), "validate"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (done.returncode == 0) is valid, done.stdout + done.stderr

