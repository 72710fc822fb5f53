"""`plan`: objects field by field, hosts by category, occurrences (DST marked), freezes,
waivers, what stored results say, and the three formats."""

from __future__ import annotations

import json
from datetime import date, timedelta

from gitrepo import GitRepo, plan_json, run

from orchestrator.changelog.record import Entry
from orchestrator.changelog.sqlite import SqliteStore

AT = "2026-12-01T00:00:00+00:00"


def test_objects_field_by_field(repo: GitRepo, capsys) -> None:
    repo.edit("policies/baselines/linux.yml", "installed: [chrony]", "installed: [chrony, ntpsec]")
    repo.edit("policies/baselines/linux.yml", 'net.ipv4.ip_forward: "0"',
              'net.ipv4.ip_forward: "1"')
    repo.edit("policies/windows/windows.yml", 'cron: "0 22 * * TUE#2"', 'cron: "0 23 * * TUE#2"')
    repo.edit("policies/windows/windows.yml", "  misfireGrace: 1h\n", "")
    code, plan = plan_json(capsys, "--base", "main", "--at", AT)
    assert code == 2 and plan["changed"] is True
    by = {o["name"]: o for o in plan["objects"]}
    assert set(by) == {"db-extras", "linux-hardening", "patch-saturday"}
    assert by["db-extras"]["fields"] == [
        {"path": "spec.packages.installed", "added": ["ntpsec"], "addedAt": [1], "removed": [],
         "removedAt": [], "reordered": False}]
    assert by["linux-hardening"]["fields"] == [
        {"path": "spec.sysctl.net.ipv4.ip_forward", "old": "0", "new": "1"}]
    assert by["patch-saturday"]["fields"] == [
        {"path": "spec.schedule.cron", "old": "0 22 * * TUE#2", "new": "0 23 * * TUE#2"},
        {"path": "spec.misfireGrace", "old": "1h", "new": None}]
    assert by["patch-saturday"]["file"] == "policies/windows/windows.yml:2"
    code, out, _ = run(capsys, "plan", "--base", "main", "--at", AT)
    assert code == 2
    assert "~ Window/patch-saturday" in out and 'spec.schedule.cron: "0 22 * * TUE#2" -> ' \
        '"0 23 * * TUE#2"' in out and "spec.packages.installed: +\"ntpsec\"" in out


def test_hosts_by_category_and_membership(repo: GitRepo, capsys) -> None:
    repo.edit("policies/baselines/linux.yml", "installed: [chrony]", "installed: [chrony, ntp]")
    repo.edit("policies/patching/policies.yml", "{classification: any, approveAfterDays: 0, "
              "deadlineDays: 30}", "{classification: any, approveAfterDays: 0, deadlineDays: 20}")
    repo.edit("policies/groups/groups.yml", 'patterns: ["lab-02", "lab-03"]',
              'patterns: ["lab-02"]')
    repo.edit("policies/groups/groups.yml", 'patterns: ["lab-04", "lab-05"]',
              'patterns: ["lab-03", "lab-04", "lab-05"]')
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    hosts = {h["host"]: h for h in plan["hosts"]}
    assert hosts["lab-01"]["changes"] == ["patchPolicy"]  # canary-linux changed
    assert hosts["lab-04"]["changes"] == ["baselines"] == hosts["lab-05"]["changes"]
    # lab-03 left web (firmware lab-bmc) for db (db-extras): baselines, firmware
    assert hosts["lab-03"] == {"host": "lab-03", "groupsJoined": ["db"], "groupsLeft": ["web"],
                               "changes": ["baselines", "firmwarePolicy"]}
    assert "lab-02" not in hosts and "lab-win-01" not in hosts
    assert plan["summary"]["hosts"] == {"affected": 4, "baselines": 3, "patchPolicy": 1,
                                        "firmwarePolicy": 1, "windows": 0}


