"""Hosts whose baselines, patch policy, firmware policy or windows change.

Each host is resolved against the inventory under both revisions: the asset groups it
belongs to, and through them the objects that govern it. A category changes for a host when
the names it is governed by differ, or when one of those objects' content differs. Freezes
count under `windows` (they decide when the host's work may happen). Hosts that share their
groups under both revisions share one answer, so 5,000 hosts cost little more than their
distinct group combinations.
"""

from __future__ import annotations

import bisect
import fnmatch
from dataclasses import dataclass
from typing import Any

from orchestrator.inventory.model import Inventory
from orchestrator.policy.model import AssetGroup, PolicySet

CATEGORIES = ("baselines", "patchPolicy", "firmwarePolicy", "windows")


@dataclass(frozen=True)
class HostChange:
    host: str
    joined: tuple[str, ...]  # asset groups it newly belongs to
    left: tuple[str, ...]  # asset groups it no longer belongs to
    categories: tuple[str, ...]  # of CATEGORIES

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "groupsJoined": list(self.joined),
                "groupsLeft": list(self.left), "changes": list(self.categories)}


class Membership:
    """Which hosts an asset group selects, memoised by its selectors (the same selectors
    under both revisions are matched once)."""

    def __init__(self, inv: Inventory) -> None:
        self.names = sorted(inv.hosts)
        self.by_group: dict[str, set[str]] = {}
        for name, host in inv.hosts.items():
            for g in host.groups:
                self.by_group.setdefault(g, set()).add(name)
        self._memo: dict[tuple[tuple[str, ...], tuple[str, ...]], frozenset[str]] = {}
        self.groups_of: dict[int, tuple[PolicySet, dict[str, frozenset[str]]]] = {}

    def _starting(self, pattern: str) -> list[str]:
        """The names that begin with the pattern's literal head (before any * ? or [): the
        only ones it can match, found by bisection in the sorted names."""
        cut = min((i for i, ch in enumerate(pattern) if ch in "*?["), default=len(pattern))
        head = pattern[:cut]
        if not head:
            return self.names
        lo = hi = bisect.bisect_left(self.names, head)
        while hi < len(self.names) and self.names[hi].startswith(head):
            hi += 1
        return self.names[lo:hi]

    def matching(self, patterns: tuple[str, ...]) -> frozenset[str]:
        """Host names matching any of the fnmatch patterns (case-sensitive)."""
        hosts: set[str] = set()
        for pattern in patterns:
            hosts.update(n for n in self._starting(pattern) if fnmatch.fnmatchcase(n, pattern))
        return frozenset(hosts)

    def members(self, group: AssetGroup) -> frozenset[str]:
        key = (group.inventory_groups, group.patterns)
        found = self._memo.get(key)
        if found is None:
            hosts: set[str] = set()
            for g in group.inventory_groups:
                hosts |= self.by_group.get(g, set())
            found = self._memo[key] = frozenset(hosts | self.matching(group.patterns))
        return found


def host_groups(ps: PolicySet, members: Membership) -> dict[str, frozenset[str]]:
    """host -> the asset groups it belongs to (hosts in none are left out); kept by the
    Membership for each policy set."""
    found = members.groups_of.get(id(ps))
    if found is not None and found[0] is ps:
        return found[1]
    out: dict[str, set[str]] = {}
    for name, group in ps.groups.items():
        for host in members.members(group):
            out.setdefault(host, set()).add(name)
    result = {h: frozenset(g) for h, g in out.items()}
    members.groups_of[id(ps)] = (ps, result)
    return result


def _governed(ps: PolicySet, groups: frozenset[str], platform: str
              ) -> dict[str, dict[str, set[str]]]:
    """category -> kind -> the names of the objects governing a host of `groups` (baselines
    of its platform only: a Windows baseline does not govern a Linux host)."""
    gs = [ps.groups[g] for g in sorted(groups)]
    freezes = {f.name for f in ps.freezes.values() if any(f.applies_to(g) for g in groups)}
    return {
        "baselines": {"Baseline": {b for g in gs for b in g.baselines
                                   if b in ps.baselines and ps.baselines[b].platform == platform}},
        "patchPolicy": {"PatchPolicy": {g.patch_policy for g in gs if g.patch_policy}},
        "firmwarePolicy": {"FirmwarePolicy": {g.firmware_policy for g in gs
                                              if g.firmware_policy}},
        "windows": {"Window": {w for g in gs for w in g.windows}, "Freeze": freezes},
    }


def host_changes(base: PolicySet, head: PolicySet, inv: Inventory,
                 changed: dict[str, set[str]],
                 members: Membership | None = None) -> list[HostChange]:
    """Every host of the inventory whose governing objects change, by name."""
    members = members or Membership(inv)
    before, after = host_groups(base, members), host_groups(head, members)
    memo: dict[tuple[frozenset[str], frozenset[str], str], tuple[str, ...]] = {}
    out: list[HostChange] = []
    empty: frozenset[str] = frozenset()
    for host in sorted(set(before) | set(after)):
        old, new = before.get(host, empty), after.get(host, empty)
        platform = inv.hosts[host].platform
        key = (old, new, platform)
        cats = memo.get(key)
        if cats is None:
            cats = memo[key] = _categories(base, head, old, new, changed, platform)
        if cats or old != new:
            out.append(HostChange(host, tuple(sorted(new - old)), tuple(sorted(old - new)),
                                  cats))
    return out


def _categories(base: PolicySet, head: PolicySet, old: frozenset[str], new: frozenset[str],
                changed: dict[str, set[str]], platform: str) -> tuple[str, ...]:
    was, now = _governed(base, old, platform), _governed(head, new, platform)
    out = []
    for cat in CATEGORIES:
        for kind, names in now[cat].items():
            if names != was[cat][kind] or names & changed[kind]:
                out.append(cat)
                break
    return tuple(out)
