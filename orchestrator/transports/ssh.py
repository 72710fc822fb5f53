"""SSH transport over paramiko. The only module that imports paramiko (through `_paramiko()`).

Connects lazily on first use; checks host keys against known_hosts (strict by default,
`acceptNew` adds unknown keys, a changed key is always refused); goes through jump hosts
(ProxyJump chain as direct-tcpip channels) or a ProxyCommand; every command has a deadline.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.quoting import posix_command
from orchestrator.transports import knownhosts
from orchestrator.transports.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    Identity,
    RemoteFileError,
    Result,
)
from orchestrator.transports.sshopts import (
    SshOptions,
    expand_proxy_command,
    known_hosts_name,
    ssh_options,
)

if TYPE_CHECKING:
    from orchestrator.transports.proxycommand import ProxyCommand

MAX_OUTPUT = 64 * 1024 * 1024  # a host that floods us is an error, not an OOM

_import_lock = threading.Lock()
_loaded: list[ModuleType] = []  # paramiko, once imported


def _paramiko() -> ModuleType:
    """paramiko, imported once: without `invoke` (paramiko.config imports it only for
    `Match exec` in ssh_config files, which we never read: ~150 ms of every start), and with
    its loggers silenced (its transport thread logs a traceback for every failed handshake;
    the TransportError we raise already says what failed, in one line)."""
    if _loaded:
        return _loaded[0]
    with _import_lock:
        if _loaded:
            return _loaded[0]
        block = "invoke" not in sys.modules
        if block:
            sys.modules["invoke"] = None  # type: ignore[assignment]  # import fails fast
        try:
            import paramiko
        finally:
            if block and sys.modules.get("invoke", False) is None:
                del sys.modules["invoke"]
        import logging

        log = logging.getLogger("paramiko")
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())
        _loaded.append(paramiko)
    return paramiko


def _reason(exc: BaseException) -> str:
    """One line for an exception from sockets or paramiko."""
    inner = getattr(exc, "errors", None)  # paramiko's NoValidConnectionsError wraps socket errors
    if isinstance(inner, dict) and inner:
        return _reason(next(iter(inner.values())))
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in msg:
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if msg.startswith("Error reading SSH protocol banner"):
        return "no SSH banner from the server (it closed the connection or timed out)"
    if msg == "No existing session":
        return "the SSH handshake did not finish in time"
    return f"{type(exc).__name__}: {msg}"[:300]


class _AuthFailed(TransportError):
    """The server refused our credentials (so whatever carried the connection worked)."""


class _HostKeyPolicy:
    """Called by paramiko for every server key (our paramiko key stores stay empty)."""

    def __init__(self, transport: SshTransport, prefix: str, files: list[str]) -> None:
        self.transport = transport
        self.label = transport.options.name
        self.prefix = prefix
        self.files = files

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        keytype, b64 = key.get_name(), key.get_base64()
        verdict = knownhosts.verify(self.files, hostname, keytype, b64)
        if verdict.status == "known":
            return
        if verdict.status == "revoked":
            raise HostKeyError(
                self.label,
                f"{self.prefix}host key {keytype} for {hostname} is marked @revoked at "
                f"{verdict.match.where}; refusing to connect",
            )
        if verdict.status == "changed":
            m = verdict.match
            raise HostKeyError(
                self.label,
                f"{self.prefix}HOST KEY CHANGED for {hostname}: server offers {keytype} "
                f"{key.get_fingerprint().hex()[:16]}..., known_hosts has {m.keytype} at {m.where}; "
                f"refusing to connect. If the change is expected, remove line {m.line} of {m.file}",
            )
        if self.transport.host_keys != "acceptNew":
            raise HostKeyError(
                self.label,
                f"{self.prefix}host key {keytype} for {hostname} is not in known_hosts "
                f"({', '.join(self.files)}); add it (ssh-keyscan) or set ssh.hostKeys: acceptNew",
            )
        knownhosts.append(self.files[0], hostname, keytype, b64)


class SshTransport:
    shell = "sh"

    def __init__(
        self,
        options: SshOptions,
        *,
        known_hosts: str,
        host_keys: str = "strict",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if host_keys not in ("strict", "acceptNew"):
            raise ValueError(f"host_keys must be strict or acceptNew, not {host_keys!r}")
        self.options = options
        self.identity = Identity(options.name, options.host, options.port, options.user)
        self.known_hosts_files = [known_hosts, *options.extra_known_hosts]
        self.host_keys = host_keys
        self.connect_timeout = connect_timeout
        self._clients: list[Any] = []  # jump clients first, target last
        self._proxy: ProxyCommand | None = None

    # -- connection -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        if not self._clients:
            return False
        t = self._clients[-1].get_transport()
        return bool(t and t.is_active())

    def _fail(self, message: str) -> TransportError:
        self.close()
        return TransportError(self.options.name, message)

    def _connect_one(self, host: str, port: int, user: str | None, sock: Any, prefix: str) -> Any:
        paramiko = _paramiko()

        name = known_hosts_name(host, port)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_HostKeyPolicy(self, prefix, self.known_hosts_files))
        # Offer only key types we already know for this host, so the server proves the one on file.
        known = knownhosts.known_types(self.known_hosts_files, name)
        disabled: dict[str, list[str]] = {}
        if known:
            allowed = {a for t in known for a in knownhosts.ALGORITHMS.get(t, (t,))}
            all_algs = {a for algs in knownhosts.ALGORITHMS.values() for a in algs}
            disabled["keys"] = sorted(all_algs - allowed)
        o = self.options
        try:
            client.connect(
                hostname=host,
                port=port,
                username=user,
                password=o.password,
                key_filename=o.key_file,
                allow_agent=not (o.key_file or o.password),
                look_for_keys=not (o.key_file or o.password),
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                sock=sock,
                disabled_algorithms=disabled or None,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            raise _AuthFailed(
                o.name, f"{prefix}authentication failed for user {user!r}: {_reason(exc)}"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise TransportError(
                o.name, f"{prefix}cannot connect to {host}:{port}: {_reason(exc)}"
            ) from None
        return client

    def connect(self) -> None:
        if self.connected:
            return
        self.close()
        o = self.options
        sock: Any = None
        try:
            if o.proxy_command:
                from orchestrator.transports.proxycommand import ProxyCommand

                cmd = expand_proxy_command(o.proxy_command, o.host, o.port, o.user)
                self._proxy = ProxyCommand(cmd, o.name)
                sock = self._proxy.sock
            for jump in o.jumps:
                prefix = f"jump host {jump.host}:{jump.port}: "
                client = self._connect_one(jump.host, jump.port, jump.user or o.user, sock, prefix)
                self._clients.append(client)
                sock = self._open_tunnel(client, prefix)
            self._clients.append(self._connect_one(o.host, o.port, o.user, sock, ""))
        except (HostKeyError, _AuthFailed):  # the server answered: the proxy worked
            self.close()
            raise
        except TransportError as exc:
            why = self._proxy.failure() if self._proxy is not None else None
            self.close()
            if why:
                raise TransportError(o.name, f"cannot connect to {o.host}:{o.port}: {why}") \
                    from exc
            raise

    def _open_tunnel(self, jump_client: Any, prefix: str) -> Any:
        paramiko = _paramiko()

        nxt = (
            self.options.jumps[len(self._clients)]
            if len(self._clients) < len(self.options.jumps)
            else self.options
        )
        try:
            return jump_client.get_transport().open_channel(
                "direct-tcpip", (nxt.host, nxt.port), ("127.0.0.1", 0), timeout=self.connect_timeout
            )
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                self.options.name, f"{prefix}could not reach {nxt.host}:{nxt.port}: {_reason(exc)}"
            ) from None

    # -- commands -------------------------------------------------------------------------
    def run(self, command: str, *args: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> Result:
        paramiko = _paramiko()

        line = posix_command(command, args)
        self.connect()
        deadline = time.monotonic() + timeout
        try:
            chan = self._clients[-1].get_transport().open_session(timeout=self.connect_timeout)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._fail(f"cannot open a session: {_reason(exc)}") from None
        out: list[bytes] = []
        err: list[bytes] = []
        size = 0
        try:
            chan.exec_command(line)
            chan.shutdown_write()
            fd = chan.fileno()
            while True:
                progressed = False
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out.append(data)
                    size += len(data)
                    progressed = True
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err.append(data)
                    size += len(data)
                    progressed = True
                if size > MAX_OUTPUT:
                    chan.close()
                    raise self._fail(f"command produced more than {MAX_OUTPUT} bytes; aborted")
                if (
                    chan.exit_status_ready()
                    and chan.eof_received
                    and not (chan.recv_ready() or chan.recv_stderr_ready())
                ):
                    break
                if chan.closed and not progressed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    chan.close()
                    raise TransportError(
                        self.options.name, f"command timed out after {timeout:g}s (channel closed)"
                    )
                if not progressed:
                    select.select([fd], [], [], min(remaining, 1.0))
            if not chan.exit_status_ready():
                raise self._fail("connection dropped before the command finished")
            status = chan.recv_exit_status()
        except TransportError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._fail(f"connection lost during command: {_reason(exc)}") from None
        finally:
            chan.close()
        return Result(status, b"".join(out), b"".join(err))

    def read_file(self, path: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> bytes:
        res = self.run("cat --", path, timeout=timeout)
        if res.exit_status != 0:
            raise RemoteFileError(
                self.options.name, f"cannot read {path}: {res.first_error_line()}"
            )
        return res.stdout

    def close(self) -> None:
        for client in reversed(self._clients):
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
        self._clients = []
        if self._proxy is not None:
            try:
                self._proxy.close()
            except Exception:  # noqa: BLE001
                pass
            self._proxy = None

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create(name: str, host_vars: Mapping[str, Any], settings: Any) -> SshTransport:
    """Registry entry point. `settings`: known_hosts, host_keys, optionally connect_timeout."""
    return SshTransport(
        ssh_options(name, host_vars),
        known_hosts=os.path.expanduser(str(getattr(settings, "known_hosts", "~/.ssh/known_hosts"))),
        host_keys=getattr(settings, "host_keys", "strict"),
        connect_timeout=float(getattr(settings, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
    )
