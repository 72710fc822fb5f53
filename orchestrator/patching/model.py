"""The patching model: what a host is missing (PendingUpdate) and what the policy says about it
(Decision), plus the canary evidence the caller gathers from the change log.

PendingUpdate is made by the fact parsers (orchestrator/facts/updates.py) and re-exported here:
patching sits above facts, so the type lives where the lower layer can make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from orchestrator.facts.updates import (
    CLASSIFICATIONS,
    SEVERITIES,
    PendingUpdate,
    PendingUpdates,
    normalise_severity,
)

State = Literal["not_approved", "rejected", "approved"]


@dataclass(frozen=True)
class CanaryEvidence:
    """What the promotion's afterGroup did with this package at this version, proven from
    change-log records: the day it was first installed there (None: not yet) and the share of
    that group's hosts whose install of it failed."""

    installed_since: date | None
    failure_percent: float = 0.0


@dataclass(frozen=True)
class Decision:
    state: State
    reason: str  # one line, e.g. "rule 2: classification any, ...: 3 of 7 days"
    rule: int | None = None  # 1-based index of the rule that matched; None: no rule matched
    approved_on: date | None = None  # approved (or, while not_approved by age, will be) on
    due_on: date | None = None  # last day it is on time; overdue from the day after
    overdue: bool = False
    age_from: date | None = None  # the release date, or the first-seen date
    age_days: int = 0


__all__ = [
    "CLASSIFICATIONS",
    "SEVERITIES",
    "CanaryEvidence",
    "Decision",
    "PendingUpdate",
    "PendingUpdates",
    "State",
    "normalise_severity",
]
