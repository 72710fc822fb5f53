"""Approval of one pending update under a PatchPolicy (SPEC section 1, PatchPolicy). Pure.

Order, as SPEC says:
1. `rejected` (fnmatch patterns on the package name, case-sensitive) beats everything.
2. `approved` (fnmatch patterns too; a plain name matches only itself) approves at once: on the
   age base date. Its deadline comes from the first rule that matches the update, if any.
3. Otherwise the first rule whose classification (or `any`) and severity list match decides:
   approved on `age >= approveAfterDays`, i.e. from `base + approveAfterDays` on.
4. `promotion` (the canary gate) holds any approval back until the afterGroup installed the same
   version at least `minDays` ago with at most `maxFailurePercent` failures.

Age counts from the release date where the source gives one (dnf, zypper, Windows), else from
the first day the update was seen pending in the group. `due_on = approved_on + deadlineDays`
is the last day the update is on time; it is overdue from the day after (today > due_on), so
`deadlineDays: 0` means "install on the day it is approved".
A rule's severity list matches an update whose (normalised) severity is in it; `important` and
`moderate` mean `high` and `medium`; an update without severity matches a list only when the
list holds `unknown`. No severity list: any severity.
"""

from __future__ import annotations

from datetime import date, timedelta
from fnmatch import fnmatchcase

from orchestrator.facts.updates import SEVERITY_WORDS
from orchestrator.patching.model import CanaryEvidence, Decision, PendingUpdate
from orchestrator.policy.model import ApprovalRule, PatchPolicy, Promotion

# a policy's severity words are the hosts' (MSRC, dnf, zypper), plus `unknown`: no severity
_POLICY_SEVERITY: dict[str, str | None] = {**SEVERITY_WORDS, "unknown": None}


def _plus(day: date, days: int) -> date | None:
    """day + days, or None when that lies beyond the calendar (a huge policy number)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None


def _first_match(name: str, patterns: tuple[str, ...]) -> str | None:
    return next((p for p in patterns if fnmatchcase(name, p)), None)


def rule_matches(rule: ApprovalRule, update: PendingUpdate) -> bool:
    if rule.classification != "any" and rule.classification != update.classification:
        return False
    if rule.severity is None:
        return True
    wanted = {_POLICY_SEVERITY.get(s.lower(), s.lower()) for s in rule.severity}
    return update.severity in wanted


def _describe(index: int, rule: ApprovalRule, basis: str) -> str:
    sev = f", severity {'/'.join(rule.severity)}" if rule.severity else ""
    return (
        f"rule {index}: classification {rule.classification}{sev}, "
        f"approved {rule.approve_after_days} days after {basis}"
    )


def _pct(value: float) -> str:
    return f"{value:g}%"


def decide(
    policy: PatchPolicy,
    update: PendingUpdate,
    *,
    first_seen: date,
    today: date,
    promotion: CanaryEvidence | None = None,
) -> Decision:
    """The decision for one update on one host of a group, as of `today`.

    `first_seen`: the first day the orchestrator saw this package at this version pending in
    the group (kept in the state store). `promotion`: evidence from the policy's
    promotion.afterGroup for this package and version (None: none found).
    """
    base, basis = (
        (update.released, "release") if update.released is not None else (first_seen, "first seen")
    )
    age = (today - base).days
    common = {"age_from": base, "age_days": age}
    rejected = _first_match(update.name, policy.rejected)
    approved = _first_match(update.name, policy.approved)
    if rejected is not None:
        beats = f"; it beats approved {approved!r}" if approved is not None else ""
        return Decision(
            "rejected", f"rejected: {update.name} matches {rejected!r}{beats}", **common
        )
    found = next(
        ((i, r) for i, r in enumerate(policy.rules, 1) if rule_matches(r, update)), None
    )
    index, rule = found if found else (None, None)

    if approved is not None:
        approved_on: date | None = base
        reason = f"approved list: {update.name} matches {approved!r}"
        reason += f", deadline from rule {index}" if rule else ", no rule gives it a deadline"
    elif rule is None:
        sev = update.severity or "none"
        return Decision(
            "not_approved",
            f"no rule matches classification {update.classification}, severity {sev}",
            **common,
        )
    else:
        approved_on = _plus(base, rule.approve_after_days)
        reason = _describe(index, rule, basis)  # type: ignore[arg-type]
        if approved_on is None or today < approved_on:
            return Decision(
                "not_approved",
                f"{reason}: {max(age, 0)} of {rule.approve_after_days} days",
                rule=index,
                approved_on=approved_on,
                due_on=_due(approved_on, rule),
                **common,
            )

    if policy.promotion is not None:
        held, approved_on, note = _canary(policy.promotion, promotion, approved_on, today)
        if held:
            return Decision("not_approved", note, rule=index, **common)
        reason += f"; {note}"
    due_on = _due(approved_on, rule)
    overdue = due_on is not None and today > due_on
    if due_on is not None:
        reason += f": approved {approved_on}, due {due_on}" + (", overdue" if overdue else "")
    else:
        reason += f": approved {approved_on}"
    return Decision(
        "approved",
        reason,
        rule=index,
        approved_on=approved_on,
        due_on=due_on,
        overdue=overdue,
        **common,
    )


def _due(approved_on: date | None, rule: ApprovalRule | None) -> date | None:
    if approved_on is None or rule is None:
        return None
    return _plus(approved_on, rule.deadline_days)


def _canary(
    gate: Promotion, evidence: CanaryEvidence | None, approved_on: date | None, today: date
) -> tuple[bool, date | None, str]:
    """(held back?, the approval date after the gate, a one-line note)."""
    group = gate.after_group
    if evidence is None or evidence.installed_since is None:
        return True, approved_on, f"canary: not yet installed in {group}"
    if evidence.failure_percent > gate.max_failure_percent:
        return (
            True,
            approved_on,
            f"canary: {_pct(evidence.failure_percent)} failures > "
            f"{_pct(gate.max_failure_percent)}",
        )
    days = (today - evidence.installed_since).days
    if days < gate.min_days:
        return True, approved_on, f"canary: {max(days, 0)} of {gate.min_days} days"
    proven = _plus(evidence.installed_since, gate.min_days) or today
    return (
        False,
        max(approved_on, proven) if approved_on is not None else proven,
        f"canary: {days} days in {group}, {_pct(evidence.failure_percent)} failures",
    )
