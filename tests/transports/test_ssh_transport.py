"""SshTransport against a real OpenSSH server on 127.0.0.x (see sshd_server.py)."""

from __future__ import annotations

import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sshd_server import free_port

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.transports import TransportSettings, get_transport
from orchestrator.transports.base import RemoteFileError


def settings(kh: Path, mode: str = "strict", connect_timeout: float = 5) -> TransportSettings:
    return TransportSettings(known_hosts=kh, host_keys=mode, connect_timeout=connect_timeout)


@pytest.fixture
def known(tmp_path: Path, sshd) -> Path:
    kh = tmp_path / "known_hosts"
    kh.write_text("# comment line\n" + sshd.known_hosts_line())
    return kh


def test_run_returns_status_stdout_stderr(sshd, known):
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    try:
        res = t.run("sh -c 'echo out; echo err >&2; exit 3'")
        assert (res.exit_status, res.stdout, res.stderr) == (3, b"out\n", b"err\n")
        assert t.run("printf", "%s|", "a b", "c").stdout == b"a b|c|"
        assert t.identity.host == "127.0.0.2" and t.identity.port == sshd.port
    finally:
        t.close()


def test_connection_is_lazy(sshd, known):
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    assert not t.connected
    t.run("true")
    assert t.connected
    t.close()
    assert not t.connected


def test_hostile_argument_is_quoted(sshd, known, tmp_path):
    target = tmp_path / "pwned"
    hostile = f"x; touch {target}"
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    try:
        res = t.run("echo", hostile)
        assert res.stdout == (hostile + "\n").encode()
        res = t.run("dpkg-query -W", hostile)
        assert res.exit_status != 0
        t.run("echo", "$(touch " + str(target) + ")", "`touch " + str(target) + "`", "'\"")
    finally:
        t.close()
    assert not target.exists()


def test_read_file_binary_and_missing(sshd, known, tmp_path):
    f = tmp_path / "blob"
    f.write_bytes(b"\xff\xfe not utf-8 \x00\n")
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    try:
        assert t.read_file(str(f)) == b"\xff\xfe not utf-8 \x00\n"
        with pytest.raises(RemoteFileError, match="web-01: cannot read .*/nope"):
            t.read_file(str(tmp_path / "nope"))
    finally:
        t.close()


