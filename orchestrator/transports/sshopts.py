"""Pure parsing of the SSH-related inventory variables (no paramiko here).

Reads what Ansible users already write: the host, port, user, password and key variables
of SSH_VARS (the same names, in the same order of precedence, as ansible-core's ssh
connection plugin) and, inside ansible_ssh_common_args (and ansible_ssh_extra_args),
`-o ProxyJump=...`, `-J ...`, `-o ProxyCommand=...` and `-o UserKnownHostsFile=...`. Other ssh
options are ignored on purpose: host-key policy comes from the orchestrator's configuration,
not from the inventory.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.transports.base import port_number

# What ansible-core's ssh connection plugin reads for each setting (the `vars` of its options
# host, port, remote_user, password and private_key_file). When several are set, the LAST one
# listed wins: Ansible's configuration manager (ansible/config/manager.py, _loop_entries) takes
# each defined one in turn, so `ansible_ssh_host` beats `ansible_host`.
SSH_VARS: dict[str, tuple[str, ...]] = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "password": ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password"),
    "key_file": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
}


def ansible_var(host_vars: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The value Ansible uses among `names` (listed in Ansible's order): the last one that is
    set (not null), or None."""
    value = None
    for name in names:
        found = host_vars.get(name)
        if found is not None:
            value = found
    return value


_JUMP_RE = re.compile(
    r"^(?:ssh://)?(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:\s]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class JumpHost:
    host: str
    port: int = 22
    user: str | None = None


@dataclass(frozen=True)
class SshOptions:
    """Everything needed to open one SSH connection (secrets are kept out of repr)."""

    name: str
    host: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    password: str | None = field(default=None, repr=False)
    jumps: tuple[JumpHost, ...] = ()
    proxy_command: str | None = None
    extra_known_hosts: tuple[str, ...] = ()


def _split_option(opt: str) -> tuple[str, str]:
    """`ProxyJump=x`, `ProxyJump x` or `ProxyJump = x` -> ('proxyjump', 'x')."""
    m = re.match(r"^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$", opt, re.S)
    if not m:
        return opt.strip().lower(), ""
    return m.group(1).lower(), m.group(2).strip()


def parse_jumps(value: str, where: str) -> tuple[JumpHost, ...]:
    if value.lower() == "none":
        return ()
    jumps = []
    for part in value.split(","):
        m = _JUMP_RE.match(part.strip())
        if not m:
            raise InventoryError(
                f"{where}: cannot read jump host {part.strip()!r}; expected [user@]host[:port]"
            )
        host = m.group("host").strip("[]")
        jumps.append(JumpHost(host=host, port=int(m.group("port") or 22), user=m.group("user")))
    return tuple(jumps)


def parse_common_args(args: str, where: str) -> dict[str, Any]:
    """Pick ProxyJump, ProxyCommand and UserKnownHostsFile out of ssh command-line arguments."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise InventoryError(
            f"{where}: ansible_ssh_common_args is not valid shell words: {exc}"
        ) from None
    found: dict[str, Any] = {}
    i = 0
    while i < len(words):
        w = words[i]
        opt: str | None = None
        if w == "-o" and i + 1 < len(words):
            opt, i = words[i + 1], i + 2
        elif w.startswith("-o") and len(w) > 2:
            opt, i = w[2:], i + 1
        elif w == "-J" and i + 1 < len(words):
            found["proxyjump"], i = words[i + 1], i + 2
            continue
        elif w.startswith("-J") and len(w) > 2:
            found["proxyjump"], i = w[2:], i + 1
            continue
        else:
            i += 1
            continue
        key, value = _split_option(opt)
        if key in ("proxyjump", "proxycommand") and key not in found:
            found[key] = value  # like ssh: the first value given wins
        elif key == "userknownhostsfile":
            found.setdefault("userknownhostsfile", []).extend(shlex.split(value))
    return found


def ssh_options(name: str, host_vars: Mapping[str, Any]) -> SshOptions:
    """Build SshOptions for inventory host `name` from its (already merged) variables."""
    where = f"inventory host {name}"
    host = str(ansible_var(host_vars, SSH_VARS["host"]) or name)
    port_raw = ansible_var(host_vars, SSH_VARS["port"])
    port = port_number(22 if port_raw is None else port_raw, where)
    user = ansible_var(host_vars, SSH_VARS["user"])
    key = ansible_var(host_vars, SSH_VARS["key_file"])
    password = ansible_var(host_vars, SSH_VARS["password"])
    args = " ".join(
        str(host_vars[k])
        for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args")
        if host_vars.get(k)
    )
    parsed = parse_common_args(args, where) if args else {}
    jumps = parse_jumps(parsed["proxyjump"], where) if parsed.get("proxyjump") else ()
    proxy_command = parsed.get("proxycommand") or None
    if proxy_command and proxy_command.lower() == "none":
        proxy_command = None
    if jumps and proxy_command:
        raise InventoryError(f"{where}: give either ProxyJump or ProxyCommand, not both")
    known = tuple(
        os.path.expanduser(p) for p in parsed.get("userknownhostsfile", []) if p != "/dev/null"
    )
    return SshOptions(
        name=name,
        host=host,
        port=port,
        user=str(user) if user else None,
        key_file=os.path.expanduser(str(key)) if key else None,
        password=str(password) if password is not None else None,
        jumps=jumps,
        proxy_command=proxy_command,
        extra_known_hosts=known,
    )


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def expand_proxy_command(command: str, host: str, port: int, user: str | None) -> str:
    """ssh's %h %p %r %% tokens (values quoted: they come from the inventory)."""
    out = []
    i = 0
    while i < len(command):
        c = command[i]
        if c == "%" and i + 1 < len(command):
            t = command[i + 1]
            rep = {
                "h": shlex.quote(host),
                "p": str(port),
                "r": shlex.quote(user or ""),
                "%": "%",
            }.get(t)
            if rep is None:
                out.append(c + t)
            else:
                out.append(rep)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)
