"""Redfish over HTTPS: one keep-alive connection per BMC, basic authentication, JSON in and out.

    with RedfishSession(bmc, timeout=30) as s:
        inventory = s.get("/redfish/v1/UpdateService/FirmwareInventory")

The certificate is verified (against `bmc_ca_file`, else the system's CAs) unless the inventory
turns it off. Errors are TransportError with one line naming the host and what to do; the
password is never part of a message (it travels only in the Authorization header, as
base64 of `user:password` in UTF-8, as Ansible sends it). Text the BMC chose (a path it
linked to, a Location, an error's wording) is shown escaped and shortened.

Deadlines: each request has `timeout` seconds in all, from connecting to the last byte of
the answer (every socket read waits only for what is left, so a BMC that answers one byte at
a time cannot stretch it); a session has `total` seconds for all its requests. A request that
misses either is Unreachable "timed out".
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import ssl
import stat
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from orchestrator.errors import InventoryError, TransportError
from orchestrator.textsafe import clean

MAX_BODY = 4 * 1024 * 1024  # a BMC's answer larger than this is refused
MAX_REDIRECTS = 3
MAX_CA_FILE = 4 * 1024 * 1024  # a CA bundle larger than this is not one
TOTAL_FACTOR = 10  # a session's default total: this many request timeouts
SHOWN = 100  # characters of BMC-chosen text shown in a message

_REDIRECTS = (301, 302, 303, 307, 308)
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?"
                       rb"-----END CERTIFICATE-----")


class BmcLike(Protocol):
    host: str
    user: str
    password: str
    ca_file: str | None
    verify: bool

    @property
    def hostname(self) -> str: ...

    @property
    def port(self) -> int: ...


class RedfishError(TransportError):
    """The BMC answered, but not with what was asked for (HTTP error, not JSON)."""


class Unreachable(TransportError):
    """The BMC could not be reached (refused, timed out, TLS failed)."""


def shown(text: str) -> str:
    """Text a BMC chose, for a message: quoted, control characters escaped, shortened."""
    more = "..." if len(text) > SHOWN else ""
    return f"'{clean(text[:SHOWN])}{more}'"


def basic_auth(user: str, password: str) -> str:
    """The Authorization header of `user:password` (UTF-8; ValueError when it cannot be
    encoded, naming neither)."""
    try:
        raw = f"{user}:{password}".encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError("cannot be encoded as UTF-8") from None
    return "Basic " + base64.b64encode(raw).decode("ascii")


def read_ca_file(path: str) -> tuple[str, str]:
    """(the real path, its PEM certificates) of a CA file, which must be trusted as the
    known_hosts files are: a regular file owned by this user or root and writable by nobody
    else, reached through folders and links nobody else can change. A relative path is
    relative to the working directory. ValueError with the reason (one line, naming the
    path) otherwise."""
    from orchestrator.errors import StateError
    from orchestrator.privatefs import owner_problem, resolve_trusted

    name = clean(path)[:200]
    try:
        real = resolve_trusted(os.path.abspath(os.path.expanduser(path)),
                               fix="keep the CA file in a folder only you or root can write")
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except StateError as exc:
        raise ValueError(exc.message) from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "cannot be opened"
        raise ValueError(f"{name} is not a readable file ({why.lower()})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{real}: is not a regular file; give the BMC's CA certificate "
                             "(PEM)")
        if st.st_size > MAX_CA_FILE:
            raise ValueError(f"{real}: is larger than {MAX_CA_FILE >> 20} MiB; give the BMC's "
                             "CA certificate (PEM)")
        why = owner_problem(st, allow_root=True)
        if why:
            todo = "chmod go-w it" if "writable" in why else "copy it to a file of yours"
            raise ValueError(f"{real}: {why}, who could make the orchestrator trust any "
                             f"certificate; {todo}")
        data = os.read(fd, MAX_CA_FILE + 1)
    finally:
        os.close(fd)
    pem = "\n".join(m.group().decode("ascii") for m in _PEM_CERT.finditer(data))
    if not pem:
        raise ValueError(f"{real}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"{real}: holds a certificate that cannot be read "
                         f"({clean(str(exc))[:120]})") from None
    return str(real), pem


def _ca_problem(host: str, why: str) -> InventoryError:
    return InventoryError(f"{host}: inventory variable bmc_ca_file: {why}")


class RedfishSession:
    """GETs on one BMC over one keep-alive HTTPS connection.

    `timeout` bounds each request as a whole (connect, TLS, headers and body); `total`
    (default TOTAL_FACTOR x `timeout`) bounds every request of the session together, counted
    from its creation; `connect_timeout` bounds the TCP connect and TLS handshake (never more
    than what is left of the request)."""

    def __init__(self, bmc: BmcLike, *, timeout: float = 30.0, connect_timeout: float = 10.0,
                 total: float | None = None) -> None:
        total = TOTAL_FACTOR * timeout if total is None else total
        for what, value in (("timeout", timeout), ("connect_timeout", connect_timeout),
                            ("total", total)):
            if not 0 < value < math.inf:
                raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
        self.bmc = bmc
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.total = float(total)
        self._end = time.monotonic() + self.total
        self._deadline = self._end  # of the request under way (read by the connection)
        self._where = f"BMC {bmc.hostname}"
        context = self._tls_context()
        try:
            auth = basic_auth(bmc.user, bmc.password)
        except ValueError as exc:
            raise InventoryError(f"{bmc.host}: inventory variables bmc_user and bmc_password "
                                 f"{exc}") from None
        self._headers = {"Authorization": auth, "Connection": "keep-alive",
                         "Accept": "application/json", "OData-Version": "4.0"}
        self._pool = _pool_class()(
            bmc.hostname, bmc.port, maxsize=1, block=True, retries=False,
            ssl_context=context, assert_hostname=None if bmc.verify else False,
            deadline=lambda: self._deadline)

    def _tls_context(self) -> ssl.SSLContext:
        bmc = self.bmc
        if not bmc.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        pem = getattr(bmc, "ca_pem", None)
        if pem is None and bmc.ca_file:
            try:
                _, pem = read_ca_file(bmc.ca_file)
            except ValueError as exc:
                raise _ca_problem(bmc.host, str(exc)) from None
        try:
            return ssl.create_default_context(cadata=pem)
        except (ssl.SSLError, ValueError) as exc:
            raise _ca_problem(bmc.host, f"cannot be used ({clean(str(exc))[:120]})") from None

    def __enter__(self) -> RedfishSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def get(self, path: str) -> dict[str, Any]:
        """GET one resource (a path on the BMC, `/redfish/v1/...`) as a JSON object. Redirects
        to another Redfish path of the same BMC are followed (at most MAX_REDIRECTS); anything
        else is refused."""
        for _ in range(MAX_REDIRECTS + 1):
            status, location, data = self._get(path)
            if status not in _REDIRECTS:
                return data
            target = _same_bmc_path(location, self.bmc.hostname, self.bmc.port)
            if target is None:
                raise RedfishError(self.bmc.host, f"{self._where} redirected to "
                                   f"{shown(location)}, not a Redfish path of this BMC; "
                                   "not followed")
            path = target
        raise RedfishError(self.bmc.host, f"{self._where}: more than {MAX_REDIRECTS} redirects; "
                           "not followed")

    def _get(self, path: str) -> tuple[int, str, dict[str, Any]]:
        import urllib3

        where, host = self._where, self.bmc.host
        if not is_redfish_path(path):
            raise RedfishError(host, f"{where} linked to {shown(path)}, which is not a "
                                     "Redfish path; the BMC's answer is not trusted")
        now = time.monotonic()
        self._deadline = deadline = min(now + self.timeout, self._end)
        if deadline <= now:
            raise Unreachable(host, f"{where} unreachable: timed out (the {self.total:g}s "
                              "for this BMC are spent)")
        left = deadline - now
        timeout = urllib3.Timeout(connect=min(self.connect_timeout, left), read=left)
        complete = False
        try:
            resp = self._pool.urlopen("GET", path, headers=self._headers, redirect=False,
                                      retries=False, preload_content=False,
                                      decode_content=False, timeout=timeout)
            try:
                body, complete = _read_body(resp, deadline)
            finally:
                if not complete:
                    resp.close()  # the rest of the answer is still coming: drop the connection
                resp.release_conn()
        except urllib3.exceptions.LocationParseError:
            raise RedfishError(host, f"{where}: {shown(path)} is not a usable path") from None
        except urllib3.exceptions.SSLError as exc:
            if time.monotonic() >= deadline:
                raise Unreachable(host, f"{where} unreachable: timed out") from None
            raise Unreachable(host, f"{where}: TLS failed ({_reason(exc)}); give the "
                              "BMC's CA in bmc_ca_file") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = "timed out" if time.monotonic() >= deadline else _reason(exc)
            raise Unreachable(host, f"{where} unreachable: {reason}") from None
        if resp.status in (401, 403):
            raise RedfishError(host, f"{where} refused the credentials (HTTP "
                               f"{resp.status}); check bmc_user and bmc_password")
        if resp.status in _REDIRECTS:
            return resp.status, str(resp.headers.get("Location") or ""), {}
        if resp.status != 200:
            raise RedfishError(host, f"{where}: GET {shown(path)} answered HTTP {resp.status}")
        if not complete:
            raise RedfishError(host, f"{where}: GET {shown(path)} answered more than "
                               f"{MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except RecursionError:
            raise RedfishError(host, f"{where}: GET {shown(path)} answered JSON nested too "
                               "deeply") from None
        except ValueError:
            raise RedfishError(host, f"{where}: GET {shown(path)} did not answer JSON") \
                from None
        if not isinstance(data, dict):
            raise RedfishError(host, f"{where}: GET {shown(path)} did not answer an object")
        return resp.status, "", data


def _read_body(resp: Any, deadline: float) -> tuple[bytes, bool]:
    """(the body, whether it was read to its end): at most MAX_BODY + 1 bytes, in chunks,
    each socket read waiting only for what is left until `deadline`."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out")
        chunk = resp.read1(min(1 << 16, MAX_BODY + 1 - size))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


