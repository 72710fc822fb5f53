"""The architecture's arrows go one way, downwards. Read from the sources (ast), so a new
import that crosses a layer fails here, whether it sits at the top of a module or inside a
function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "orchestrator"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def modules(package: str) -> list[Path]:
    return sorted((PKG / package).rglob("*.py"))


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in modules(package):
        for name in sorted(imports_of(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PKG.parent)} imports {name}")
    return bad


def test_the_check_can_see_an_import() -> None:
    """Guard against a vacuous check: a known import is found."""
    assert "orchestrator.quoting.powershell_quote" in imports_of(PKG / "facts" / "batch.py")


def packages() -> list[str]:
    return sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").is_file())


TOP = ("cli", "maintenance", "lab")  # the only packages allowed to sit above the others
RULES = [
    # facts: a command plus a pure parser; they never import transports
    ("facts", ("orchestrator.transports", "paramiko", "winrm")),
    # nothing below the maintenance sequence imports it
    *[(p, ("orchestrator.maintenance",)) for p in packages() if p not in TOP],
    # the CLI is the only importer of click, and nothing imports the CLI
    *[(p, ("orchestrator.cli", "click")) for p in packages() if p != "cli"],
    # execution is ansible-runner only: it does not reach into the audit or the transports
    ("execution", ("orchestrator.audit", "paramiko", "winrm")),
    # policy and windows are pure: no hosts, no state store
    ("policy", ("orchestrator.transports", "orchestrator.changelog", "orchestrator.audit")),
    ("windows", ("orchestrator.transports", "orchestrator.changelog", "orchestrator.audit")),
    # plan judges from git objects and stored results: it never reaches a host or runs Ansible
    ("gitops", ("orchestrator.transports", "orchestrator.execution", "orchestrator.hostfacts",
                "orchestrator.hostpool", "paramiko", "winrm", "ansible_runner")),
    # only the CLI decides to plan or apply (reporting shows a plan); nothing else imports gitops
    *[(p, ("orchestrator.gitops",)) for p in packages()
      if p not in ("cli", "gitops", "reporting")],
    # the report's figures come from the store alone: no host, no playbook, no rollout
    ("compliance", ("orchestrator.transports", "orchestrator.execution",
                    "orchestrator.hostfacts", "orchestrator.hostpool", "orchestrator.audit",
                    "orchestrator.patching", "orchestrator.firmware", "orchestrator.reporting",
                    "paramiko", "winrm", "ansible_runner")),
    # reporting formats and decides nothing: it never queries the store itself
    ("reporting", ("orchestrator.changelog", "orchestrator.transports",
                   "orchestrator.execution")),
    # only the HTML report draws charts
    *[(p, ("pygal",)) for p in packages() if p != "reporting"],
]


def test_the_rules_cover_the_packages() -> None:
    assert {"audit", "facts", "transports", "execution", "policy", "windows"} <= set(packages())


@pytest.mark.parametrize(("package", "forbidden"), RULES)
def test_layer_imports(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_only_transports_import_paramiko_and_winrm() -> None:
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("transports", "lab"):
            continue
        bad += [f"{rel} imports {n}" for n in imports_of(path)
                if n.split(".")[0] in ("paramiko", "winrm")]
    assert bad == []