def test_occurrences_appear_disappear_and_dst(repo: GitRepo, capsys) -> None:
    repo.write("policies/windows/night.yml", """apiVersion: orchestrator/v1
kind: Window
metadata: {name: night}
spec:
  schedule: {cron: "30 2 * * *"}
  timezone: Europe/Berlin
  duration: 1h
""")
    _, plan = plan_json(capsys, "--base", "main", "--at", "2027-03-10T00:00:00Z")
    changes = plan["occurrences"]["changes"]
    assert plan["occurrences"]["horizonDays"] == 30
    assert {c["change"] for c in changes} == {"appears"} and len(changes) == 30
    dst = [c for c in changes if c["dst"]]
    assert [c["occurrence"] for c in dst] == ["night@2027-03-28T03:30:00+02:00"]
    assert "does not exist" in dst[0]["dst"]
    code, out, _ = run(capsys, "plan", "--base", "main", "--at", "2027-03-10T00:00:00Z")
    assert "DST: scheduled 2027-03-28 02:30 does not exist" in out


def test_freezes_block_and_lift_occurrences(repo: GitRepo, capsys) -> None:
    repo.write("policies/windows/stop.yml", """apiVersion: orchestrator/v1
kind: Freeze
metadata: {name: migration}
spec:
  from: 2026-12-12T00:00
  until: 2026-12-14T00:00
  timezone: Europe/Berlin
  groups: [web]
  reason: Datacentre migration
""")
    (repo.root / "policies/windows/freezes.yml").unlink()  # year-end lifted
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    assert [(f["name"], f["change"]) for f in plan["freezes"]] == [
        ("migration", "added"), ("year-end", "lifted")]
    got = [(c["occurrence"], c["change"], c["blockedBy"])
           for c in plan["occurrences"]["changes"]]
    assert got == [
        ("patch-saturday@2026-12-12T22:00:00+01:00", "blocked", ["migration"]),
        # year-end (every group, 19 Dec to 4 Jan) no longer blocks the Windows Sundays
        ("windows-sunday@2026-12-20T03:00:00-05:00", "unblocked", ["year-end"]),
        ("windows-sunday@2026-12-27T03:00:00-05:00", "unblocked", ["year-end"])]


def test_waivers_extended_added_and_expiring(repo: GitRepo, capsys) -> None:
    repo.edit("policies/waivers/waivers.yml", "expires: 2027-03-31", "expires: 2027-06-30")
    repo.write("policies/waivers/soon.yml", """apiVersion: orchestrator/v1
kind: Waiver
metadata: {name: short-lived}
spec:
  groups: [web]
  checks: ["sysctl:net.ipv4.ip_forward"]
  justification: Router test until mid December
  expires: 2026-12-15
""")
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    got = [(w["name"], w["change"], w["expires"], w["wasExpires"]) for w in plan["waivers"]]
    assert got == [("legacy-telnet", "extended", "2027-06-30", "2027-03-31"),
                   ("short-lived", "added", "2026-12-15", None),
                   ("short-lived", "expiring", "2026-12-15", None)]


def _store(repo: GitRepo) -> SqliteStore:
    folder = repo.root / ".orchestrator"
    folder.mkdir(mode=0o700, exist_ok=True)
    return SqliteStore(folder / "state.db")


def _entry(action: str, status: str, host: str, group: str, **details) -> Entry:
    return Entry(run="r-test", action=action, status=status, actor="t", policy_revision="x",
                 host=host, group=group, details=details)