def test_strict_refuses_unknown_key(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    t = get_transport("ssh", sshd.host_vars(), settings(kh), host="web-01")
    with pytest.raises(HostKeyError) as err:
        t.run("true")
    msg = str(err.value)
    assert msg.startswith("web-01: host key ssh-ed25519 for [127.0.0.2]:")
    assert "not in known_hosts" in msg and "\n" not in msg
    assert kh.read_text() == ""


def test_accept_new_adds_key_0600_then_strict_accepts(sshd, tmp_path):
    kh = tmp_path / "sub" / "known_hosts"
    t = get_transport("ssh", sshd.host_vars(), settings(kh, "acceptNew"), host="web-01")
    assert t.run("true").exit_status == 0
    t.close()
    assert kh.read_text() == sshd.known_hosts_line()
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    t = get_transport("ssh", sshd.host_vars(), settings(kh, "strict"), host="web-01")
    assert t.run("true").exit_status == 0
    t.close()


def test_changed_key_refused_even_in_accept_new(sshd, known):
    sshd.stop()
    sshd.regenerate_host_key()
    sshd.start()
    before = known.read_text()
    for mode in ("strict", "acceptNew"):
        t = get_transport("ssh", sshd.host_vars(), settings(known, mode), host="web-01")
        with pytest.raises(HostKeyError) as err:
            t.run("true")
        msg = str(err.value)
        assert "HOST KEY CHANGED" in msg and f"{known}:2" in msg and "web-01" in msg
        assert "remove line 2" in msg
    assert known.read_text() == before


def test_hashed_known_hosts_and_user_known_hosts_file(sshd, tmp_path):
    import subprocess

    main = tmp_path / "main_known_hosts"
    main.write_text("")
    extra = tmp_path / "extra_known_hosts"
    extra.write_text(sshd.known_hosts_line())
    subprocess.run(["ssh-keygen", "-H", "-f", str(extra)], check=True, capture_output=True)
    assert "|1|" in extra.read_text()
    hv = sshd.host_vars(ansible_ssh_common_args=f"-o UserKnownHostsFile={extra}")
    t = get_transport("ssh", hv, settings(main), host="web-01")
    assert t.run("true").exit_status == 0
    t.close()


def test_command_timeout_closes_channel(sshd, known):
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    try:
        start = time.monotonic()
        with pytest.raises(TransportError, match=r"web-01: command timed out after 0.5s"):
            t.run("sleep 30", timeout=0.5)
        assert time.monotonic() - start < 5
        assert t.run("echo", "still usable").stdout == b"still usable\n"
    finally:
        t.close()


def test_connection_refused_is_one_line(tmp_path):
    port = free_port("127.0.0.9")
    kh = tmp_path / "kh"
    hv = {"ansible_host": "127.0.0.9", "ansible_port": port, "ansible_user": "root"}
    t = get_transport("ssh", hv, settings(kh), host="db-01")
    with pytest.raises(TransportError) as err:
        t.run("true")
    assert str(err.value) == f"db-01: cannot connect to 127.0.0.9:{port}: connection refused"


def test_connect_timeout_on_silent_server(tmp_path):
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.9", 0))
    srv.listen(1)  # accepts TCP, never says SSH-2.0
    try:
        hv = {"ansible_host": "127.0.0.9", "ansible_port": srv.getsockname()[1]}
        t = get_transport("ssh", hv, settings(tmp_path / "kh", connect_timeout=0.5), host="h")
        start = time.monotonic()
        with pytest.raises(TransportError, match="h: cannot connect"):
            t.run("true")
        assert time.monotonic() - start < 5
    finally:
        srv.close()


def test_bad_key_is_authentication_failure(sshd, known, tmp_path):
    from sshd_server import keygen

    other = tmp_path / "other_key"
    keygen(other)
    hv = sshd.host_vars(ansible_ssh_private_key_file=str(other))
    t = get_transport("ssh", hv, settings(known), host="web-01")
    with pytest.raises(TransportError, match="web-01: authentication failed"):
        t.run("true")


def test_dropped_connection_mid_session(sshd, known):
    t = get_transport("ssh", sshd.host_vars(), settings(known), host="web-01")
    try:
        t.run("true")
        sshd.kill_all()  # the listener and our session process, by pid
        with pytest.raises(TransportError, match="web-01: "):
            t.run("sleep 5", timeout=10)
    finally:
        t.close()


def test_proxy_jump_goes_through_the_jump_host(sshd_factory, tmp_path):
    jump = sshd_factory("127.0.0.3")
    target = sshd_factory("127.0.0.4")
    kh = tmp_path / "kh"
    kh.write_text(jump.known_hosts_line() + target.known_hosts_line())
    for args in (
        f"-o ProxyJump=root@127.0.0.3:{jump.port}",
        f"-J root@127.0.0.3:{jump.port}",
        f'-o "ProxyJump 127.0.0.3:{jump.port}" -o StrictHostKeyChecking=no',
    ):
        t = get_transport(
            "ssh", target.host_vars(ansible_ssh_common_args=args), settings(kh), host="app-01"
        )
        assert t.run("echo", "via jump").stdout == b"via jump\n"
        t.close()
    assert f"target 127.0.0.4 port {target.port}" in jump.log.read_text()
    jump.stop()  # target still up, but the only way in is gone
    t = get_transport(
        "ssh",
        target.host_vars(ansible_ssh_common_args=f"-J 127.0.0.3:{jump.port}"),
        settings(kh),
        host="app-01",
    )
    with pytest.raises(TransportError, match="app-01: jump host 127.0.0.3:.*connection refused"):
        t.run("true")


def test_jump_host_key_is_checked_too(sshd_factory, tmp_path):
    jump = sshd_factory("127.0.0.3")
    target = sshd_factory("127.0.0.4")
    kh = tmp_path / "kh"
    kh.write_text(target.known_hosts_line())  # jump host unknown
    hv = target.host_vars(ansible_ssh_common_args=f"-J 127.0.0.3:{jump.port}")
    t = get_transport("ssh", hv, settings(kh), host="app-01")
    with pytest.raises(HostKeyError, match="app-01: jump host 127.0.0.3:.*not in known_hosts"):
        t.run("true")


def test_proxy_command(sshd_factory, tmp_path):
    jump = sshd_factory("127.0.0.3")
    target = sshd_factory("127.0.0.4")
    kh = tmp_path / "kh"
    kh.write_text(jump.known_hosts_line() + target.known_hosts_line())
    proxy = (
        f"ssh -q -p {jump.port} -i {jump.client_key} -o UserKnownHostsFile={kh} "
        f"-o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p root@127.0.0.3"
    )
    hv = target.host_vars(ansible_ssh_common_args=f'-o ProxyCommand="{proxy}"')
    t = get_transport("ssh", hv, settings(kh), host="app-01")
    try:
        assert t.run("echo", "via proxy").stdout == b"via proxy\n"
    finally:
        t.close()
    assert f"target 127.0.0.4 port {target.port}" in jump.log.read_text()


def _proxy_hv(command: str) -> dict:
    return {"ansible_host": "192.0.2.10", "ansible_port": 22, "ansible_user": "root",
            "ansible_ssh_common_args": f"-o ProxyCommand={shlex.quote(command)}"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("sh -c 'echo gateway unreachable >&2; exit 3'",
         "web-01: cannot connect to 192.0.2.10:22: ProxyCommand 'sh' exited with status 3 "
         "before the SSH connection was set up: gateway unreachable"),
        ("false",
         "web-01: cannot connect to 192.0.2.10:22: ProxyCommand 'false' exited with status 1 "
         "before the SSH connection was set up"),
        ("sh -c 'printf \"\\033]0;forged\\a\\n\" >&2; kill -9 $$'",
         "web-01: cannot connect to 192.0.2.10:22: ProxyCommand 'sh' was killed by signal 9 "
         "before the SSH connection was set up: \\x1b]0;forged\\x07"),
        ("/nonexistent/proxy %h %p",
         "web-01: cannot start ProxyCommand '/nonexistent/proxy': No such file or directory"),
    ],
)
def test_failed_proxy_command_is_one_line_naming_the_host(tmp_path, command, expected):
    t = get_transport("ssh", _proxy_hv(command), settings(tmp_path / "kh", connect_timeout=10),
                      host="web-01")
    start = time.monotonic()
    with pytest.raises(TransportError) as err:
        t.run("true")
    assert str(err.value) == expected
    assert time.monotonic() - start < 5  # the proxy's exit is seen at once, not at the timeout


