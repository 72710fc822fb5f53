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
