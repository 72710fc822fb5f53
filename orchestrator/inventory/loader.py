"""Read an inventory with ansible-core (INI, YAML, scripts, plugins: whatever Ansible reads)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from orchestrator.errors import InventoryError
from orchestrator.inventory.model import Host, Inventory

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
    """Parse `source` through Ansible's InventoryManager. Raises InventoryError.

    With `cache_dir`, a static inventory file's parse is reused while neither it nor its
    group_vars/host_vars change (see inventory/cache.py)."""
    source = Path(source)
    if not source.exists():
        raise InventoryError(f"{source}: inventory not found; set 'inventory' in "
                             "orchestrator.yml or pass --inventory")
    if cache_dir is None:
        return _parse(source)
    from orchestrator.inventory import cache

    if not cache.cacheable(source):
        return _parse(source)
    key = cache.cache_key(source)
    data = cache.load(cache_dir, key)
    if data is not None:
        return Inventory(
            source=str(source),
            hosts={n: Host(name=n, groups=tuple(h["groups"]), vars=h["vars"])
                   for n, h in data["hosts"].items()},
            groups=frozenset(data["groups"]))
    inv = _parse(source)
    cache.save(cache_dir, key, {
        "hosts": {n: {"groups": list(h.groups), "vars": h.vars} for n, h in inv.hosts.items()},
        "groups": sorted(inv.groups)})
    return inv


def _parse(source: Path) -> Inventory:
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
            manager = InventoryManager(loader=loader, sources=[str(source)])
            variables = VariableManager(loader=loader, inventory=manager)
            hosts: dict[str, Host] = {}
            for h in manager.get_hosts():
                hv = variables.get_vars(host=h, include_hostvars=False)
                keep = {k: _plain(v) for k, v in hv.items() if k not in MAGIC}
                groups = tuple(sorted(g.name for g in h.get_groups()
                                      if g.name not in SKIP_GROUPS))
                hosts[h.name] = Host(name=h.name, groups=groups, vars=keep)
            group_names = frozenset(g for g in manager.groups if g not in SKIP_GROUPS)
    except AnsibleError as exc:
        text = str(getattr(exc, "message", None) or exc).strip()
        first = text.splitlines()[0] if text else "unknown error"
        detail = noise.getvalue().strip().splitlines()
        hint = f" ({detail[-1].strip()})" if detail and "Traceback" not in detail[-1] else ""
        raise InventoryError(f"{source}: cannot parse inventory: {first}{hint}; "
                             "check it with ansible-inventory --list") from None
    return Inventory(source=str(source), hosts=hosts, groups=group_names)


def _plain(value: object) -> object:
    """Ansible's tagged strings and containers to plain Python values."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