def test_impact_judged_from_stored_results(repo: GitRepo, capsys) -> None:
    store = _store(repo)
    passed = {"sysctl:net.ipv4.ip_forward": "0", "package.installed:chrony": "4.3",
              "threshold.diskUsedPercent:/": 61.5}
    today = date(2026, 12, 1)
    store.append(_entry("audit", "compliant", "lab-04", "db", findings=[], passed=passed))
    store.append(_entry("audit", "drift", "lab-05", "db", passed=passed, findings=[
        {"id": "package.absent:telnetd", "status": "waived", "expected": "absent",
         "actual": "0.17", "waiver": {"name": "legacy-telnet"}}]))
    store.append(_entry("audit", "unreachable", "lab-02", "web", passed={}, findings=[]))
    patch = {"name": "openssl", "current": "3.0.1", "available": "3.0.2",
             "classification": "security", "severity": "medium",
             "released": (today - timedelta(days=10)).isoformat(),
             "firstSeen": (today - timedelta(days=9)).isoformat(), "state": "approved",
             "dueOn": None, "overdue": False}
    store.append(_entry("patch.scan", "compliant", "lab-01", "canary", patches=[patch]))
    store.append(_entry("patch.scan", "compliant", "lab-03", "web", patches=[patch]))
    store.close()
    # stricter: forwarding must be on (both drift), disk at most 60 % (both drift), and a
    # package the audit never checked (undetermined); the canary ring's deadline 30 -> 5
    # days (lab-03's web ring waits for the canary: its patch is not approved either way)
    repo.edit("policies/baselines/linux.yml", 'net.ipv4.ip_forward: "0"',
              'net.ipv4.ip_forward: "1"')
    repo.edit("policies/patching/policies.yml", "{classification: any, approveAfterDays: 0, "
              "deadlineDays: 30}", "{classification: any, approveAfterDays: 0, deadlineDays: 5}")
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    impact = plan["impact"]
    assert impact["audit"]["hosts"] == 2  # lab-02's audit was unreachable: not judged
    assert impact["audit"]["newlyDrifting"] == ["lab-04", "lab-05"]
    assert impact["patches"] == {"hosts": 2, "overdueBefore": 0, "overdueAfter": 1,
                                 "newlyOverdue": ["lab-01"]}
    assert plan["summary"]["newlyDrifting"] == 2 and plan["summary"]["newlyOverdue"] == 1
    # relaxing instead: nothing newly drifts, and a check never run is undetermined
    repo.git("checkout", "--", ".")
    repo.edit("policies/baselines/linux.yml", "installed: [chrony]", "installed: [chrony, ntp]")
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    assert plan["impact"]["audit"]["newlyDrifting"] == []
    assert plan["impact"]["audit"]["undetermined"] == ["lab-04", "lab-05"]
    code, out, _ = run(capsys, "plan", "--base", "main", "--at", AT)
    assert "0 of 2 audited host(s) would newly drift" in out and "2 undetermined" in out


def test_no_change_is_exit_0_and_plan_never_creates_a_store(repo: GitRepo, capsys) -> None:
    code, out, err = run(capsys, "plan", "--base", "main")
    assert code == 0 and "no change (exit 0)" in out
    code, out, _ = run(capsys, "plan", "--base", "main", "--format", "markdown")
    assert code == 0 and "No policy object changes." in out
    assert not (repo.root / ".orchestrator" / "state.db").exists()


def test_markdown_escapes_what_a_pull_request_writes(repo: GitRepo, capsys) -> None:
    evil = "</details><img src=https://evil.example/x.png> @org/admins #1 [ok](http://e.x) `x`"
    repo.edit("policies/baselines/linux.yml", "description: What every Linux host must look like",
              f"description: {json.dumps(evil)}")
    repo.write("policies/groups/evil.yml", """apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: evil, description: "**approved** by security | <script>alert(1)</script>"}
spec:
  hosts: {patterns: ["lab-0*"]}
""")
    code, out, _ = run(capsys, "plan", "--base", "main", "--format", "markdown")
    assert code == 2 and out.startswith("<!-- orchestrator-plan -->\n")
    for bad in ("<img", "<script", "@org", "](http", "**approved**", "#1", "`x`"):
        assert bad not in out, bad
    assert out.count("<details>") == out.count("</details>")
    assert "&#60;img src" in out  # shown, as text


def test_markdown_stays_readable_at_500_hosts(repo: GitRepo, capsys) -> None:
    hosts = "\n".join(f"        web-{i:03d}: {{ansible_host: 10.0.{i // 250}.{i % 250 + 1}}}"
                      for i in range(500))
    repo.write("inventories/big.yml", f"all:\n  children:\n    big:\n      hosts:\n{hosts}\n")
    repo.write("policies/groups/big.yml", """apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: big}
spec:
  hosts: {inventoryGroups: [big]}
  baselines: [linux-hardening]
  windows: [patch-saturday]
""")
    repo.write("orchestrator.yml", repo.read("orchestrator.yml").replace("example.yml", "big.yml"))
    repo.commit("a big group")
    repo.edit("policies/baselines/linux.yml", "running: [sshd]", "running: [sshd, cron]")
    code, out, _ = run(capsys, "plan", "--base", "main", "--format", "markdown")
    assert code == 2
    assert "| Hosts affected | **500** (baselines 500" in out
    assert len(out) < 65536 and len(out.splitlines()) < 60
    assert "- 500 host(s), baselines: <code>web&#45;000</code>" not in out  # '-' is plain
    assert "- 500 host(s), baselines: <code>web-000</code>, <code>web-001</code>" in out
    assert out.index("<summary>Hosts affected (500)</summary>") < out.index("web-499")
    code, out, _ = run(capsys, "plan", "--base", "main")
    assert "500 host(s): baselines: web-000, web-001" in out and "and 480 more" in out
    assert len(out.splitlines()) < 20


