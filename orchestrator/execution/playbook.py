"""Run a playbook through ansible-runner, held to the orchestrator's host-key policy.

One code path for every playbook the orchestrator runs (baselines in check mode, patching,
firmware): each host runs over the connection plugin the connection table gives it, forced as
an extra variable (neither the inventory nor a play's `connection:` can pick another), with the
host-key settings of every plugin forced too (workspace.host_key_vars), ssh's control sockets
kept in the run's private workspace and files sent over ssh itself; one ansible-runner run per
plugin, in its own workspace. Results arrive through `event_handler` as Ansible emits
them (never a parse of stdout), and no process of a run outlives it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.execution.workspace import Workspace, ssh_args_refusal

EventHandler = Callable[[dict[str, Any]], Any]


@dataclass
class PlaybookOutcome:
    """How the runs ended: the worst ansible-playbook exit status, and why it stopped early."""

    rc: int | None = None
    timed_out: bool = False
    canceled: bool = False
    refused: dict[str, str] = field(default_factory=dict)  # host -> why it was not run


def plugin_groups(hosts: Mapping[str, Mapping[str, Any]] | Iterable[str]
                  ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Hosts by the connection plugin forced on them (transports.CONNECTIONS), and the hosts
    refused with why: a connection the orchestrator cannot hold to its host-key policy (psrp,
    community.*, ...) is not run at all, nor an ssh host whose inventory args give `-S` (the
    one ssh flag that overrides the forced ControlPath). Hosts given without variables
    connect over ssh, Ansible's default."""
    from orchestrator.transports import CONNECTIONS, SUPPORTED, connection_value

    items = hosts.items() if isinstance(hosts, Mapping) else ((h, {}) for h in hosts)
    groups: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for name, host_vars in sorted(items, key=lambda item: item[0]):
        conn = CONNECTIONS.get(connection_value(host_vars))
        if conn is None or conn.backend is None:
            refused[name] = (f"refused: ansible_connection {connection_value(host_vars)!r} "
                             "cannot be held to the orchestrator's host-key policy; use "
                             f"{SUPPORTED}")
            continue
        why = ssh_args_refusal(host_vars) if conn.plugin == "ansible.builtin.ssh" else None
        if why is not None:
            refused[name] = why
            continue
        groups.setdefault(conn.plugin, []).append(name)
    return groups, refused


def known_hosts_files(settings: Any, hosts: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """The configured known_hosts plus every UserKnownHostsFile the inventory names for these
    hosts: the same files the SSH transport trusts, so both paths judge keys alike."""
    from orchestrator.transports.sshopts import ssh_options

    known = getattr(settings, "known_hosts", None)
    files = [Path(known)] if known else []
    for name, host_vars in hosts.items():
        try:
            files.extend(Path(p) for p in ssh_options(name, host_vars).extra_known_hosts)
        except OrchestratorError:  # the host's own step reports its inventory problem
            continue
    return files


def write_unsafe_vars(path: Path, values: Mapping[str, Any]) -> None:
    """Extra variables as a private YAML file in which no string can be a template: Ansible
    templates extra variables, and these hold text from hosts (package names, versions) and
    policies, which must stay data (a version `{{ lookup('pipe', ...) }}` would otherwise run
    a command on the controller)."""
    import yaml

    class UnsafeDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            # every value written out in full: one list shared by several hosts' entries
            # would be an anchor and aliases, which ansible-core 2.19 templates wrongly for
            # all but the first two users (found by bench/bench_patch_apply.py)
            return True

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        # Ansible templates only text holding "{": such text is tagged !unsafe. Other text
        # stays a plain (quoted where needed) string: Ansible's !unsafe re-resolves a
        # scalar's type, so "true" would become a boolean and "1.10" the number 1.1.
        if "{" in data:
            return dumper.represent_scalar("!unsafe", data, style="'")
        return yaml.SafeDumper.represent_str(dumper, data)

    def mapping(dumper: yaml.SafeDumper, data: Mapping[Any, Any]) -> yaml.Node:
        pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(k)),
                  dumper.represent_data(v)) for k, v in data.items()]
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs)

    UnsafeDumper.add_representer(str, text)
    UnsafeDumper.add_representer(dict, mapping)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.dump(dict(values), fh, Dumper=UnsafeDumper, allow_unicode=True)


