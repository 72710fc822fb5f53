"""Read an inventory with ansible-core (INI, YAML, scripts, plugins: whatever Ansible reads)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_values import is_vaulted, plain, vault_secrets
from orchestrator.inventory.model import Host, Inventory
from orchestrator.inventory.render import HostData, is_template, render_hosts

SKIP_GROUPS = {"all", "ungrouped"}
# Ansible's magic variables: facts about the run, not about the host.
MAGIC = {"ansible_playbook_python", "ansible_config_file", "ansible_version", "ansible_run_tags",
         "ansible_skip_tags", "ansible_check_mode", "ansible_diff_mode", "ansible_forks",
         "ansible_inventory_sources", "ansible_verbosity", "inventory_file", "inventory_dir",
         "inventory_hostname", "inventory_hostname_short", "group_names", "groups", "hostvars",
         "omit", "playbook_dir", "play_hosts", "ansible_play_batch", "ansible_play_hosts",
         "ansible_play_hosts_all", "ansible_role_names", "role_names", "ansible_search_path",
         "ansible_facts", "ansible_dependent_role_names", "ansible_collection_name"}


def load_inventory(source: Path, cache_dir: Path | None = None) -> Inventory:
    """Parse `source` through Ansible's InventoryManager, then render the Jinja in its
    connection variables (inventory/render.py). Raises InventoryError.

    With `cache_dir`, a static inventory file's parse is reused while neither it nor its
    group_vars/host_vars change (see inventory/cache.py); what is cached is the parse
    before rendering, so no lookup or vault result is written to disk."""
    source = Path(source)
    if not source.exists():
        raise InventoryError(f"{source}: inventory not found; set 'inventory' in "
                             "orchestrator.yml or pass --inventory")
    hosts, groups = _load(source, Path(cache_dir) if cache_dir is not None else None)
    render_hosts(hosts, source)
    return Inventory(source=str(source),
                     hosts={n: Host(name=n, groups=h.groups, vars=h.vars)
                            for n, h in hosts.items()},
                     groups=groups)


def _load(source: Path, cache_dir: Path | None) -> tuple[dict[str, HostData], frozenset[str]]:
    if cache_dir is None:
        return _parse(source)
    from orchestrator.inventory import cache

    if not cache.cacheable(source):
        return _parse(source)
    key = cache.cache_key(source)
    if key is None:
        return _parse(source)
    data = cache.load(cache_dir, source, key)
    if data is not None:
        try:
            return ({n: HostData(tuple(h["groups"]), dict(h["vars"]),
                                 frozenset(h.get("literal", ())))
                     for n, h in data["hosts"].items()},
                    frozenset(data["groups"]))
        except (KeyError, TypeError, AttributeError, ValueError):
            pass  # our own entry, but not in the shape we write: parse again
    hosts, groups = _parse(source)
    cache.save(cache_dir, source, key, {
        "hosts": {n: {"groups": list(h.groups), "vars": h.vars, "literal": sorted(h.literal)}
                  for n, h in hosts.items()},
        "groups": sorted(groups)})
    return hosts, groups


def _parse(source: Path) -> tuple[dict[str, HostData], frozenset[str]]:
    os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
    os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            loader = DataLoader()
            vault_secrets(loader)
            manager = _yaml_first(InventoryManager)(loader=loader, sources=[str(source)])
            variables = VariableManager(loader=loader, inventory=manager)
            hosts: dict[str, HostData] = {}
            for h in manager.get_hosts():
                hv = variables.get_vars(host=h, include_hostvars=False)
                keep = {k: plain(v, h.name, k) for k, v in hv.items() if k not in MAGIC}
                literal = frozenset(k for k, v in hv.items()
                                    if k not in MAGIC and _untrusted_template(v))
                groups = tuple(sorted(g.name for g in h.get_groups()
                                      if g.name not in SKIP_GROUPS))
                hosts[h.name] = HostData(groups, keep, literal)
            group_names = frozenset(g for g in manager.groups if g not in SKIP_GROUPS)
    except AnsibleError as exc:
        text = str(getattr(exc, "message", None) or exc).strip()
        first = text.splitlines()[0] if text else "unknown error"
        detail = noise.getvalue().strip().splitlines()
        hint = f" ({detail[-1].strip()})" if detail and "Traceback" not in detail[-1] else ""
        raise InventoryError(f"{source}: cannot parse inventory: {first}{hint}; "
                             "check it with ansible-inventory --list") from None
    return hosts, group_names


def _yaml_first(manager_class: type) -> type:
    """InventoryManager trying the `yaml` plugin before `auto` when the enabled plugins are
    Ansible's default: `auto` parses a whole YAML file only to find it is not a plugin
    configuration, then `yaml` parses it again (5,000 hosts: 2 s of 5 s). A plugin
    configuration is still declined by `yaml` (it has a `plugin:` key) and read by `auto`.
    A configured plugin list (ansible.cfg, ANSIBLE_INVENTORY_ENABLED) is left as it is."""
    from ansible import constants as C

    class YamlFirst(manager_class):  # type: ignore[misc, valid-type]
        def _fetch_inventory_plugins(self) -> list:
            plugins = super()._fetch_inventory_plugins()
            _value, origin = C.config.get_config_value_and_origin("INVENTORY_ENABLED")
            names = [getattr(p, "NAME", "") for p in plugins]
            if origin == "default" and "auto" in names and "yaml" in names \
                    and names.index("auto") < names.index("yaml"):
                auto = plugins.pop(names.index("auto"))
                plugins.insert(names.index("yaml"), auto)  # just after yaml
            return plugins

    return YamlFirst


def _untrusted_template(value: object) -> bool:
    """Text holding Jinja that Ansible would not render (vaulted values, text from a source
    Ansible does not trust), anywhere inside `value`."""
    if is_vaulted(value):
        return True  # Ansible uses a vaulted value as written, Jinja or not
    if isinstance(value, str):
        if not is_template(value):
            return False
        from ansible.template import is_trusted_as_template

        return not is_trusted_as_template(value)
    if isinstance(value, dict):
        return any(_untrusted_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_untrusted_template(v) for v in value)
    return False
