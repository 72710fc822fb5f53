"""Golden cases: each folder under golden/ holds policy files and `expected.txt`, the exact
error lines `load_policies` must report (paths relative to the folder; empty: valid)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy.loader import load_policies

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def problems_of(case: Path) -> list[str]:
    try:
        ps = load_policies(case)
    except PolicyError as exc:
        return [line.replace(f"{case}/", "") for line in exc.problems]
    assert ps.by_kind("Window") is not None
    return []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path) -> None:
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert problems_of(case) == expected


def test_every_case_has_expected_output() -> None:
    assert CASES, "no golden cases found"
    for case in CASES:
        assert (case / "expected.txt").is_file(), f"{case.name} has no expected.txt"
