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

A value that cannot be rendered is one error line naming the host, the variable and the
kind of failure (an undefined variable, a lookup or filter that failed, a syntax error).
Ansible's own message is never shown: it can hold a rendered value (the file name a lookup
was given, `mandatory(msg=...)`, a missing key), and a plugin or variable is named only
when that name is written in the host's templates. `ansible-inventory --host` gives the
detail.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_values import plain, vault_secrets

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
    (naming the host, the variable and the kind of failure, never a value) when one cannot
    be rendered."""
    todo = {name: names for name, h in hosts.items() if (names := to_render(h.vars, h.literal))}
    if not todo:
        return
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

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
        vault_secrets(loader)
        for name, names in todo.items():
            h = hosts[name]
            variables = {k: v if k in h.literal else _trusted(v) for k, v in h.vars.items()}
            variables.update(inventory_hostname=name, inventory_hostname_short=name.split(".")[0],
                             group_names=list(h.groups), groups=all_groups)
            templar = Templar(loader=loader, variables=variables)
            as_written = dict(h.vars)  # for a message: the text before any value is rendered
            for var in names:
                raw = h.vars[var]
                try:
                    value = templar.template(_trusted(raw))
                except Exception as exc:  # Ansible's errors, and a lookup plugin's own
                    kind = _failure_kind(exc, _written(as_written, h.literal))
                    raise InventoryError(
                        f"{source}: inventory host {name}: {var} cannot be rendered ({kind}); "
                        f"check it with ansible-inventory --host {name}") from None
                h.vars[var] = plain(value, name, var)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _written(vars_: Mapping[str, Any], literal: Iterable[str]) -> set[str]:
    """The words written in the host's templates (the Jinja text, never a value)."""
    skip = set(literal)
    words: set[str] = set()
    todo = [v for k, v in vars_.items() if k not in skip]
    while todo:
        value = todo.pop()
        if isinstance(value, str):
            if is_template(value):
                words.update(_WORD.findall(value))
        elif isinstance(value, Mapping):
            todo.extend(value.values())
        elif isinstance(value, list | tuple):
            todo.extend(value)
    return words


def _failure_kind(exc: BaseException, written: set[str]) -> str:
    """What failed, for a message. Ansible's own text is never shown: a lookup's or filter's
    error, an attribute name or a `mandatory(msg=...)` can carry a rendered value (a
    password). Only names written in the templates themselves are shown."""
    from ansible.errors import (
        AnsibleTemplateError,
        AnsibleTemplatePluginError,
        AnsibleTemplateSyntaxError,
        AnsibleUndefinedVariable,
    )

    message = str(getattr(exc, "message", None) or exc).strip()
    if isinstance(exc, AnsibleUndefinedVariable):
        m = re.fullmatch(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined", message)
        if m and m[1] in written:
            return f"undefined variable '{m[1]}'"
        return "an undefined variable or attribute"
    if isinstance(exc, AnsibleTemplateSyntaxError):
        return "template syntax error"
    if isinstance(exc, AnsibleTemplatePluginError):
        m = re.match(r"The (lookup|filter|test) plugin '([^']*)' "
                     r"(failed to load|failed|was not found)", message)
        if m is None:
            return "a plugin failed"
        plugin_type, plugin, what = m.groups()
        if plugin in written or plugin.removeprefix("ansible.builtin.") in written:
            return f"the {plugin_type} plugin '{plugin}' {what}"
        return f"a {plugin_type} plugin {what}"
    if isinstance(exc, AnsibleTemplateError):
        cause = exc.__cause__
        return f"template error: {type(cause).__name__}" if cause is not None else \
            "template error"
    return type(exc).__name__


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
