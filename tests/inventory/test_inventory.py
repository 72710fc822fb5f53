"""Inventory through ansible-core, and the cache of static inventory files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import loader
from orchestrator.inventory.loader import load_inventory

INI = """\
[web]
web-01 ansible_host=10.0.0.1
web-02
[db]
db-01 ansible_user=admin
[win]
win-01 ansible_connection=winrm
[win:vars]
ansible_port=5986
"""


def test_ini_with_group_vars(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(INI)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("ansible_user: deploy\n")
    inv = load_inventory(tmp_path / "hosts.ini")
    assert inv.groups == {"web", "db", "win"}
    assert inv.hosts["web-01"].vars["ansible_user"] == "deploy"
    assert inv.hosts["web-01"].address == "10.0.0.1"
    assert inv.hosts["db-01"].vars["ansible_user"] == "admin"
    assert inv.hosts["win-01"].platform == "windows" and inv.hosts["win-01"].vars[
        "ansible_port"] == 5986
    assert "ansible_version" not in inv.hosts["web-02"].vars  # magic variables dropped


def test_dynamic_inventory_script(tmp_path: Path) -> None:
    script = tmp_path / "inv.py"
    script.write_text("#!/bin/sh\necho '{\"app\": {\"hosts\": [\"app-01\"]}, \"_meta\": "
                      "{\"hostvars\": {\"app-01\": {\"ansible_host\": \"10.1.1.1\"}}}}'\n")
    script.chmod(0o755)
    inv = load_inventory(script)
    assert inv.hosts["app-01"].groups == ("app",)
    assert inv.hosts["app-01"].address == "10.1.1.1"


def test_unparsable_inventory(tmp_path: Path) -> None:
    (tmp_path / "bad.ini").write_text("[web\n")
    with pytest.raises(InventoryError, match=r"bad\.ini: cannot parse inventory"):
        load_inventory(tmp_path / "bad.ini")
    with pytest.raises(InventoryError, match="inventory not found"):
        load_inventory(tmp_path / "missing.ini")


def test_cache_reused_until_the_inventory_changes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "hosts.ini"
    src.write_text(INI)
    cache = tmp_path / "state" / "cache"
    first = load_inventory(src, cache_dir=cache)
    files = list(cache.glob("inventory-*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700

    def no_parse(source: Path):
        raise AssertionError("parsed again although nothing changed")

    monkeypatch.setattr(loader, "_parse", no_parse)
    again = load_inventory(src, cache_dir=cache)
    assert again.hosts == first.hosts and again.groups == first.groups
    assert again.hosts["web-01"].vars == first.hosts["web-01"].vars
    monkeypatch.undo()
    src.write_text(INI.replace("10.0.0.1", "10.0.0.9"))
    assert load_inventory(src, cache_dir=cache).hosts["web-01"].address == "10.0.0.9"

    # a new or changed vars file changes the key, so Ansible parses again
    from orchestrator.inventory.cache import cache_key

    before = cache_key(src)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "web-02.yml").write_text("ansible_port: 2222\n")
    assert cache_key(src) != before
    calls = []
    real_parse = loader._parse
    monkeypatch.setattr(loader, "_parse", lambda source: calls.append(source) or
                        real_parse(source))
    load_inventory(src, cache_dir=cache)
    assert calls == [src]


def test_vaulted_and_plugin_sources_are_not_cached(tmp_path: Path) -> None:
    from orchestrator.inventory.cache import cacheable

    vaulted = tmp_path / "v.yml"
    vaulted.write_text("all:\n  vars:\n    secret: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n")
    plugin = tmp_path / "aws_ec2.yml"
    plugin.write_text("plugin: amazon.aws.aws_ec2\n")
    script = tmp_path / "inv.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert not cacheable(vaulted) and not cacheable(plugin) and not cacheable(script)
    assert not cacheable(tmp_path)
    plain = tmp_path / "hosts.ini"
    plain.write_text(INI)
    assert cacheable(plain)


def test_vault_in_vars_folders_or_broken_links_are_not_cached(tmp_path: Path) -> None:
    from orchestrator.inventory.cache import cache_key, cacheable

    src = tmp_path / "hosts.ini"
    src.write_text(INI)
    (tmp_path / "group_vars").mkdir()
    secret = tmp_path / "group_vars" / "all.yml"
    secret.write_text("bmc_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3132\n")
    assert not cacheable(src)
    secret.unlink()
    (tmp_path / "group_vars" / "gone.yml").symlink_to(tmp_path / "nowhere.yml")
    assert cache_key(src) is None
    assert load_inventory(src, cache_dir=tmp_path / "cache").hosts["web-01"]  # parsed, no crash
    assert not list((tmp_path / "cache").glob("inventory-*.json"))


def test_values_json_cannot_hold_are_not_cached(tmp_path: Path) -> None:
    from orchestrator.inventory import cache

    src = tmp_path / "hosts.ini"
    src.write_text(INI)
    cache.save(tmp_path / "c", src, "k" * 64, {"hosts": {"h": {"vars": {"x": object()}}}})
    assert not list((tmp_path / "c").glob("inventory-*.json"))


VAULT_PROBE = """
from orchestrator.errors import InventoryError
from orchestrator.inventory.loader import load_inventory
try:
    print(load_inventory('hosts.ini').hosts['web-01'].vars['bmc_password'])
except InventoryError as exc:
    print('ERROR', exc)
"""


def test_vaulted_values_decrypt_with_ansibles_password_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "hosts.ini").write_text(INI)
    (tmp_path / "pw").write_text("vault-pass\n")
    venv_bin = Path(sys.executable).parent
    enc = subprocess.run([str(venv_bin / "ansible-vault"), "encrypt_string",
                          "--vault-password-file", str(tmp_path / "pw"), "s3cret",
                          "--name", "bmc_password"], capture_output=True, text=True, check=True)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(enc.stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_VAULT")}
    run = [sys.executable, "-c", VAULT_PROBE]
    out = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert out.strip() == ("ERROR inventory host web-01: bmc_password is vaulted and cannot be "
                           "decrypted; set ANSIBLE_VAULT_PASSWORD_FILE")
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(tmp_path / "pw")
    out = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert out.strip() == "s3cret"