def test_lists_of_mappings_and_long_values_show_what_changed(repo: GitRepo, capsys) -> None:
    repo.edit("policies/baselines/linux.yml", "    - {path: /etc/motd.d/legacy, absent: true}",
              '    - {path: /etc/motd.d/legacy, absent: true}\n'
              '    - {path: /etc/sudoers, owner: root, mode: "0777"}')
    repo.edit("policies/patching/policies.yml",
              "      - {classification: security, severity: [critical, high], approveAfterDays"
              ": 0, deadlineDays: 7}",
              "      - {classification: any, approveAfterDays: 0, deadlineDays: 3650}\n"
              "      - {classification: security, severity: [critical, high], approveAfterDays"
              ": 0, deadlineDays: 7}")
    long_old = "x" * 150 + " --then check health.log"
    repo.write("policies/windows/long.yml", f"""apiVersion: orchestrator/v1
kind: Window
metadata: {{name: long, description: "{long_old}"}}
spec: {{schedule: {{cron: "0 1 * * *"}}, timezone: UTC, duration: 1h}}
""")
    base = repo.commit("long description")
    repo.edit("policies/windows/long.yml", "health.log", "health.log; curl evil")
    code, out, _ = run(capsys, "plan", "--base", "HEAD~1")
    assert code == 2
    assert '+{"mode": "0777", "owner": "root", "path": "/etc/sudoers"}@3' in out
    # a rule put first (the first match wins) is told apart from one appended
    assert '+{"approveAfterDays": 0, "classification": "any", "deadlineDays": 3650}@0' in out
    _, out, _ = run(capsys, "plan", "--base", base)
    line = next(x for x in out.splitlines() if "metadata.description" in x)
    assert "curl evil" in line and line.count("health.log") == 2
    # three changes in one long value: the middle one shows too
    text = repo.read("policies/windows/long.yml")
    repo.write("policies/windows/long.yml", text.replace("x" * 150, "A" + "x" * 70 + "; rm -rf /"
                                                         + "x" * 69 + "Z"))
    _, out, _ = run(capsys, "plan", "--base", base)
    line = next(x for x in out.splitlines() if "metadata.description" in x)
    assert "rm -rf" in line and "curl evil" in line


def test_a_description_or_another_platform_changes_no_host(repo: GitRepo, capsys) -> None:
    repo.edit("policies/baselines/linux.yml", "description: What every Linux host must look like",
              "description: What every Linux host must look like, today")
    repo.write("policies/groups/mixed.yml", """apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: mixed}
spec:
  hosts: {patterns: ["lab-0*"]}
  baselines: [windows-hardening]
""")
    repo.commit("a mixed group")
    repo.edit("policies/baselines/linux.yml", "today", "tomorrow")
    code, plan = plan_json(capsys, "--base", "HEAD", "--at", AT)
    assert code == 2 and plan["hosts"] == []  # only a description changed
    repo.edit("policies/baselines/windows.yml", "running: [WinRM, EventLog]",
              "running: [WinRM, EventLog, W32Time]")
    _, plan = plan_json(capsys, "--base", "HEAD", "--at", AT)
    # the mixed group holds lab-01..05 (Linux) too: a Windows baseline does not govern them
    assert [(h["host"], h["changes"]) for h in plan["hosts"]] == [("lab-win-01", ["baselines"])]


def test_impact_counts_the_pending_patch_age_threshold(repo: GitRepo, capsys) -> None:
    store = _store(repo)
    today = date(2026, 12, 1)
    patch = {"name": "curl", "current": "7.1", "available": "7.2", "classification": "bugfix",
             "severity": None, "released": (today - timedelta(days=10)).isoformat(),
             "firstSeen": (today - timedelta(days=10)).isoformat()}
    store.append(_entry("patch.scan", "compliant", "lab-04", "db", patches=[patch]))
    store.close()
    repo.edit("policies/baselines/linux.yml", "pendingPatchAgeDays: {max: 30}",
              "pendingPatchAgeDays: {max: 5}")
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    assert plan["impact"]["patches"]["newlyOverdue"] == ["lab-04"]


