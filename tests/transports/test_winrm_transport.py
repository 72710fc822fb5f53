"""WinRM transport: option handling and session construction.

No Windows host can run here, so winrm.Protocol is replaced by a recording fake for the
run/timeout tests (the lab's WS-Man endpoint covers the real wire protocol end to end).
"""

from __future__ import annotations

import base64
import sys

import pytest

from orchestrator.errors import InventoryError, TransportError
from orchestrator.transports import get_transport, transport_for_host
from orchestrator.transports.winrm import (
    MAX_COMMAND_LINE,
    POWERSHELL_ARGS,
    STDIN_BOOTSTRAP,
    STDIN_CHUNK,
    encode_powershell,
    winrm_options,
)

BASE = {
    "ansible_connection": "winrm",
    "ansible_host": "10.0.0.5",
    "ansible_user": "Administrator",
    "ansible_password": "s3cret",
}


def test_https_with_validation_by_default():
    t = get_transport("winrm", BASE, host="win-01")
    kw = t.protocol_kwargs()
    assert kw["endpoint"] == "https://10.0.0.5:5986/wsman"
    assert kw["server_cert_validation"] == "validate"
    assert kw["transport"] == "ntlm"
    assert kw["read_timeout_sec"] > kw["operation_timeout_sec"]


def test_http_only_when_explicit():
    t = get_transport("winrm", {**BASE, "ansible_winrm_scheme": "http"}, host="win-01")
    assert t.protocol_kwargs()["endpoint"] == "http://10.0.0.5:5985/wsman"
    with pytest.raises(InventoryError, match="win-01: ansible_winrm_scheme must be https or http"):
        winrm_options("win-01", {**BASE, "ansible_winrm_scheme": "ftp"})


def test_ignore_validation_only_when_inventory_says_so():
    o = winrm_options("w", {**BASE, "ansible_winrm_server_cert_validation": "ignore"})
    assert o.cert_validation == "ignore"
    with pytest.raises(InventoryError):
        winrm_options("w", {**BASE, "ansible_winrm_server_cert_validation": "no"})


def test_kerberos_without_password_and_unsupported_auth():
    o = winrm_options("w", {"ansible_host": "w.example", "ansible_user": "u@EXAMPLE"})
    assert o.auth == "kerberos" and o.password is None
    o = winrm_options("w", {**BASE, "ansible_winrm_transport": "credssp,ntlm"})
    assert o.auth == "ntlm"
    with pytest.raises(InventoryError, match="not supported; use ntlm or kerberos"):
        winrm_options("w", {**BASE, "ansible_winrm_transport": "basic"})


def test_password_never_in_repr():
    o = winrm_options("w", BASE)
    assert "s3cret" not in repr(o)
    assert "s3cret" not in repr(get_transport("winrm", BASE, host="w").options)


def test_transport_for_host_uses_ansible_connection():
    assert transport_for_host("w", BASE).shell == "powershell"
    assert transport_for_host("l", {"ansible_host": "127.0.0.2"}).shell == "sh"
    with pytest.raises(InventoryError, match="ansible_connection 'psrp' is not supported"):
        transport_for_host("x", {"ansible_connection": "psrp"})


def test_encoded_command_roundtrip():
    script = "Get-Service -Name 'a''b'"
    assert base64.b64decode(encode_powershell(script)).decode("utf-16-le") == script


