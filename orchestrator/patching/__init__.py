"""Patching: pending updates (from the `updates.pending` facts), approval decisions under a
PatchPolicy, and rollout plans (batches, failure budget). Pure code: no host, no clock, no
store; callers pass what they know (first-seen dates, today, canary evidence).

    from orchestrator.patching import decide, batches, FailureBudget
    d = decide(policy, update, first_seen=date(2026, 11, 20), today=date(2026, 11, 27))
    d.state, d.approved_on, d.due_on, d.overdue, d.reason
"""

from __future__ import annotations

from orchestrator.patching.approval import decide
from orchestrator.patching.model import (
    CanaryEvidence,
    Decision,
    PendingUpdate,
    PendingUpdates,
)
from orchestrator.patching.rollout import FailureBudget, batch_sizes, batches

__all__ = [
    "CanaryEvidence",
    "Decision",
    "FailureBudget",
    "PendingUpdate",
    "PendingUpdates",
    "batch_sizes",
    "batches",
    "decide",
]
