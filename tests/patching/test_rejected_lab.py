"""rejectedAction against real lab hosts (apt, dnf, zypper), through `patch apply` and the
shipped playbooks: acme-app 1.1 needs acme-lib 2 (a new package), and the policy approves
acme-app and rejects "acme-lib*". `block` holds acme-app back, says why, and nothing rejected
arrives (also `--check` shows it); `allowAsDependency` installs acme-app with acme-lib and
records the dependency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from patchwork import ALWAYS_WINDOW, write_config
from patchwork import log_records as _records

from orchestrator.cli.main import main

POLICIES = ALWAYS_WINDOW + """---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 9999, deadlineDays: 30}}
    approved: [acme-app]
    rejected: ["acme-lib*", "acme-brok*"]
    rejectedAction: {action}
  reboot: never
  rollout: {{serial: [1], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: ring}}
spec:
  hosts: {{patterns: ["{host}"]}}
  patchPolicy: lab
  windows: [always]
"""

# how each flavour installs the old acme-app and reads installed versions
INSTALL_OLD = {"apt": "apt-get update -q >/dev/null && apt-get install -y -q acme-app=1.0",
               "rpm": "dnf -y -q install acme-app-1.0",
               "zypper": "zypper -n -q install acme-app=1.0"}
QUERY = {"apt": "dpkg-query -W -f '${Package} ${Version}\\n' acme-app acme-lib 2>/dev/null",
         "rpm": "rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\\n' acme-app acme-lib",
         "zypper": "rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\\n' acme-app acme-lib"}
LIB = {"apt": "2.0", "rpm": "2.0-1", "zypper": "2.0-1"}
APP = {"apt": ("1.0", "1.1"), "rpm": ("1.0-1", "1.1-1"), "zypper": ("1.0-1", "1.1-1")}


def _workdir(tmp_path: Path, lab, host: str, action: str) -> None:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "lab.yml").write_text(POLICIES.format(host=host, action=action))
    write_config(tmp_path, lab.inventory_path, lab=lab)


def _apply(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["--format", "json", "patch", "apply", "--group", "ring", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {"stderr": err}


def _installed(lab, host: str, flavour: str) -> dict[str, str]:
    out = lab.ssh(host, QUERY[flavour], check=False).stdout
    return dict(line.split(" ", 1) for line in out.splitlines()
                if line.strip() and "not installed" not in line)


@pytest.mark.parametrize(("flavour", "fresh"), [("apt", "lab_fresh_host"),
                                                ("rpm", "lab_fresh_rpm_host"),
                                                ("zypper", "lab_fresh_zypper_host")])
def test_block_holds_back_then_allow_as_dependency_installs(
        lab_fleet, request, tmp_path, monkeypatch, capsys, flavour, fresh) -> None:
    host = request.getfixturevalue(fresh)
    lab_fleet.ssh(host, INSTALL_OLD[flavour])
    old, new = APP[flavour]
    lib = LIB[flavour]
    assert _installed(lab_fleet, host, flavour) == {"acme-app": old}
    monkeypatch.chdir(tmp_path)
    _workdir(tmp_path, lab_fleet, host, "block")
    why = f"would pull rejected acme-lib {lib} (acme-lib*)"

    # --check shows the package held back, and why
    code, out = _apply(capsys, "--check")
    assert code == 0, out
    [h] = out["hosts"]
    assert h["status"] == "would-install" and why in h["reason"]
    [app] = h["packages"]
    assert (app["name"], app["status"], app["reason"]) == ("acme-app", "blocked", why)

    # block: not installed, nothing rejected arrives, the host is no failure
    code, out = _apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert (h["status"], h["reason"]) == (
        "done", f"held back (rejectedAction block): acme-app {new} {why}")
    [app] = h["packages"]
    assert (app["status"], app["before"], app["after"]) == ("blocked", old, old)
    assert [(d["name"], d["version"], d["rejected"], d["after"])
            for d in app["dependencies"]] == [("acme-lib", lib, True, None)]
    assert _installed(lab_fleet, host, flavour) == {"acme-app": old}
    recs = _records(capsys)
    installs = [(r["status"], r["details"]["package"], r["details"].get("reason"))
                for r in recs if r["action"] == "patch.install"]
    assert installs == [("blocked", "acme-app", why)]
    [applied] = [r for r in recs if r["action"] == "patch.apply"]
    assert applied["status"] == "done" and why in applied["details"]["reason"]
    end = [r for r in recs if r["action"] == "patch.apply.end"][-1]
    assert end["status"] == "done" and end["details"]["spentBy"] == []

    # allowAsDependency: installed, with the rejected dependency, and the log says so
    _workdir(tmp_path, lab_fleet, host, "allowAsDependency")
    code, out = _apply(capsys)
    assert code == 0, out
    [h] = out["hosts"]
    assert (h["status"], h["reason"]) == ("done", "")
    [app] = h["packages"]
    assert (app["status"], app["after"]) == ("installed", new)
    assert [(d["name"], d["version"], d["rejected"], d["pattern"], d["after"])
            for d in app["dependencies"]] == [("acme-lib", lib, True, "acme-lib*", lib)]
    assert _installed(lab_fleet, host, flavour) == {"acme-app": new, "acme-lib": lib}
    recs = [r for r in _records(capsys) if r["run"] == out["run"]]
    installs = [(r["status"], r["details"]["package"], r["details"]["version"],
                 r["details"].get("dependencyOf"), r["details"].get("rejected"))
                for r in recs if r["action"] == "patch.install"]
    assert installs == [("installed", "acme-app", new, None, None),
                        ("installed", "acme-lib", lib, "acme-app", True)]
    assert main(["log", "verify"]) == 0
