"""Shared pieces of the firmware tests against the lab: a work folder with a firmware policy,
a copy of the lab inventory with changed BMC variables, and the lab BMCs' firmware put back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# inventory variables that keep the lab's firmware tests quick
FAST = {"orchestrator_firmware_poll": 1, "orchestrator_bmc_timeout": 30,
        "orchestrator_firmware_timeout": 60}

ALWAYS = """apiVersion: orchestrator/v1
kind: Window
metadata: {name: always}
spec:
  schedule: {cron: "0 * * * *"}
  timezone: UTC
  duration: 1h
  cutoff: 0m
"""


def policy_text(components: list[dict[str, str]], *, hosts: list[str], method: str = "redfish",
                power: str = "any", serial: str = "[1, '100%']", max_failures: int | str = 0,
                window: str = "always") -> str:
    comps = "\n".join(f"    - {json.dumps(c)}" for c in components)
    return f"""{ALWAYS}---
apiVersion: orchestrator/v1
kind: FirmwarePolicy
metadata: {{name: lab-fw}}
spec:
  method: {method}
  components:
{comps}
  requirePowerState: {power}
  rollout: {{serial: {serial}, maxFailures: {max_failures}}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: fw}}
spec:
  hosts: {{patterns: {json.dumps(hosts)}}}
  firmwarePolicy: lab-fw
  windows: [{window}]
"""


def workdir(folder: Path, lab: Any, policy: str, inventory: Path | None = None) -> Path:
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    (folder / "policies" / "fw.yml").write_text(policy)
    (folder / "orchestrator.yml").write_text(
        f"policies: policies/\ninventory: {inventory or lab.inventory_path}\n"
        f"playbooks: {REPO / 'playbooks'}\nstate: sqlite:///state.db\n"
        f"ssh: {{knownHosts: {lab.known_hosts_path}, hostKeys: strict}}\n")
    return folder


def inventory_copy(lab: Any, path: Path, hosts: dict[str, dict[str, Any]] | None = None,
                   every: dict[str, Any] | None = None) -> Path:
    """The lab inventory with variables changed: `hosts` per host, `every` for every host
    (a value None removes the variable)."""
    data = yaml.safe_load(lab.inventory_path.read_text())

    def walk(group: dict) -> None:
        for name, hv in (group.get("hosts") or {}).items():
            for k, v in {**(every or {}), **(hosts or {}).get(name, {})}.items():
                if v is None:
                    hv.pop(k, None)
                else:
                    hv[k] = v
        for child in (group.get("children") or {}).values():
            walk(child)

    walk(data["all"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path