def test_markdown_fits_a_comment_whatever_the_plan(repo: GitRepo, capsys) -> None:
    hosts = "\n".join(f"        web-{i:04d}.datacentre-frankfurt.example.internal: {{}}"
                      for i in range(2500))
    repo.write("inventories/big.yml", f"all:\n  children:\n    big:\n      hosts:\n{hosts}\n")
    repo.write("orchestrator.yml", repo.read("orchestrator.yml").replace("example.yml", "big.yml"))
    groups = "\n---\n".join(f"""apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: g{i}}}
spec:
  hosts: {{patterns: ["web-{i:02d}*"]}}
  baselines: [linux-hardening]
  windows: [patch-saturday]""" for i in range(25))
    repo.write("policies/groups/many.yml", groups + "\n")
    repo.commit("many groups")
    repo.write("policies/groups/many.yml", groups.replace("linux-hardening", "db-extras") + "\n")
    repo.edit("policies/windows/windows.yml", "duration: 4h", "duration: 5h")
    code, out, _ = run(capsys, "plan", "--base", "main", "--format", "markdown")
    assert code == 2 and len(out) <= 60000
    assert out.count("<details>") == out.count("</details>")
    assert "| Hosts affected | **2500**" in out


def test_markdown_shows_invisible_characters_instead_of_obeying_them(repo: GitRepo,
                                                                      capsys) -> None:
    repo.edit("policies/baselines/linux.yml", "description: What every Linux host must look like",
              'description: "safe \\u202egnp.exe\\u200b"')
    code, out, _ = run(capsys, "plan", "--base", "main", "--format", "markdown")
    assert code == 2 and "\u202e" not in out and "\u200b" not in out
    assert "U+202E" in out and "U+200B" in out


def test_matching_a_pattern_head_is_exact(tmp_path) -> None:
    from orchestrator.gitops.hosts import Membership
    from orchestrator.inventory.model import Host, Inventory

    names = ["ab", "ab\U0010ffffz", "abc", "abd-1", "b", "a"]
    inv = Inventory("x", {n: Host(n, ()) for n in names}, frozenset())
    m = Membership(inv)
    assert m.matching(("ab*",)) == {"ab", "ab\U0010ffffz", "abc", "abd-1"}
    assert m.matching(("ab?",)) == {"abc"}
    assert m.matching(("a[bx]d-*", "b")) == {"abd-1", "b"}


def test_reordering_beside_an_addition_is_said(repo: GitRepo, capsys) -> None:
    text = repo.read("policies/patching/policies.yml")
    first = ("      - {classification: security, severity: [critical, high], approveAfterDays: "
             "0, deadlineDays: 7}\n")
    second = "      - {classification: security, approveAfterDays: 0, deadlineDays: 14}\n"
    assert first + second in text
    repo.write("policies/patching/policies.yml", text.replace(
        first + second, second + first + "      - {classification: bugfix, approveAfterDays: "
        "1, deadlineDays: 9}\n", 1))
    _, plan = plan_json(capsys, "--base", "main", "--at", AT)
    [obj] = plan["objects"]
    assert obj["fields"][0]["reordered"] is True and len(obj["fields"][0]["added"]) == 1
    _, out, _ = run(capsys, "plan", "--base", "main")
    assert "(and the other items reordered)" in out


def test_an_invalid_base_with_stored_audits_does_not_crash(repo: GitRepo, capsys) -> None:
    store = _store(repo)
    store.append(_entry("audit", "compliant", "lab-04", "db", findings=[],
                        passed={"sysctl:net.ipv4.ip_forward": "0"}))
    store.close()
    repo.edit("policies/groups/groups.yml", "baselines: [linux-hardening, db-extras]",
              "baselines: [linux-hardening, db-extras, gone]")
    broken = repo.commit("names a missing baseline")
    repo.edit("policies/groups/groups.yml", ", gone]", "]")
    repo.edit("policies/baselines/linux.yml", "installed: [chrony]", "installed: [chrony, ntp]")
    code, plan = plan_json(capsys, "--base", broken, "--at", AT)
    assert code == 2 and plan["base"]["problems"]
    assert plan["impact"]["audit"]["hosts"] == 1