def test_failed_proxy_command_prints_no_traceback(tmp_path):
    """paramiko's transport thread logs a traceback when a handshake fails or times out; it
    must not reach the terminal (a fresh process: pytest's log handlers would hide it here)."""
    script = (
        "from pathlib import Path\n"
        "from orchestrator.transports import TransportSettings, get_transport\n"
        "from orchestrator.errors import TransportError\n"
        f"s = TransportSettings(known_hosts=Path({str(tmp_path / 'kh')!r}), connect_timeout=1)\n"
        f"for cmd in ['sh -c \"exit 255\"', 'sleep 120']:\n"
        f"    hv = {_proxy_hv('CMD')!r}\n"
        "    hv['ansible_ssh_common_args'] = '-o ProxyCommand=' + repr(cmd)\n"
        "    try:\n"
        "        get_transport('ssh', hv, s, host='web-01').run('true')\n"
        "    except TransportError as exc:\n"
        "        print(exc)\n"
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.stderr == ""
    first, second = p.stdout.splitlines()
    assert first == ("web-01: cannot connect to 192.0.2.10:22: ProxyCommand 'sh' exited "
                     "with status 255 before the SSH connection was set up")
    assert second.startswith("web-01: cannot connect to 192.0.2.10:22: ")
    assert "Traceback" not in second and "ProxyCommand" not in second  # it was still running
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 120" not in ps.splitlines()  # its whole group was ended


def test_proxy_command_process_group_ends_with_the_connection(sshd_factory, tmp_path):
    jump = sshd_factory("127.0.0.3")
    target = sshd_factory("127.0.0.4")
    kh = tmp_path / "kh"
    kh.write_text(jump.known_hosts_line() + target.known_hosts_line())
    pids = tmp_path / "pids"
    wrapper = tmp_path / "proxy.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"sleep 300 </dev/null >/dev/null 2>&1 &\necho $! $$ > {pids}\n"
        f"exec ssh -q -p {jump.port} -i {jump.client_key} -o UserKnownHostsFile={kh} "
        "-o StrictHostKeyChecking=yes -o BatchMode=yes -W \"$1:$2\" root@127.0.0.3\n")
    wrapper.chmod(0o755)
    hv = target.host_vars(ansible_ssh_common_args=f"-o ProxyCommand=\"{wrapper} %h %p\"")
    t = get_transport("ssh", hv, settings(kh), host="app-01")
    try:
        assert t.run("echo", "via proxy").stdout == b"via proxy\n"
        left = [int(x) for x in pids.read_text().split()]
        assert all(Path(f"/proc/{pid}").exists() for pid in left)
    finally:
        t.close()
    time.sleep(0.2)
    alive = [pid for pid in left if Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:1]]
    assert alive == []


def test_authentication_failure_through_a_proxy_command_says_so(sshd_factory, tmp_path):
    """The proxy ends when the refused connection closes; the error is still the server's."""
    from sshd_server import keygen

    jump = sshd_factory("127.0.0.3")
    target = sshd_factory("127.0.0.4")
    kh = tmp_path / "kh"
    kh.write_text(jump.known_hosts_line() + target.known_hosts_line())
    other = tmp_path / "other_key"
    keygen(other)
    proxy = (
        f"ssh -q -p {jump.port} -i {jump.client_key} -o UserKnownHostsFile={kh} "
        f"-o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p root@127.0.0.3"
    )
    hv = target.host_vars(ansible_ssh_common_args=f'-o ProxyCommand="{proxy}"',
                          ansible_ssh_private_key_file=str(other))
    t = get_transport("ssh", hv, settings(kh), host="app-01")
    with pytest.raises(TransportError) as err:
        t.run("true")
    assert str(err.value).startswith("app-01: authentication failed for user ")