class FakeProtocol:
    """Records what the transport sends; answers like a WS-Man shell would."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.commands = []
        self.closed = False
        self.outputs = [(b"part1 ", b"", 0, False), (b"part2", b"warn", 7, True)]
        FakeProtocol.instances.append(self)

    def open_shell(self, codepage=None):
        self.codepage = codepage
        return "shell-1"

    def run_command(self, shell, exe, args, console_mode_stdin=True, skip_cmd_shell=False):
        self.commands.append((exe, args, console_mode_stdin, skip_cmd_shell))
        self.stdin = []
        return "cmd-1"

    def send_command_input(self, shell, cid, data, end=False):
        self.stdin.append((data, end))

    def get_command_output_raw(self, shell, cid):
        if self.outputs == "hang":
            from winrm.exceptions import WinRMOperationTimeoutError

            raise WinRMOperationTimeoutError()
        return self.outputs.pop(0)

    def cleanup_command(self, shell, cid):
        pass

    def close_shell(self, shell):
        self.closed = True


@pytest.fixture
def fake_winrm(monkeypatch):
    import winrm

    FakeProtocol.instances = []
    monkeypatch.setattr(winrm, "Protocol", FakeProtocol)
    return FakeProtocol


def test_run_sends_a_short_bootstrap_and_the_script_on_stdin(fake_winrm):
    t = get_transport("winrm", BASE, host="win-01")
    res = t.run("Get-Service -Name", "x'; Remove-Item C:\\ -Recurse; '")
    assert (res.exit_status, res.stdout, res.stderr) == (7, b"part1 part2", b"warn")
    p = fake_winrm.instances[0]
    assert p.kwargs["password"] == "s3cret" and p.codepage == 65001
    exe, args, console_stdin, skip_cmd = p.commands[0]
    # the command line is the fixed bootstrap, whatever the script
    assert (exe, args) == ("powershell.exe", list(POWERSHELL_ARGS))
    assert base64.b64decode(args[-1]).decode("utf-16-le") == STDIN_BOOTSTRAP
    assert console_stdin is False and skip_cmd is False  # stdin a pipe, through cmd.exe
    # the script: one Send with End=true, base64 of UTF-8
    assert [end for _, end in p.stdin] == [True]
    sent = base64.b64decode(b"".join(d for d, _ in p.stdin)).decode("utf-8")
    assert sent == "Get-Service -Name 'x''; Remove-Item C:\\ -Recurse; '''"
    t.close()
    assert p.closed


def test_large_script_keeps_the_command_line_short_and_is_chunked(fake_winrm):
    # ~3x the bytes of one Send, non-ASCII: as -EncodedCommand it would be ~2.7x this long
    script = "# " + "Grüße ünd 'quotes' " * 40_000 + "\nhostname"
    t = get_transport("winrm", BASE, host="win-01")
    t.run(script)
    p = fake_winrm.instances[0]
    exe, args, *_ = p.commands[0]
    assert len(" ".join([exe, *args])) < 1000 < MAX_COMMAND_LINE
    assert len(p.stdin) > 3 and all(len(d) <= STDIN_CHUNK for d, _ in p.stdin)
    assert [end for _, end in p.stdin] == [False] * (len(p.stdin) - 1) + [True]
    assert base64.b64decode(b"".join(d for d, _ in p.stdin)).decode("utf-8") == script


def test_empty_script_still_ends_stdin(fake_winrm):
    get_transport("winrm", BASE, host="win-01").run("")
    assert fake_winrm.instances[0].stdin == [(b"", True)]


def test_run_timeout_closes_shell(fake_winrm):
    t = get_transport("winrm", BASE, host="win-01")
    t.connect()
    fake_winrm.instances[0].outputs = "hang"
    with pytest.raises(TransportError, match="win-01: command timed out after 0.2s"):
        t.run("Start-Sleep 60", timeout=0.2)
    assert fake_winrm.instances[0].closed


def test_unreachable_endpoint_is_one_line_error():
    # a real pywinrm session against a closed loopback port: connection refused, no Windows needed
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.9", 0))
        port = s.getsockname()[1]
    hv = {**BASE, "ansible_host": "127.0.0.9", "ansible_port": port, "ansible_winrm_scheme": "http"}
    t = get_transport("winrm", hv, host="win-01")
    with pytest.raises(TransportError) as err:
        t.run("hostname", timeout=5)
    assert str(err.value).startswith(f"win-01: cannot open WinRM shell at http://127.0.0.9:{port}")
    assert "\n" not in str(err.value)
    assert "winrm" in sys.modules
