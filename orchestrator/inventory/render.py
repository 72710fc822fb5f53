"""Jinja in connection variables, rendered by ansible-core's own templating, as Ansible would.

Inventories are written like `ansible_host: "{{ real_host }}"`,
`ansible_password: "{{ vault_ssh_password }}"` or `"{{ lookup('env', 'SSH_PASSWORD') }}"`.
Only the variables the orchestrator reads to reach a host (CONNECTION_VARS and the
`ansible_winrm_*`, `bmc_*` families) are rendered; other variables stay as written, as
they may refer to facts that exist only inside a play. Each is rendered with the host's
variables (group and host vars merged as Ansible merges them), `inventory_hostname`,
`group_names` and `groups`, with Ansible's lookups and the vault secrets Ansible is
configured with (ANSIBLE_VAULT_PASSWORD_FILE, vault ids). Relative paths in lookups are
relative to the inventory file's folder.

Like ansible-core 2.19, only text Ansible trusts as a template is rendered: a value marked
`literal` by the loader (a vaulted value, or text from a source Ansible does not trust) is
used as written. ansible-core's templating is imported only when a value to render holds
`{{` or `{%`, so inventories without Jinja cost nothing here.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InventoryError

CONNECTION_VARS = frozenset({
    "ansible_connection", "ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port",
    "ansible_user", "ansible_ssh_user", "ansible_password", "ansible_ssh_pass",
    "ansible_ssh_password", "ansible_ssh_private_key_file", "ansible_private_key_file",
    "ansible_ssh_common_args", "ansible_ssh_extra_args",
})
CONNECTION_PREFIXES = ("ansible_winrm_", "bmc_")
MARKERS = ("{{", "{%")


def is_template(value: object) -> bool:
    return isinstance(value, str) and any(m in value for m in MARKERS)


def to_render(vars_: Mapping[str, Any], literal: Iterable[str] = ()) -> list[str]:
    """The connection variables of one host that hold Jinja Ansible would render."""
    skip = set(literal)
    return sorted(k for k, v in vars_.items()
                  if (k in CONNECTION_VARS or k.startswith(CONNECTION_PREFIXES))
                  and k not in skip and is_template(v))


class HostData:
    """One host as the loader keeps it before rendering (plain, JSON-friendly values)."""

    __slots__ = ("groups", "literal", "vars")

    def __init__(self, groups: tuple[str, ...], vars_: dict[str, Any],
                 literal: frozenset[str] = frozenset()) -> None:
        self.groups = groups
        self.vars = vars_
        self.literal = literal


def render_hosts(hosts: dict[str, HostData], source: Path) -> None:
    """Render, in place, every host's connection variables that hold Jinja. InventoryError
    (naming the host and variable, never the value) when one cannot be rendered."""
    todo = {name: names for name, h in hosts.items() if (names := to_render(h.vars, h.literal))}
    if not todo:
        return
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    from orchestrator.inventory.loader import _vault_secrets

    all_groups: dict[str, list[str]] = {"all": sorted(hosts), "ungrouped": []}
    for name, h in sorted(hosts.items()):
        for g in h.groups:
            all_groups.setdefault(g, []).append(name)
        if not h.groups:
            all_groups["ungrouped"].append(name)
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
        loader = DataLoader()
        loader.set_basedir(str(Path(source).resolve().parent))
        _vault_secrets(loader)
        for name, names in todo.items():
            h = hosts[name]
            variables = {k: v if k in h.literal else _trusted(v) for k, v in h.vars.items()}
            variables.update(inventory_hostname=name, inventory_hostname_short=name.split(".")[0],
                             group_names=list(h.groups), groups=all_groups)
            templar = Templar(loader=loader, variables=variables)
            for var in names:
                raw = h.vars[var]
                try:
                    value = templar.template(_trusted(raw))
                except AnsibleError as exc:
                    raise _failed(source, name, var, raw, exc) from None
                except Exception as exc:  # a lookup plugin's own error
                    raise _failed(source, name, var, raw, exc) from None
                h.vars[var] = _plain(value)


def _failed(source: Path, host: str, var: str, raw: str, exc: BaseException) -> InventoryError:
    text = str(getattr(exc, "message", None) or exc).strip()
    detail = text.splitlines()[0].strip() if text else type(exc).__name__
    if raw in detail or len(detail) > 200:
        detail = type(exc).__name__
    return InventoryError(f"{source}: inventory host {host}: {var} cannot be rendered "
                          f"({detail}); check it with ansible-inventory --host {host}")


def _trusted(value: Any) -> Any:
    """Mark text trusted as a template, as Ansible marks what it reads from inventory files."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Ansible's tagged results to plain Python values."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
