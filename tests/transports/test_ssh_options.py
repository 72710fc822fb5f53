"""Pure parts of the SSH transport: inventory variables and known_hosts lookups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat

import pytest

from orchestrator.errors import InventoryError
from orchestrator.transports import knownhosts
from orchestrator.transports.sshopts import (
    JumpHost,
    expand_proxy_command,
    parse_common_args,
    ssh_options,
)

CASES = [
    ("-o ProxyJump=bastion", {"proxyjump": "bastion"}),
    ("-oProxyJump=u@b:2222", {"proxyjump": "u@b:2222"}),
    ("-o 'ProxyJump b1,b2'", {"proxyjump": "b1,b2"}),
    ("-J b", {"proxyjump": "b"}),
    ("-Jb", {"proxyjump": "b"}),
    ('-o ProxyCommand="ssh -W %h:%p b"', {"proxycommand": "ssh -W %h:%p b"}),
    (
        "-o UserKnownHostsFile='/a /b' -o StrictHostKeyChecking=no",
        {"userknownhostsfile": ["/a", "/b"]},
    ),
    ("-o ProxyJump=a -o ProxyJump=b", {"proxyjump": "a"}),
    ("-C -vvv", {}),
]


@pytest.mark.parametrize(("args", "want"), CASES)
def test_parse_common_args(args, want):
    assert parse_common_args(args, "h") == want


def test_ssh_options_from_inventory():
    o = ssh_options(
        "web-01",
        {
            "ansible_host": "10.1.1.1",
            "ansible_port": "2222",
            "ansible_user": "ops",
            "ansible_ssh_pass": "pw",
            "ansible_ssh_private_key_file": "~/k",
            "ansible_ssh_common_args": "-J jump@b1:2200,b2 -o UserKnownHostsFile=/dev/null",
        },
    )
    assert (o.host, o.port, o.user, o.password) == ("10.1.1.1", 2222, "ops", "pw")
    assert o.jumps == (JumpHost("b1", 2200, "jump"), JumpHost("b2", 22, None))
    assert o.extra_known_hosts == ()  # /dev/null never disables checking
    assert "pw" not in repr(o)
    assert ssh_options("db", {}).host == "db"


# Each option and the variables that set it, as ansible-core's ssh connection plugin lists them
ANSIBLE_SSH_VARS = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "remote_user": ("ansible_user", "ansible_ssh_user"),
    "password": ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password"),
    "private_key_file": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
}


def _ansible_answer(host_vars: dict) -> dict:
    """What ansible-core's own ssh connection plugin reads from these variables."""
    import io

    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    conn = connection_loader.get("ssh", PlayContext(), io.StringIO())
    conn.set_options(var_options={"inventory_hostname": "web-01", **host_vars})
    return {opt: conn.get_option(opt) for opt in ANSIBLE_SSH_VARS}


@pytest.mark.parametrize("option", sorted(ANSIBLE_SSH_VARS))
def test_connection_variables_follow_ansible_precedence(option: str) -> None:
    """When several spellings are set, the one Ansible uses is the one we use (a host must
    not be audited at one address and checked at another)."""
    import itertools

    names = ANSIBLE_SSH_VARS[option]
    for n in range(1, len(names) + 1):
        for chosen in itertools.combinations(names, n):
            values = {name: (2200 + i if option == "port" else f"{name}-value")
                      for i, name in enumerate(chosen)}
            want = _ansible_answer(values)[option]
            o = ssh_options("web-01", values)
            got = {"host": o.host, "port": o.port, "remote_user": o.user,
                   "password": o.password, "private_key_file": o.key_file}[option]
            assert got == want, chosen
    assert ssh_options("web-01", {"ansible_ssh_password": "pw"}).password == "pw"


def test_bad_inventory_values():
    with pytest.raises(InventoryError, match="inventory host h: ansible_port"):
        ssh_options("h", {"ansible_port": "ssh"})
    with pytest.raises(InventoryError, match="either ProxyJump or ProxyCommand"):
        ssh_options("h", {"ansible_ssh_common_args": "-J a -o ProxyCommand=nc"})
    with pytest.raises(InventoryError, match="not valid shell words"):
        ssh_options("h", {"ansible_ssh_common_args": "-o 'ProxyJump=a"})


def test_proxy_command_tokens_are_quoted():
    assert expand_proxy_command("nc %h %p %%", "h; rm -rf /", 22, "u") == "nc 'h; rm -rf /' 22 %"


def _hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_knownhosts_matching(tmp_path):
    f = tmp_path / "kh"
    f.write_text(
        "# c\n"
        "a.example,10.0.0.1 ssh-ed25519 AAAA1\n"
        f"{_hashed('[b.example]:2222')} ssh-rsa BBBB\n"
        "*.lab,!bad.lab ssh-ed25519 CCCC\n"
        "@revoked * ssh-ed25519 EVIL\n"
        "@cert-authority *.lab ssh-ed25519 CA\n"
        "garbage\n"
    )
    files = [str(f)]
    assert knownhosts.verify(files, "10.0.0.1", "ssh-ed25519", "AAAA1").status == "known"
    v = knownhosts.verify(files, "a.example", "ssh-ed25519", "ZZZZ")
    assert v.status == "changed" and v.match.line == 2
    assert knownhosts.verify(files, "[b.example]:2222", "ssh-rsa", "BBBB").status == "known"
    assert knownhosts.verify(files, "b.example", "ssh-rsa", "BBBB").status == "unknown"
    assert knownhosts.verify(files, "x.lab", "ssh-ed25519", "CCCC").status == "known"
    assert knownhosts.verify(files, "bad.lab", "ssh-ed25519", "CCCC").status == "unknown"
    assert knownhosts.verify(files, "new.host", "ssh-ed25519", "EVIL").status == "revoked"
    assert knownhosts.known_types(files, "[b.example]:2222") == {"ssh-rsa"}
    assert knownhosts.verify([str(tmp_path / "missing")], "a", "t", "k").status == "unknown"


def test_knownhosts_append_fixes_missing_newline(tmp_path):
    f = tmp_path / "d" / "kh"
    assert knownhosts.append(str(f), "h1", "ssh-ed25519", "K1") == 1
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    f.write_text(f.read_text() + "h2 ssh-ed25519 K2")  # no trailing newline
    assert knownhosts.append(str(f), "h3", "ssh-ed25519", "K3") == 3
    assert f.read_text().splitlines() == [
        "h1 ssh-ed25519 K1",
        "h2 ssh-ed25519 K2",
        "h3 ssh-ed25519 K3",
    ]