@functools.cache
def _pool_class() -> Callable[..., Any]:
    """urllib3's HTTPS pool whose connections read under the session's deadline (built on
    first use: urllib3 is imported only when a BMC is read)."""
    import http.client
    import io

    import urllib3
    from urllib3.connection import HTTPSConnection

    class DeadlineReader(io.RawIOBase):
        """The socket as http.client reads it (status line, headers, body): each read waits
        only for what is left until the deadline. It holds one of the socket's file
        references, as makefile's would: a connection closed after an answer with
        `Connection: close` stays open until that answer is read."""

        def __init__(self, sock: Any, deadline: Callable[[], float]) -> None:
            super().__init__()
            self._sock, self._deadline = sock, deadline
            self._raw = sock.makefile("rb", buffering=0)

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int | None:
            left = self._deadline() - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self._sock.settimeout(left)
            return self._raw.readinto(buf)  # type: ignore[no-any-return]

        def close(self) -> None:
            if not self.closed:
                self._raw.close()
            super().close()

    class DeadlineSocket:
        def __init__(self, sock: Any, deadline: Callable[[], float]) -> None:
            self._sock, self._deadline = sock, deadline

        def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
            return io.BufferedReader(DeadlineReader(self._sock, self._deadline))

    class DeadlineResponse(http.client.HTTPResponse):
        def __init__(self, sock: Any, *args: Any, deadline: Callable[[], float],
                     **kwargs: Any) -> None:
            super().__init__(DeadlineSocket(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]

    class DeadlineConnection(HTTPSConnection):
        def __init__(self, *args: Any, deadline: Callable[[], float], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline = deadline
            self.response_class = functools.partial(DeadlineResponse, deadline=deadline)  # type: ignore[assignment]

        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            # the TLS handshake (one deadline in CPython) gets only what is left
            sock.settimeout(max(0.001, min(self._deadline() - time.monotonic(),
                                           sock.gettimeout() or math.inf)))
            return sock

    class DeadlinePool(urllib3.HTTPSConnectionPool):
        ConnectionCls = DeadlineConnection

    return DeadlinePool


def is_redfish_path(path: str) -> bool:
    """A path under /redfish/ without `.` or `..` segments (plain or %-encoded)."""
    if not path.startswith("/redfish/") or "\\" in path:
        return False
    segments = unquote(path.split("?", 1)[0].split("#", 1)[0]).split("/")
    return not any(s in (".", "..") for s in segments)


def _same_bmc_path(location: str, hostname: str, port: int) -> str | None:
    """The path of a redirect's Location when it stays on this BMC (https, same host and
    port, a Redfish path), else None."""
    try:
        parts = urlsplit(location.strip())
        if parts.scheme or parts.netloc:
            if (parts.scheme.lower() not in ("https", "") or parts.hostname != hostname.lower()
                    or (parts.port or 443) != port or parts.username or parts.password):
                return None
    except ValueError:  # a port that is not a number, brackets that do not close
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if is_redfish_path(path) else None


def _reason(exc: BaseException) -> str:
    """The innermost cause, one line, without urllib3's object reprs, control characters
    escaped."""
    inner: BaseException = exc
    while getattr(inner, "reason", None) is not None and isinstance(inner.reason, BaseException):
        inner = inner.reason
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "]" in text and text.startswith("<"):
        text = text.split(">: ", 1)[-1]
    return clean(text[:200])
