"""Golden cases: every tests/windows/golden/*.yml (concrete dates, expected occurrences,
open/closed answers and trigger decisions) becomes a test through this one loop."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml
from window_builders import make_freeze, make_window, policy_set

from orchestrator.windows.check import check_group, trigger_guard
from orchestrator.windows.occurrences import next_occurrences

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.yml"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    window = make_window(case["window"])
    freezes = [make_freeze(f) for f in case.get("freezes", [])]
    ps = policy_set([window], freezes)
    spans_for_web = [f for f in freezes if f.applies_to("web")]
    assert case.get("next") or case.get("checks") or case.get("triggers"), "empty case"

    for block in case.get("next", []):
        after = datetime.fromisoformat(block["from"])
        count = block.get("count", len(block["expect"]))
        occs = next_occurrences(window, after, count)
        got = []
        for o, want in zip(occs, block["expect"], strict=False):
            from orchestrator.windows.check import blocked_by
            from orchestrator.windows.freezes import spans

            j = o.to_json(blocked_by(o, spans(spans_for_web)))
            row = [j["start"], j["end"], j["cutoff"]]
            if len(want) == 4:
                row.append(j["blockedBy"])
            got.append(row)
            assert j["occurrence"] == f"{window.name}@{j['start']}"
            assert o.end - o.start == window.duration  # elapsed, whatever the wall clock says
        assert got == block["expect"], f"{path.name}: from {block['from']}"
        assert len(occs) == len(block["expect"]), f"{path.name}: expected no more occurrences"

    for occ_id in case.get("ids", []):
        start = datetime.fromisoformat(occ_id.split("@", 1)[1])
        (o,) = next_occurrences(window, start, 1, ongoing=False)
        assert o.id == occ_id

    for chk in case.get("checks", []):
        at = datetime.fromisoformat(chk["at"])
        result = check_group(ps, "web", at)
        assert result.open is chk["open"], f"{path.name} at {chk['at']}: {result.reason}"
        if "reason" in chk:
            assert chk["reason"] in result.reason, result.reason
        if result.open:
            assert result.occurrence is not None and result.occurrence.contains(at)
        else:
            assert result.reason and result.to_json()["occurrence"] is None

    for trig in case.get("triggers", []):
        at = datetime.fromisoformat(trig["at"])
        decision = trigger_guard(window, at)
        assert decision.run is trig["run"], f"{path.name} at {trig['at']}: {decision.reason}"
        if "reason" in trig:
            assert trig["reason"] in decision.reason, decision.reason
