"""Long scripts over WinRM: the stdin bootstrap, and the lab endpoint's cmd.exe line limit.

WinRS runs each command through cmd.exe (8,191 characters at most), so the WinRM transport
starts powershell.exe with a short bootstrap and sends the script through WS-Management Send
(stdin). The first tests run the lab's emulator directly (no root); the `lab_fleet` ones go
through real pywinrm (NTLM, message encryption) to the lab's WinRM endpoint: protocol level,
no Windows.
"""

from __future__ import annotations

import base64
import json

import pytest

from orchestrator.lab import winps
from orchestrator.lab.winstate import default_state
from orchestrator.transports.winrm import (
    MAX_COMMAND_LINE,
    POWERSHELL_ARGS,
    STDIN_BOOTSTRAP,
    encode_powershell,
    stdin_payload,
)

LSA = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"
TOO_LONG = b"The command line is too long.\r\n"


@pytest.fixture
def state_path(tmp_path):
    path = tmp_path / "host.json"
    path.write_text(json.dumps(default_state("lab-win-01")))
    return path


def test_the_emulator_knows_the_transports_bootstrap():
    assert winps.STDIN_BOOTSTRAP == STDIN_BOOTSTRAP
    assert winps.MAX_COMMAND_LINE == MAX_COMMAND_LINE == 8191
    assert winps.wants_stdin("powershell.exe", list(POWERSHELL_ARGS))
    other = ["-NoProfile", "-EncodedCommand", encode_powershell("hostname")]
    assert not winps.wants_stdin("powershell.exe", other)
    assert not winps.wants_stdin("hostname", [])


def test_command_lines_over_8191_characters_fail_like_cmd_exe(state_path):
    before = state_path.read_text()
    fits = "x" * (MAX_COMMAND_LINE - len("echo "))
    assert winps.run_command(str(state_path), "echo", [fits]) == ((fits + "\n").encode(), b"", 0)
    assert winps.run_command(str(state_path), "echo", [fits + "y"]) == (b"", TOO_LONG, 1)
    # a script that would change the host does not run at all when its line is too long
    script = "Stop-Service WinRM\n" + "# padding\n" * 1000
    assert len(encode_powershell(script)) > MAX_COMMAND_LINE
    res = winps.run_command(str(state_path), "powershell.exe",
                            ["-NoProfile", "-EncodedCommand", encode_powershell(script)])
    assert res == (b"", TOO_LONG, 1)
    assert state_path.read_text() == before


# (script, stdout, stderr contains, exit code) as the bootstrap runs it
BOOTSTRAP_CASES = [
    ("[Console]::Out.Write('Grüße')", "Grüße", "", 0),
    ("'a'\nexit 4", "a\n", "", 4),
    ("try { throw 'inner' } catch { 'caught' }\n'after'", "caught\nafter\n", "", 0),
    ("'before'\nthrow 'boom'\n'never'", "before\n", "boom", 1),
    ("Get-Service -Name NoSuch -ErrorAction Stop", "", "Cannot find any service", 1),
    # a non-terminating error only writes to stderr; the bootstrap ends with exit 0
    ("Get-Service -Name NoSuch", "", "Cannot find any service", 0),
    ("if ($true) {", "", 'Exception calling "Create"', 1),
]


@pytest.mark.parametrize("script,stdout,stderr,code", BOOTSTRAP_CASES)
def test_bootstrap_semantics(state_path, script, stdout, stderr, code):
    out, err, rc = winps.run_command(str(state_path), "powershell.exe", list(POWERSHELL_ARGS),
                                     stdin_payload(script))
    assert (out.decode(), rc) == (stdout, code), err
    assert stderr in err.decode()


def test_bootstrap_rejects_stdin_that_is_not_base64(state_path):
    out, err, rc = winps.run_command(str(state_path), "powershell.exe", list(POWERSHELL_ARGS),
                                     b"Get-Service; exit 0\r\n")
    assert rc == 1 and b"is not a valid Base-64 string" in err and out == b""


# ------------------------------------------------------------------ through real pywinrm
def _transport(lab_fleet):
    from orchestrator.inventory.loader import load_inventory
    from orchestrator.transports import TransportSettings, transport_for_host

    name = lab_fleet.windows_hosts[0].name
    host = load_inventory(lab_fleet.inventory_path).hosts[name]
    return transport_for_host(name, dict(host.vars), TransportSettings())


