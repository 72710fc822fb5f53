"""Checks that need the configuration as well as the policies (files the policies name)."""

from __future__ import annotations

from orchestrator.config import Config
from orchestrator.policy.model import PolicySet


def extra_checks(ps: PolicySet, config: Config) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    for b in ps.baselines.values():
        if b.ansible_playbook:
            path = config.playbooks / b.ansible_playbook
            if not path.is_file():
                errors.append(f"{ps.locate('Baseline', b.name, 'spec', 'ansible', 'playbook')}: "
                              f"Baseline/{b.name}: playbook {path} not found (paths are "
                              "relative to the playbooks folder)")
    from orchestrator.windows.lint import window_warnings

    warnings.extend(window_warnings(ps))
    return errors, warnings
