"""Properties of rollout plans over generated fleets and serial lists (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.patching import FailureBudget, batches

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
fleets = st.lists(names, max_size=250)
entries = st.one_of(st.integers(min_value=1, max_value=300),
                    st.integers(min_value=1, max_value=100).map(lambda p: f"{p}%"))
serials = st.lists(entries, min_size=1, max_size=6)


def expected_size(entry: int | str, total: int) -> int:
    if isinstance(entry, str):
        return math.ceil(Fraction(total * int(entry[:-1]), 100))
    return entry


@settings(max_examples=300, deadline=None)
@given(fleets, serials)
def test_every_host_exactly_once_in_order(hosts: list[str], serial: list[int | str]) -> None:
    plan = batches(hosts, serial)
    unique = list(dict.fromkeys(hosts))
    assert [h for b in plan for h in b] == unique
    assert all(plan), "no empty batch"


@settings(max_examples=300, deadline=None)
@given(fleets, serials)
def test_sizes_follow_serial_and_the_last_repeats(hosts: list[str], serial: list[int | str]):
    plan = batches(hosts, serial)
    total = len(set(hosts))
    for i, batch in enumerate(plan):
        want = expected_size(serial[min(i, len(serial) - 1)], total)
        if i < len(plan) - 1:
            assert len(batch) == want
        else:
            assert 1 <= len(batch) <= want
    if total == 0:
        assert plan == []
    else:
        assert len(plan) <= len(serial) + math.ceil(total / expected_size(serial[-1], total))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=100),
       st.lists(names, max_size=60))
def test_percent_budget_floors_and_counts_hosts_once(total: int, pct: int, failed: list[str]):
    budget = FailureBudget(f"{pct}%", total)
    assert budget.budget == total * pct // 100 <= total
    states = [budget.spend(h, "failed") for h in failed]
    distinct = len(dict.fromkeys(failed))
    assert budget.failures == distinct
    assert budget.exhausted == (distinct > budget.budget)
    assert states == sorted(states), "once exhausted, it stays exhausted"
    assert [h for h, _ in budget.spent_by] == list(dict.fromkeys(failed))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=50), st.lists(names, max_size=60))
def test_count_budget_allows_exactly_that_many(count: int, failed: list[str]) -> None:
    budget = FailureBudget(count, 1000)
    for n, host in enumerate(dict.fromkeys(failed), 1):
        assert budget.spend(host, "x") == (n > count)
        assert budget.remaining == max(0, count - n)
