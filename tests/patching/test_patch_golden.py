"""Golden cases for patching (one loop per kind; see golden/README.md):

- approval/<case>/policies/ (loaded by the real policy loader) + cases.yml: decisions.
- batches/<case>.yml: batch sizes (or batches of named hosts) for a serial, or the error.
- budget/<case>.yml: the failure budget and `exhausted` after each failed host, or the error.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import PolicyError
from orchestrator.facts.updates import PendingUpdate
from orchestrator.patching import CanaryEvidence, FailureBudget, batch_sizes, batches, decide
from orchestrator.policy.loader import load_policies

GOLDEN = Path(__file__).parent / "golden"
APPROVAL = sorted(p for p in (GOLDEN / "approval").iterdir() if p.is_dir())
BATCHES = sorted((GOLDEN / "batches").glob("*.yml"))
BUDGET = sorted((GOLDEN / "budget").glob("*.yml"))


def _approval_cases() -> list[Any]:
    out = []
    for folder in APPROVAL:
        for case in yaml.safe_load((folder / "cases.yml").read_text(encoding="utf-8")):
            out.append(pytest.param(folder, case, id=f"{folder.name}: {case['name']}"))
    return out


def _update(raw: dict) -> PendingUpdate:
    return PendingUpdate(
        name=raw["name"],
        current=raw.get("current", "1.0"),
        available=raw.get("available", "1.1"),
        classification=raw["classification"],
        severity=raw.get("severity"),
        released=raw.get("released"),
        source=raw.get("source", "dnf"),
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


@pytest.mark.parametrize(("folder", "case"), _approval_cases())
def test_approval(folder: Path, case: dict) -> None:
    policies = load_policies(folder / "policies")
    (policy,) = policies.patch_policies.values()
    canary = case.get("canary")
    evidence = (
        CanaryEvidence(canary["installed_since"], canary.get("failure_percent", 0))
        if canary
        else None
    )
    d = decide(
        policy,
        _update(case["update"]),
        first_seen=case["first_seen"],
        today=case["today"],
        promotion=evidence,
    )
    exp = case["expect"]
    got = {
        "state": d.state,
        "rule": d.rule,
        "approvedOn": _iso(d.approved_on),
        "dueOn": _iso(d.due_on),
        "overdue": d.overdue,
        "reason": d.reason,
    }
    want = {k: _iso(v) if isinstance(v, date) else v for k, v in exp.items()}
    assert got == want
    assert "\n" not in d.reason


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", BATCHES, ids=lambda p: p.stem)
def test_batches(path: Path) -> None:
    case = _load(path)
    hosts = case["hosts"]
    names = [f"h{i:03d}" for i in range(hosts)] if isinstance(hosts, int) else hosts
    if "error" in case:
        with pytest.raises(PolicyError) as exc:
            batches(names, case["serial"])
        assert case["error"] in str(exc.value)
        assert "\n" not in str(exc.value)
        return
    plan = batches(names, case["serial"])
    if "sizes" in case:
        assert [len(b) for b in plan] == case["sizes"]
        assert batch_sizes(len(names), case["serial"]) == case["sizes"]
        assert [h for b in plan for h in b] == names
    else:
        assert plan == case["batches"]


@pytest.mark.parametrize("path", BUDGET, ids=lambda p: p.stem)
def test_budget(path: Path) -> None:
    case = _load(path)
    if "error" in case:
        with pytest.raises(PolicyError) as exc:
            FailureBudget(case["max_failures"], case["total"])
        assert case["error"] in str(exc.value)
        return
    budget = FailureBudget(case["max_failures"], case["total"])
    assert budget.budget == case["budget"]
    assert not budget.exhausted
    seen = [budget.spend(host, reason) for host, reason in case["spend"]]
    assert seen == case["exhausted"]
    assert budget.exhausted == case["exhausted"][-1]
    if "spent_by" in case:
        assert budget.spent_by == [tuple(x) for x in case["spent_by"]]
    if "describe" in case:
        assert budget.describe() == case["describe"]


def test_every_golden_folder_has_cases() -> None:
    assert len(APPROVAL) >= 7 and len(BATCHES) >= 10 and len(BUDGET) >= 8
    for folder in APPROVAL:
        assert (folder / "cases.yml").is_file(), folder
        assert any((folder / "policies").glob("*.yml")), folder
