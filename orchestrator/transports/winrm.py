"""WinRM transport over pywinrm. The only module that imports winrm (inside functions).

HTTPS with certificate validation unless the inventory says otherwise
(ansible_winrm_server_cert_validation=ignore); NTLM or Kerberos; plain HTTP only when
ansible_winrm_scheme=http is given explicitly.

Commands are PowerShell scripts of any size. WinRS starts every command through cmd.exe, whose
command line stops at 8,191 characters ("The command line is too long."), so the script is not
put on the command line: as Ansible's winrm connection does, powershell.exe is started with a
short, fixed -EncodedCommand bootstrap (STDIN_BOOTSTRAP: a 594-character command line) and
the script follows through the WS-Management Send operation (stdin) as base64 of UTF-8, ended
with End="true"; the bootstrap decodes it, compiles it with [ScriptBlock]::Create and runs it.
`-Command -` is not used: PowerShell 5.1 reads such stdin line by line like an interactive prompt
(each statement runs as its line arrives, a multi-line block needs an extra blank line to run
at all, a parse error does not stop later lines), while the bootstrap parses the whole script at
once, as -EncodedCommand did. base64 keeps the stdin pure ASCII, so neither the shell's code
page nor [Console]::InputEncoding can change a character of the script.

Exit status of run(): N after `exit N`; 1 when a terminating error escapes the script (throw,
-ErrorAction Stop or $ErrorActionPreference = 'Stop', a parse error), with its message on
stderr; otherwise 0 (non-terminating errors go to stderr only).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import InventoryError, TransportError
from orchestrator.quoting import powershell_command, powershell_quote
from orchestrator.transports.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    Identity,
    RemoteFileError,
    Result,
    port_number,
)

AUTH_METHODS = ("ntlm", "kerberos")


@dataclass(frozen=True)
class WinrmOptions:
    name: str
    host: str
    port: int
    scheme: str
    path: str
    user: str | None
    password: str | None = field(repr=False)
    auth: str
    cert_validation: str  # validate | ignore
    ca_trust_path: str | None = None
    message_encryption: str = "auto"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def winrm_options(name: str, host_vars: Mapping[str, Any]) -> WinrmOptions:
    where = f"inventory host {name}"
    scheme = str(host_vars.get("ansible_winrm_scheme", "https")).lower()
    if scheme not in ("https", "http"):
        raise InventoryError(f"{where}: ansible_winrm_scheme must be https or http, not {scheme!r}")
    port_raw = host_vars.get("ansible_port", 5986 if scheme == "https" else 5985)
    port = port_number(port_raw, where)
    password = host_vars.get("ansible_password", host_vars.get("ansible_winrm_password"))
    auth = str(host_vars.get("ansible_winrm_transport", "ntlm" if password else "kerberos")).lower()
    if "," in auth:  # Ansible allows a list; take the first we support
        auth = next((a.strip() for a in auth.split(",") if a.strip() in AUTH_METHODS), auth)
    if auth not in AUTH_METHODS:
        raise InventoryError(
            f"{where}: ansible_winrm_transport {auth!r} is not supported; use ntlm or kerberos"
        )
    validation = str(host_vars.get("ansible_winrm_server_cert_validation", "validate")).lower()
    if validation not in ("validate", "ignore"):
        raise InventoryError(
            f"{where}: ansible_winrm_server_cert_validation must be validate or ignore"
        )
    encryption = str(host_vars.get("ansible_winrm_message_encryption", "auto")).lower()
    if encryption not in ("auto", "always", "never"):
        raise InventoryError(
            f"{where}: ansible_winrm_message_encryption must be auto, always or never"
        )
    path = str(host_vars.get("ansible_winrm_path", "/wsman"))
    if not path.startswith("/"):
        path = "/" + path
    return WinrmOptions(
        name=name,
        host=str(host_vars.get("ansible_host") or name),
        port=port,
        scheme=scheme,
        path=path,
        user=str(host_vars["ansible_user"]) if host_vars.get("ansible_user") else None,
        password=str(password) if password is not None else None,
        auth=auth,
        cert_validation=validation,
        ca_trust_path=host_vars.get("ansible_winrm_ca_trust_path"),
        message_encryption=encryption,
    )


MAX_COMMAND_LINE = 8191
"""cmd.exe's limit on a command line, which WinRS runs every command through."""
STDIN_CHUNK = 200_000
"""Script bytes per WS-Management Send (as Ansible; well under the default MaxEnvelopeSizekb)."""
STDIN_BOOTSTRAP = (
    "try { & ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String((@($input) -join ''))))) } "
    "catch { [Console]::Error.WriteLine($_.Exception.Message); exit 1 }; exit 0"
)
"""Runs the script that arrives on stdin (base64 of UTF-8, any line breaks). `$input` is
stdin's lines when powershell.exe's stdin is a pipe (Ansible's bootstrap_wrapper.ps1 reads it
the same way); `exit N` in the script is not caught by catch and ends powershell.exe with N.
The lab's WinRM endpoint (orchestrator/lab/winps.py) recognises exactly this text."""


