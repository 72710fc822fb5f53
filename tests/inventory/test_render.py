"""Jinja in connection variables is rendered by ansible-core, as Ansible would (issue 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory.loader import load_inventory

VENV_BIN = Path(sys.executable).parent


def test_host_var_referencing_a_group_var(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[web]\nweb-01 ansible_host='{{ real_host }}' ansible_port='{{ base_port + 1 }}'\n"
        "[web:vars]\nreal_host=10.1.2.3\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text(
        "base_port: 2221\nansible_user: \"{{ inventory_hostname }}-admin\"\n"
        "app_home: \"{{ some_fact_only_a_play_has }}\"\n")
    host = load_inventory(tmp_path / "hosts.ini").hosts["web-01"]
    assert host.vars["ansible_host"] == "10.1.2.3" and host.address == "10.1.2.3"
    assert host.vars["ansible_port"] == 2222
    assert host.vars["ansible_user"] == "web-01-admin"
    # not a connection variable: left as written, as it may need a play's facts
    assert host.vars["app_home"] == "{{ some_fact_only_a_play_has }}"


def test_env_lookup_rendered_after_the_cache(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "hosts.yml"
    src.write_text("all:\n  hosts:\n    web-01:\n"
                   "      ansible_password: \"{{ lookup('env', 'ORCH_TEST_SSH_PW') }}\"\n")
    cache = tmp_path / "cache"
    monkeypatch.setenv("ORCH_TEST_SSH_PW", "first-secret")
    assert load_inventory(src, cache_dir=cache).hosts["web-01"].vars[
        "ansible_password"] == "first-secret"
    (entry,) = cache.glob("inventory-*.json")
    text = entry.read_text()
    assert "first-secret" not in text and "lookup('env'" in text  # the parse, not the value
    monkeypatch.setenv("ORCH_TEST_SSH_PW", "rotated")
    assert load_inventory(src, cache_dir=cache).hosts["web-01"].vars[
        "ansible_password"] == "rotated"


def test_a_value_that_cannot_be_rendered_is_one_line_without_the_value(tmp_path: Path) -> None:
    src = tmp_path / "hosts.ini"
    src.write_text("web-01 ansible_host='{{ nowhere }}'\n")
    with pytest.raises(InventoryError) as exc:
        load_inventory(src)
    assert str(exc.value).startswith(f"{src}: inventory host web-01: ansible_host cannot be "
                                     "rendered (")
    assert "nowhere" in str(exc.value) and "\n" not in str(exc.value)
    src.write_text("web-01 ansible_password='pa{{ss-w0rd'\n")
    with pytest.raises(InventoryError, match="ansible_password cannot be rendered") as exc:
        load_inventory(src)
    assert "pa{{ss" not in str(exc.value) and "w0rd" not in str(exc.value)


PROBE = """
import json, sys
from orchestrator.inventory.loader import load_inventory
inv = load_inventory('hosts.ini', cache_dir=sys.argv[1] if len(sys.argv) > 1 else None)
h = inv.hosts['web-01']
print(json.dumps({'password': h.vars.get('ansible_password'), 'user': h.vars.get('ansible_user'),
                  'literal': h.vars.get('ansible_ssh_pass'),
                  'templar': 'ansible.template' in sys.modules,
                  'ansible': any(m == 'ansible' or m.startswith('ansible.') for m in sys.modules)}))
