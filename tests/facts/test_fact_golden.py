"""Every golden case: tests/facts/golden/<fact>/<case>.txt is a fact's stdout, the matching
<case>.expected.json gives args (and rc/stderr when not 0/empty) and either the parsed value
or a substring of the error. See golden/README.md for where each output comes from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.facts import FACTS, FactBatch, FactRequest, to_jsonable

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.txt"))


def test_every_fact_has_golden_cases():
    assert {p.parent.name for p in CASES} == set(FACTS)
    for txt in CASES:
        assert txt.with_suffix(".expected.json").exists(), txt


@pytest.mark.parametrize("txt", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(txt: Path):
    expected = json.loads(txt.with_suffix(".expected.json").read_text())
    fact = txt.parent.name
    req = FactRequest(fact, tuple(expected.get("args", [])))
    batch = FactBatch(FACTS[fact].shell, nonce="0123456789abcdef")
    batch.add(req)
    assert req in batch.requests, batch.rejected
    rc = expected.get("rc", 0)
    body = txt.read_bytes()
    stdout = body + f"\n@@ORCH:0123456789abcdef:0:{rc}\n".encode()
    stderr = expected.get("stderr", "").encode() + f"\n@@ORCH:0123456789abcdef:0:{rc}\n".encode()
    result = batch.parse(stdout, stderr)[req]
    if "error" in expected:
        assert result.error is not None, f"expected an error, got {result.value!r}"
        assert expected["error"] in result.error
        assert "\n" not in result.error
    else:
        assert result.error is None, result.error
        assert to_jsonable(result.value) == expected["value"]
    assert result.lossy == expected.get("lossy", False)
