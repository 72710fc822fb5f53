"""A static YAML inventory is parsed once (yaml before auto); plugin configurations still
go to `auto`."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.inventory.loader import load_inventory


def test_static_yaml_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible.parsing.dataloader import DataLoader

    calls: list[str] = []
    real = DataLoader.load_from_file

    def counting(self, file_name, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(str(file_name))
        return real(self, file_name, *args, **kwargs)

    monkeypatch.setattr(DataLoader, "load_from_file", counting)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    web-01: {ansible_host: 10.0.0.1}\n")
    assert sorted(load_inventory(inv).hosts) == ["web-01"]
    assert [c for c in calls if c.endswith("hosts.yml")] == [str(inv)]


def test_a_plugin_configuration_still_reaches_auto(tmp_path: Path) -> None:
    inv = tmp_path / "generated.yml"
    inv.write_text('plugin: generator\nhosts:\n  name: "app-{{ n }}"\n'
                   'layers:\n  n: ["1", "2"]\n')
    assert sorted(load_inventory(inv).hosts) == ["app-1", "app-2"]
