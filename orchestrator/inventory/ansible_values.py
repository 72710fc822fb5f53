"""Values from ansible-core as plain Python: the vault secrets Ansible is configured with, and
Ansible's tagged strings, numbers, containers and vaulted values turned into plain ones.

Used by the loader (what the inventory says) and by render (what Jinja gave); imported only
where ansible-core is already in use.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.errors import InventoryError

_VAULTED = ("EncryptedString", "AnsibleVaultEncryptedUnicode")


def is_vaulted(value: object) -> bool:
    """A vaulted value (ansible-core 2.19's EncryptedString, or the older type)."""
    return type(value).__name__ in _VAULTED


def vault_secrets(loader: object) -> None:
    """Give `loader` (a DataLoader) the vault passwords as Ansible configures them
    (ANSIBLE_VAULT_PASSWORD_FILE, vault ids)."""
    from ansible import constants as C
    from ansible.cli import CLI

    files = [C.DEFAULT_VAULT_PASSWORD_FILE] if C.DEFAULT_VAULT_PASSWORD_FILE else []
    if files or C.DEFAULT_VAULT_IDENTITY_LIST:
        try:  # decryption reads the process-wide secrets context, set once per process
            secrets = CLI.setup_vault_secrets(loader, C.DEFAULT_VAULT_IDENTITY_LIST,
                                              vault_password_files=files, auto_prompt=False,
                                              initialize_context=True)
        except Exception:  # already set by an earlier load in this process
            secrets = CLI.setup_vault_secrets(loader, C.DEFAULT_VAULT_IDENTITY_LIST,
                                              vault_password_files=files, auto_prompt=False,
                                              initialize_context=False)
        loader.set_vault_secrets(secrets)  # type: ignore[attr-defined]


def plain(value: object, host: str, name: str) -> object:
    """`value` (variable `name` of inventory host `host`) with Ansible's tagged types made
    plain str, bool, int, float, dict and list; a vaulted value is decrypted here, or refused
    with what to do (InventoryError, without the value)."""
    if is_vaulted(value):
        try:
            return str(value)
        except Exception:  # Ansible raises its own types for a missing or wrong secret
            raise InventoryError(f"inventory host {host}: {name} is vaulted and cannot be "
                                 "decrypted; set ANSIBLE_VAULT_PASSWORD_FILE") from None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, host, name) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, host, name) for v in value]
    return value