def _protocol(lab_fleet, **overrides):
    import winrm

    kwargs = {**_transport(lab_fleet).protocol_kwargs(), **overrides}
    p = winrm.Protocol(**kwargs)
    return p, p.open_shell(codepage=65001)


def test_a_long_script_runs_through_the_transport(lab_fleet):
    from orchestrator.facts import FactBatch, FactRequest, to_jsonable

    name = lab_fleet.windows_hosts[0].name
    state = default_state(name)
    services = sorted(state["services"])
    values = {f"Value{i:02d}": i for i in range(40)}
    state["registry"][LSA].update(values)
    original = lab_fleet.windows_state(name)
    lab_fleet.set_windows_state(name, state)
    batch = FactBatch("powershell")
    batch.extend([FactRequest("win.services", (s,)) for s in services]
                 + [FactRequest("win.hotfixes")]
                 + [FactRequest("win.registry", (LSA, v)) for v in values])
    script = batch.script()
    assert len(script) > 20_000
    assert len(encode_powershell(script)) > 2.5 * len(script) > MAX_COMMAND_LINE
    t = _transport(lab_fleet)
    try:
        res = t.run(script, timeout=60)
        raw = t.run("$s = '" + "é" * 21_000 + "'\n[Console]::Out.Write($s.Length)\nexit 3")
    finally:
        t.close()
        lab_fleet.set_windows_state(name, original)
    assert (res.exit_status, res.stderr) == (0, b"")
    got = {r.key: (v.error or to_jsonable(v.value))
           for r, v in batch.parse(res.stdout, res.stderr).items()}
    assert all(got[f"win.services:{s}"][s]["exists"] for s in services)
    assert got["win.hotfixes"]["KB5034441"]["installed_on"] == "2024-01-09"
    for v, expected in values.items():
        assert got[f"win.registry:{LSA},{v}"]["value"] == expected
    assert (raw.exit_status, raw.stdout) == (3, b"21000")


def test_the_endpoint_refuses_an_over_long_command_line(lab_fleet):
    p, shell = _protocol(lab_fleet)
    try:
        script = "[Console]::Out.Write('ran')\n" + "# padding\n" * 400
        cid = p.run_command(shell, "powershell.exe",
                            ["-NoProfile", "-EncodedCommand", encode_powershell(script)])
        out, err, rc = p.get_command_output(shell, cid)
        assert (out, err, rc) == (b"", TOO_LONG, 1)
        short = "[Console]::Out.Write('ran')"  # the same way with a short line works
        cid = p.run_command(shell, "powershell.exe",
                            ["-NoProfile", "-EncodedCommand", encode_powershell(short)])
        assert p.get_command_output(shell, cid) == (b"ran", b"", 0)
    finally:
        p.close_shell(shell)


def test_the_bootstrap_runs_only_once_stdin_ends(lab_fleet):
    from winrm.exceptions import WinRMOperationTimeoutError

    p, shell = _protocol(lab_fleet, operation_timeout_sec=1, read_timeout_sec=10)
    try:
        cid = p.run_command(shell, "powershell.exe", list(POWERSHELL_ARGS),
                            console_mode_stdin=False)
        payload = stdin_payload("[Console]::Out.Write('stdin ' + $env:COMPUTERNAME)")
        half = len(payload) // 2
        p.send_command_input(shell, cid, payload[:half])
        # like WinRS: Receive waits for OperationTimeout, then the w:TimedOut fault
        with pytest.raises(WinRMOperationTimeoutError):
            p.get_command_output_raw(shell, cid)
        p.send_command_input(shell, cid, payload[half:], end=True)
        out, err, rc = p.get_command_output(shell, cid)
        assert (out, err, rc) == (b"stdin " + lab_fleet.windows_hosts[0].name.upper().encode(),
                                  b"", 0)
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_stdin_for_an_unknown_command_is_a_fault(lab_fleet):
    from winrm.exceptions import WinRMError

    p, shell = _protocol(lab_fleet)
    try:
        with pytest.raises(WinRMError, match="command was not found"):
            p.send_command_input(shell, "NO-SUCH-COMMAND", base64.b64encode(b"x"), end=True)
    finally:
        p.close_shell(shell)