def _forget_environment(status: Mapping[str, Any], runner_config: Any = None) -> None:
    """ansible-runner writes `artifacts/<ident>/command` with the whole environment of the run
    before it starts ansible-playbook (0600, in our 0700 workspace, removed at the end); it is
    removed as soon as the run is under way, so that a crash does not leave secrets the
    environment held (an inventory's lookup('env', ...), a state URL) in a temporary folder."""
    if status.get("status") != "running" or runner_config is None:
        return
    with contextlib.suppress(OSError, AttributeError, TypeError):
        (Path(runner_config.artifact_dir) / "command").unlink()


def run_playbook(playbook: Path, inventory: Path,
                 hosts: Mapping[str, Mapping[str, Any]] | Iterable[str], *,
                 event_handler: EventHandler, known_hosts: Sequence[Path], forks: int,
                 strict: bool = True, check: bool = False, timeout: int = 1800,
                 extravars: Mapping[str, Any] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 controller: bool = False) -> PlaybookOutcome:
    """ansible-playbook `playbook` on `hosts` (name -> inventory variables); `known_hosts` are
    every file OpenSSH may trust host keys from. `check`: --check --diff. `cancel`: polled by
    ansible-runner; True ends the run (and every process it started). `controller`: the
    playbook works from this machine only (firmware through the hosts' BMCs): every host is
    forced onto the local connection plugin, so nothing connects to the hosts themselves."""
    import ansible_runner

    if not playbook.is_file():
        raise OrchestratorError(f"{playbook}: playbook not found")
    from orchestrator.transports.knownhosts import check_files

    check_files([str(p) for p in known_hosts])  # OpenSSH must not read a FIFO or a planted file
    if controller:
        groups, refused = {"ansible.builtin.local": sorted(hosts)}, {}
    else:
        groups, refused = plugin_groups(hosts)
    outcome = PlaybookOutcome(refused=refused)
    deadline = time.monotonic() + timeout
    for plugin, names in sorted(groups.items()):
        left = deadline - time.monotonic()
        if left <= 0:
            outcome.timed_out = True
            break
        if cancel is not None and cancel():
            outcome.canceled = True
            break
        with Workspace() as ws:
            data = ws.path / "orchestrator-vars.yml"
            write_unsafe_vars(data, extravars or {})
            cmdline = f"-e @{shlex.quote(str(data))}" + (" --check --diff" if check else "")
            runner = ansible_runner.run(
                private_data_dir=str(ws.path),
                playbook=str(playbook.resolve()),
                inventory=str(Path(inventory).resolve()),
                limit=",".join(names),
                forks=forks,
                cmdline=cmdline,
                envvars=ws.env(known_hosts, strict),
                # ours: the host-key settings and the plugin beat anything passed in
                extravars={**ws.extravars(known_hosts, strict), "ansible_connection": plugin},
                event_handler=event_handler,
                status_handler=_forget_environment,
                # ansible-runner would keep the environment (and a secret an inventory reads
                # from it with lookup('env', ...)) in env/ and in artifacts/*/command
                suppress_env_files=True,
                cancel_callback=cancel,
                quiet=True,
                timeout=max(1, int(left)),
            )
        if runner.status == "timeout":
            outcome.timed_out = True
        elif runner.status == "canceled":
            outcome.canceled = True
        if runner.rc not in (None, 0) and outcome.rc in (None, 0):
            outcome.rc = runner.rc
        elif outcome.rc is None:
            outcome.rc = runner.rc
    return outcome
