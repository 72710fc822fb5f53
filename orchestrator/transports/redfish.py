"""Redfish over HTTPS: one keep-alive connection per BMC, basic authentication, JSON in and out.

    with RedfishSession(bmc, timeout=30) as s:
        inventory = s.get("/redfish/v1/UpdateService/FirmwareInventory")

The certificate is verified (against `bmc_ca_file`, else the system's CAs) unless the inventory
turns it off. Errors are TransportError with one line naming the host and what to do; the
password is never part of a message (it travels only in the Authorization header).
"""

from __future__ import annotations

import json
import ssl
from typing import Any, Protocol

from orchestrator.errors import TransportError

MAX_BODY = 4 * 1024 * 1024  # a BMC's answer larger than this is refused


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


class RedfishSession:
    def __init__(self, bmc: BmcLike, *, timeout: float = 30.0, connect_timeout: float = 10.0
                 ) -> None:
        import urllib3

        self.bmc = bmc
        if bmc.verify:
            context = ssl.create_default_context(cafile=bmc.ca_file)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._pool = urllib3.HTTPSConnectionPool(
            bmc.hostname, bmc.port, maxsize=1, block=True, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=timeout),
            ssl_context=context, assert_hostname=None if bmc.verify else False)
        self._headers = {**urllib3.make_headers(basic_auth=f"{bmc.user}:{bmc.password}",
                                                keep_alive=True),
                         "Accept": "application/json", "OData-Version": "4.0"}

    def __enter__(self) -> RedfishSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def get(self, path: str) -> dict[str, Any]:
        """GET one resource (a path on the BMC, `/redfish/v1/...`) as a JSON object. Redirects
        to another Redfish path of the same BMC are followed (at most 3); anything else is
        refused."""
        for _ in range(4):
            status, location, data = self._get(path)
            if status not in (301, 302, 303, 307, 308):
                return data
            path = _same_bmc_path(location, self.bmc.hostname, self.bmc.port)
            if path is None:
                raise RedfishError(self.bmc.host, f"BMC {self.bmc.hostname} redirected to "
                                   f"{location[:80]!r}, another host; not followed")
        raise RedfishError(self.bmc.host, f"BMC {self.bmc.hostname}: too many redirects")

    def _get(self, path: str) -> tuple[int, str, dict[str, Any]]:
        import urllib3

        where = f"BMC {self.bmc.hostname}"
        if not path.startswith("/redfish/"):
            raise RedfishError(self.bmc.host, f"{where} linked to {path[:80]!r}, which is not a "
                                              "Redfish path; the BMC's answer is not trusted")
        try:
            resp = self._pool.request("GET", path, headers=self._headers, redirect=False,
                                      preload_content=False)
            try:
                body = resp.read(MAX_BODY + 1)
            finally:
                resp.release_conn()
        except urllib3.exceptions.SSLError as exc:
            raise Unreachable(self.bmc.host, f"{where}: TLS failed ({_reason(exc)}); give the "
                              "BMC's CA in bmc_ca_file") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(self.bmc.host, f"{where} unreachable: {_reason(exc)}") from None
        if resp.status in (401, 403):
            raise RedfishError(self.bmc.host, f"{where} refused the credentials (HTTP "
                               f"{resp.status}); check bmc_user and bmc_password")
        if resp.status in (301, 302, 303, 307, 308):
            return resp.status, str(resp.headers.get("Location") or ""), {}
        if resp.status != 200:
            raise RedfishError(self.bmc.host, f"{where}: GET {path} answered HTTP {resp.status}")
        if len(body) > MAX_BODY:
            raise RedfishError(self.bmc.host, f"{where}: GET {path} answered more than "
                               f"{MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise RedfishError(self.bmc.host, f"{where}: GET {path} did not answer JSON") \
                from None
        if not isinstance(data, dict):
            raise RedfishError(self.bmc.host, f"{where}: GET {path} did not answer an object")
        return resp.status, "", data


def _same_bmc_path(location: str, hostname: str, port: int) -> str | None:
    """The path of a redirect's Location when it stays on this BMC, else None."""
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    if parts.scheme and (parts.scheme != "https" or parts.hostname != hostname.lower()
                         or (parts.port or 443) != port):
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/redfish/") else None


def _reason(exc: BaseException) -> str:
    """The innermost cause, one line, without urllib3's object reprs."""
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
    return text[:200]
