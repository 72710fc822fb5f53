"""rejectedAction on the controller's side (no lab): the rejected patterns as the playbooks get
them, the change-log records of blocked packages and of rejected packages pulled in as
dependencies, and the text report."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.patching.apply import ApplyEvents, ApplyRun, HostOutcome, _extravars
from orchestrator.patching.dependencies import held_back, install_entries, rejected_vars
from orchestrator.reporting.patch_text import apply_text

LIB = {"name": "acme-lib", "version": "2.0", "rejected": True, "pattern": "acme-lib*",
       "before": None}


class FakeCtx:
    """RunContext's record API, kept in memory."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def entry(self, action: str, status: str, **details: Any) -> tuple[str, str, dict]:
        return (action, status, details)

    def record_all(self, entries: list) -> None:
        self.records.extend(entries)

    def record(self, action: str, status: str, **details: Any) -> None:
        self.records.append((action, status, details))


def _policy(rejected: tuple[str, ...], action: str = "block") -> Any:
    return SimpleNamespace(rejected=rejected, rejected_action=action)


@pytest.mark.parametrize("name", ["linux-image-6.1", "linux-image-", "xlinux-image-6.1",
                                  "linux-image", "Linux-Image-6.1", "linux-image-6.1\nfoo",
                                  "acme-lib", "acme-lib2", "libacme-lib", "a.b", "axb", "[x]",
                                  "x", "openssl"])
def test_rejected_regexes_match_exactly_what_fnmatchcase_matches(name: str) -> None:
    """The playbooks match names with the regex test (fullmatch): the same answer as the
    approval's fnmatchcase for every name, anchored at both ends, case-sensitive."""
    patterns = ("linux-image-*", "acme-lib?", "acme-lib", "a.b", "[[]x]", "open*ssl")
    got = rejected_vars(_policy(patterns))
    assert got["orchestrator_rejected_action"] == "block"
    assert [r["pattern"] for r in got["orchestrator_rejected"]] == list(patterns)
    for r in got["orchestrator_rejected"]:
        assert bool(re.fullmatch(r["regex"], name)) == fnmatchcase(name, r["pattern"]), r


def test_the_playbooks_get_the_patterns_and_the_action() -> None:
    policy = SimpleNamespace(
        rejected=("acme-lib*",), rejected_action="allowAsDependency", reboot="never",
        disk_free_percent_min=None,
        health_checks=SimpleNamespace(services=(), command=None,
                                      timeout=SimpleNamespace(total_seconds=lambda: 60)))
    got = _extravars(policy, {"web-01": [{"name": "acme-app", "version": "1.1"}]})
    assert got["orchestrator_host_packages"] == {"web-01": [{"name": "acme-app",
                                                             "version": "1.1"}]}
    assert got["orchestrator_rejected_action"] == "allowAsDependency"
    assert got["orchestrator_rejected"] == [{"pattern": "acme-lib*",
                                             "regex": r"(?s:acme\-lib.*)\Z"}]


BLOCKED = {"name": "acme-app", "wanted": "1.1", "before": "1.0", "after": "1.0",
           "status": "blocked", "reason": "would pull rejected acme-lib 2.0 (acme-lib*)",
           "dependencies": [{**LIB, "after": None}]}
TLS = {"name": "acme-tls", "wanted": "1.0+sec1", "before": "1.0", "after": "1.0+sec1",
       "status": "installed"}


def test_blocked_package_is_recorded_and_named_but_is_no_failure() -> None:
    ctx = FakeCtx()
    events = ApplyEvents(ctx, "ring", {"h1": []}, check=False)  # type: ignore[arg-type]
    events({"event": "runner_on_ok", "event_data": {
        "host": "h1", "task": "orchestrator: result",
        "res": {"orchestrator_result": {"packages": [BLOCKED, TLS], "failed": False,
                                        "health": {"services": {}, "command_rc": None}}}}})
    installs = [(s, d["package"], d.get("reason"), d.get("dependencyOf"))
                for a, s, d in ctx.records if a == "patch.install"]
    assert installs == [("blocked", "acme-app", BLOCKED["reason"], None),
                        ("installed", "acme-tls", None, None)]
    blocked = next(d for a, s, d in ctx.records if s == "blocked")
    assert blocked["dependencies"] == [{"name": "acme-lib", "version": "2.0", "rejected": True,
                                        "pattern": "acme-lib*", "after": None}]
    out = events.outcome("h1")
    assert out.status == "done"
    assert out.reason == ("held back (rejectedAction block): acme-app 1.1 would pull rejected "
                          "acme-lib 2.0 (acme-lib*)")
    check = ApplyEvents(FakeCtx(), "ring", {"h1": []}, check=True)  # type: ignore[arg-type]
    check.results["h1"] = {"packages": [BLOCKED, TLS]}
    assert check.outcome("h1").status == "would-install"
    assert check.outcome("h1").reason.startswith("held back (rejectedAction block): acme-app")


def test_rejected_dependency_pulled_in_gets_its_own_record() -> None:
    app = {"name": "acme-app", "wanted": "1.1", "before": "1.0", "after": "1.1",
           "status": "installed",
           "dependencies": [{**LIB, "after": "2.0"},
                            {"name": "acme-common", "version": "3", "rejected": False,
                             "pattern": None, "before": None, "after": "3"}]}
    failed = {**app, "name": "acme-other", "status": "failed", "after": "1.0"}
    ctx = FakeCtx()
    entries = install_entries(ctx, "h1", "ring", [app, failed])  # type: ignore[arg-type]
    got = [(s, d["package"], d.get("dependencyOf")) for _, s, d in entries]
    # the rejected dependency of the installed package only; never the unrejected one, never
    # one of a package whose install failed
    assert got == [("installed", "acme-app", None), ("installed", "acme-lib", "acme-app"),
                   ("failed", "acme-other", None)]
    lib = entries[1][2]
    assert (lib["version"], lib["rejected"], lib["pattern"]) == ("2.0", True, "acme-lib*")
    assert "allowAsDependency" in lib["reason"]
    assert [d["name"] for d in entries[0][2]["dependencies"]] == ["acme-lib", "acme-common"]
    assert held_back([app, failed]) == ""


def test_text_report_shows_blocked_packages_and_dependencies() -> None:
    run = ApplyRun("r1", "ring", status="check")
    run.hosts["h1"] = HostOutcome("h1", "would-install", held_back([BLOCKED]), [BLOCKED, TLS])
    text = apply_text(run)
    assert "blocked                  acme-app 1.0 -> 1.1 (now 1.0): would pull rejected " \
           "acme-lib 2.0 (acme-lib*)" in text
    assert "        + acme-lib 2.0 (dependency; rejected acme-lib*)" in text
    assert "would-install    h1: held back (rejectedAction block)" in text