def encode_powershell(script: str) -> str:
    """The `powershell -EncodedCommand` form: base64 of UTF-16LE."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


POWERSHELL_ARGS = (
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    encode_powershell(STDIN_BOOTSTRAP),
)
"""powershell.exe's arguments for every command: the same short line whatever the script."""


def stdin_payload(script: str) -> bytes:
    """What the bootstrap reads from stdin: base64 of the UTF-8 script in 76-character lines."""
    return base64.encodebytes(script.encode("utf-8"))


class WinrmTransport:
    shell = "powershell"

    def __init__(
        self, options: WinrmOptions, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        self.options = options
        self.identity = Identity(options.name, options.host, options.port, options.user)
        self.connect_timeout = connect_timeout
        self._protocol: Any = None
        self._shell_id: str | None = None

    def protocol_kwargs(self) -> dict[str, Any]:
        """The exact options handed to winrm.Protocol (tested: no Windows host runs here)."""
        o = self.options
        operation = max(int(self.connect_timeout), 1)
        kwargs: dict[str, Any] = {
            "endpoint": o.endpoint,
            "transport": o.auth,
            "username": o.user,
            "password": o.password,
            "server_cert_validation": o.cert_validation,
            "operation_timeout_sec": operation,
            "read_timeout_sec": operation + 10,
            "message_encryption": o.message_encryption,
        }
        # An explicit CA bundle: the inventory's, else the one requests would take from the env.
        ca = (
            o.ca_trust_path
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
        )
        if ca:
            kwargs["ca_trust_path"] = ca
        return kwargs

    def _fail(self, message: str) -> TransportError:
        self.close()
        return TransportError(self.options.name, message)

    def connect(self) -> None:
        if self._shell_id is not None:
            return
        import winrm
        from winrm.exceptions import WinRMError

        try:
            self._protocol = winrm.Protocol(**self.protocol_kwargs())
            self._shell_id = self._protocol.open_shell(codepage=65001)
        except (WinRMError, OSError, ValueError) as exc:
            raise self._fail(
                f"cannot open WinRM shell at {self.options.endpoint}: {_reason(exc)}"
            ) from None
        except (
            Exception
        ) as exc:  # requests / spnego errors have no common base we can import lazily
            raise self._fail(
                f"cannot open WinRM shell at {self.options.endpoint}: {_reason(exc)}"
            ) from None

    def run(self, command: str, *args: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> Result:
        from winrm.exceptions import WinRMOperationTimeoutError

        script = powershell_command(command, args)
        self.connect()
        p, shell = self._protocol, self._shell_id
        deadline = time.monotonic() + timeout
        try:
            # stdin is a pipe (not a console) so the bootstrap's $input sees the Send stream
            cid = p.run_command(
                shell, "powershell.exe", list(POWERSHELL_ARGS), console_mode_stdin=False
            )
        except Exception as exc:
            raise self._fail(f"cannot start command: {_reason(exc)}") from None
        payload = stdin_payload(script)
        try:
            for start in range(0, max(len(payload), 1), STDIN_CHUNK):  # "" still ends stdin
                if time.monotonic() > deadline:
                    raise self._fail(f"command timed out after {timeout:g}s (shell closed)")
                end = start + STDIN_CHUNK >= len(payload)
                try:
                    p.send_command_input(shell, cid, payload[start : start + STDIN_CHUNK], end=end)
                except WinRMOperationTimeoutError:
                    # a busy service answers Send late but still takes the input (as Ansible)
                    continue
        except TransportError:
            raise
        except Exception as exc:
            raise self._fail(f"cannot send the script to powershell: {_reason(exc)}") from None
        out: list[bytes] = []
        err: list[bytes] = []
        done, rc = False, -1
        try:
            while not done:
                if time.monotonic() > deadline:
                    raise self._fail(f"command timed out after {timeout:g}s (shell closed)")
                try:
                    o, e, rc, done = p.get_command_output_raw(shell, cid)
                except WinRMOperationTimeoutError:
                    continue
                out.append(o)
                err.append(e)
        except TransportError:
            raise
        except Exception as exc:
            raise self._fail(f"connection lost during command: {_reason(exc)}") from None
        try:
            p.cleanup_command(shell, cid)
        except Exception:  # noqa: BLE001 - the output is already complete
            pass
        return Result(int(rc), b"".join(out), b"".join(err))

    def read_file(self, path: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> bytes:
        script = (
            "$ErrorActionPreference = 'Stop'; "
            f"[Convert]::ToBase64String([IO.File]::ReadAllBytes({powershell_quote(path)}))"
        )
        res = self.run(script, timeout=timeout)
        if res.exit_status != 0:
            raise RemoteFileError(
                self.options.name, f"cannot read {path}: {res.first_error_line()}"
            )
        try:
            return base64.b64decode(res.stdout.strip(), validate=True)
        except ValueError:
            raise RemoteFileError(self.options.name, f"cannot read {path}: garbled reply") from None

    def close(self) -> None:
        if self._protocol is not None and self._shell_id is not None:
            try:
                self._protocol.close_shell(self._shell_id)
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
        self._shell_id = None
        self._protocol = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def create(name: str, host_vars: Mapping[str, Any], settings: Any) -> WinrmTransport:
    return WinrmTransport(
        winrm_options(name, host_vars),
        connect_timeout=float(getattr(settings, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
    )