"""


def probe(cwd: Path, env: dict[str, str], *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_vaulted_variable_referenced_through_jinja(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[web]\nweb-01 ansible_password='{{ vault_ssh_password }}' "
        "ansible_user='{{ vault_ssh_user }}'\n")
    (tmp_path / "pw").write_text("vault-pass\n")
    gv = tmp_path / "group_vars" / "all"
    gv.mkdir(parents=True)
    # a whole encrypted vars file, and a single encrypted value
    (gv / "vault.yml").write_text("vault_ssh_password: s3cret-ssh\n")
    subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(tmp_path / "pw"), str(gv / "vault.yml")], check=True,
                   capture_output=True)
    one = subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt_string",
                          "--vault-password-file", str(tmp_path / "pw"), "deployer",
                          "--name", "vault_ssh_user"], check=True, capture_output=True,
                         text=True).stdout
    # a vaulted connection variable holding Jinja: a password with braces in it
    jinja = subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt_string",
                            "--vault-password-file", str(tmp_path / "pw"), "pa{{ 1 + 1 }}ss",
                            "--name", "ansible_ssh_pass"], check=True, capture_output=True,
                           text=True).stdout
    (gv / "plain.yml").write_text(one + jinja)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_VAULT")}
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(tmp_path / "pw")
    got = probe(tmp_path, env, str(tmp_path / "cache"))
    assert got["password"] == "s3cret-ssh" and got["user"] == "deployer"
    assert got["literal"] == "pa{{ 1 + 1 }}ss"  # Ansible does not template a vaulted value
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_templating_is_imported_only_for_jinja(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nweb-01 ansible_user=admin\n")
    env = dict(os.environ)
    cache = str(tmp_path / "cache")
    probe(tmp_path, env, cache)  # parses (imports ansible) and fills the cache
    got = probe(tmp_path, env, cache)
    assert got["user"] == "admin" and not got["ansible"]
    (tmp_path / "hosts.ini").write_text(
        "[web]\nweb-01 ansible_user=\"{{ 'ad' ~ 'min' }}\"\n")
    probe(tmp_path, env, cache)
    got = probe(tmp_path, env, cache)
    assert got["user"] == "admin" and got["templar"]


SECRET = "hunter2-SECRET"


@pytest.mark.parametrize(("template", "kind"), [
    # the error text of these holds the secret value; the line says what failed, not how
    ("{{ lookup('file', secret_pw) }}", "(the lookup plugin 'file' failed)"),
    ("{{ query('file', secret_pw) }}", "(the lookup plugin 'file' failed)"),
    ("{{ nothing_here | mandatory(msg=secret_pw) }}",
     "(the filter plugin 'ansible.builtin.mandatory' failed)"),
    ("{{ lookup(secret_pw) }}", "(a lookup plugin was not found)"),  # its name is the secret
    ("{{ {'a': 1}[secret_pw] }}", "(an undefined variable or attribute)"),
    ("{{ secret_pw | from_json }}", "(the filter plugin 'ansible.builtin.from_json' failed)"),
    ("{{ secret_pw | int + (1 / 0) }}", "(template error: ZeroDivisionError)"),
    ("{{ secret_pw ~ nowhere }}", "(undefined variable 'nowhere')"),
    ("{{ secret_pw }} {{ x y }}", "(template syntax error)"),
])
def test_render_error_names_host_variable_and_kind_never_a_value(tmp_path: Path, template: str,
                                                                 kind: str) -> None:
    src = tmp_path / "hosts.yml"
    host = {"secret_pw": SECRET, "ansible_password": template}
    src.write_text(json.dumps({"all": {"hosts": {"web-01": host}}}))
    with pytest.raises(InventoryError) as exc:
        load_inventory(src)
    text = str(exc.value)
    assert text == (f"{src}: inventory host web-01: ansible_password cannot be rendered {kind}; "
                    "check it with ansible-inventory --host web-01")
    assert "hunter2" not in text


def test_render_error_from_a_nested_variable_keeps_its_value(tmp_path: Path) -> None:
    """A variable reached through another is rendered too; its value stays out of the line."""
    src = tmp_path / "hosts.yml"
    host = {"secret_pw": SECRET, "inner": "{{ lookup('file', secret_pw) }}",
            "ansible_host": "{{ inner }}"}
    src.write_text(json.dumps({"all": {"hosts": {"web-01": host}}}))
    with pytest.raises(InventoryError) as exc:
        load_inventory(src)
    assert "ansible_host cannot be rendered (the lookup plugin 'file' failed)" in str(exc.value)
    assert "hunter2" not in str(exc.value)
