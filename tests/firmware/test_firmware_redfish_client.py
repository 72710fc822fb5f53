"""The orchestrator's own Redfish client (transports/redfish.py) against a small threaded HTTPS
server inside the test: every guard README claims (redirects, links, sizes, JSON, deadlines,
credentials, TLS) with a hostile BMC. No lab needed."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InventoryError
from orchestrator.firmware.bmc import Bmc, bmc_of
from orchestrator.firmware.redfish_read import FIRMWARE_INVENTORY, firmware_inventory
from orchestrator.transports.redfish import (
    MAX_BODY,
    RedfishError,
    RedfishSession,
    Unreachable,
)

FW = FIRMWARE_INVENTORY
CANARY = "s3cret-canary"
UTF8 = "pässwörd€-canary"  # not Latin-1: urllib3's make_headers cannot encode it


# --- a throwaway CA and a certificate for 127.0.0.1 (no DNS name: "localhost" mismatches) ---

def _ca(name: str) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Certs:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("redfish-certs")
    folder.chmod(0o700)
    ca_cert, ca_key = _ca("test BMC CA")
    other, _ = _ca("another CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmc")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    out = Certs(folder / "ca.pem", folder / "other-ca.pem", folder / "server.pem",
                folder / "server.key")
    out.ca.write_bytes(_pem(ca_cert))
    out.other_ca.write_bytes(_pem(other))
    out.server_cert.write_bytes(_pem(cert))
    out.server_key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    for p in (out.ca, out.other_ca, out.server_cert, out.server_key):
        p.chmod(0o600)
    return out


# --- the BMC: HTTP/1.1 with keep-alive, answers from a table ---

Answer = tuple[int, dict[str, str], bytes] | tuple[int, dict[str, str], bytes, float]
Behaviour = Callable[[ssl.SSLSocket, "FakeBmc"], None]  # takes over the connection


class FakeBmc:
    def __init__(self, certs: Certs) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs.server_cert, certs.server_key)
        self.answers: dict[str, Answer | Behaviour] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self.raw: Callable[[socket.socket, FakeBmc], None] | None = None  # before TLS
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            if self.raw is not None:
                self.raw(raw, self)
                return
            conn = self.context.wrap_socket(raw, server_side=True)
            f = conn.makefile("rb")
            while not self.stop.is_set():
                line = f.readline(65537)
                if not line:
                    return
                path = line.split()[1].decode()
                headers = {}
                while (h := f.readline(65537)) not in (b"\r\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.requests.append((path, headers))
                answer = self.answers.get(path, (404, {}, b'{"error": "not found"}'))
                if callable(answer):
                    answer(conn, self)
                    return
                status, extra, body, *delay = answer
                if delay and self.stop.wait(delay[0]):
                    return
                head = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                if "Transfer-Encoding" not in extra:
                    head += f"Content-Length: {len(body)}\r\n"
                head_bytes = f"HTTP/1.1 {status} X\r\n{head}\r\n".encode("latin-1")
                if extra.get("Connection") == "close":  # as werkzeug: head, then body
                    conn.sendall(head_bytes)
                    time.sleep(0.05)
                    conn.sendall(body)
                    return
                conn.sendall(head_bytes + body)
        except (OSError, ValueError, IndexError):
            pass
        finally:
            raw.close()

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def dripping(first: bytes, every: float = 0.2, for_seconds: float = 4.0) -> Behaviour:
    """Send `first`, then a byte every `every` seconds for `for_seconds` (then hang up: a
    client without an overall deadline takes that long, not forever)."""
    def run(conn: Any, bmc: FakeBmc) -> None:
        conn.sendall(first)
        end = time.monotonic() + for_seconds
        while time.monotonic() < end and not bmc.stop.wait(every):
            conn.sendall(b" ")
    return run


@pytest.fixture
def bmc(certs: Certs) -> Iterator[FakeBmc]:
    server = FakeBmc(certs)
    yield server
    server.close()


def target(server: FakeBmc, certs: Certs, *, address: str | None = None,
           ca: Path | None = None, password: str = CANARY) -> Bmc:
    return Bmc("web-01", address or f"127.0.0.1:{server.port}", "admin", password,
               ca_file=str(ca or certs.ca))


def session(server: FakeBmc, certs: Certs, timeout: float = 5.0, total: float | None = None,
            **kw: Any) -> RedfishSession:
    more = {} if total is None else {"total": total}
    return RedfishSession(target(server, certs, **kw), timeout=timeout, **more)


def ok(data: Any) -> Answer:
    return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()


def redirect(location: str, status: int = 302) -> Answer:
    return status, {"Location": location}, b""


def refused(server: FakeBmc, certs: Certs, path: str = FW, **kw: Any) -> str:
    with session(server, certs, **kw) as s, pytest.raises(RedfishError) as err:
        s.get(path)
    msg = str(err.value)
    assert msg.startswith("web-01: BMC ") and "\n" not in msg and CANARY not in msg
    return msg


# --- a good BMC: one keep-alive connection, UTF-8 basic authentication ---

def test_inventory_on_one_keep_alive_connection_with_utf8_basic_auth(bmc: FakeBmc,
                                                                     certs: Certs) -> None:
    bmc.answers.update({
        FW: ok({"Members": [{"@odata.id": f"{FW}/BIOS"}],
                "Members@odata.nextLink": f"{FW}?$skip=1"}),
        f"{FW}?$skip=1": ok({"Members": [{"@odata.id": f"{FW}/BMC"}]}),
        f"{FW}/BIOS": ok({"Id": "BIOS", "Version": "2.18"}),
        f"{FW}/BMC": ok({"Id": "BMC", "Version": "7.0"}),
    })
    with session(bmc, certs, password=UTF8) as s:
        got = [(i.id, i.version) for i in firmware_inventory(s)]
    assert got == [("BIOS", "2.18"), ("BMC", "7.0")]
    assert bmc.connections == 1 and len(bmc.requests) == 4
    want = "Basic " + base64.b64encode(f"admin:{UTF8}".encode()).decode()
    assert {h["authorization"] for _, h in bmc.requests} == {want}


def test_a_bmc_closing_the_connection_after_each_answer_is_read_on_new_ones(
        bmc: FakeBmc, certs: Certs) -> None:
    close = {"Connection": "close"}
    bmc.answers.update({
        FW: (200, close, json.dumps({"Members": [{"@odata.id": f"{FW}/BIOS"}]}).encode()),
        f"{FW}/BIOS": (200, close, b'{"Id": "BIOS", "Version": "2.18"}'),
    })
    with session(bmc, certs) as s:
        assert [(i.id, i.version) for i in firmware_inventory(s)] == [("BIOS", "2.18")]
    assert bmc.connections == 2


def test_members_that_are_not_a_list_are_no_members(bmc: FakeBmc, certs: Certs) -> None:
    bmc.answers[FW] = ok({"Members": 7})
    with session(bmc, certs) as s:
        assert firmware_inventory(s) == []


# --- redirects ---

def test_redirects_followed_to_redfish_paths_of_the_same_bmc_at_most_three(
        bmc: FakeBmc, certs: Certs) -> None:
    port = bmc.port
    bmc.answers.update({
        FW: redirect("/redfish/v1/a", 301),
        "/redfish/v1/a": redirect(f"https://127.0.0.1:{port}/redfish/v1/b", 307),
        "/redfish/v1/b": redirect(f"//127.0.0.1:{port}/redfish/v1/c", 308),
        "/redfish/v1/c": ok({"Members": []}),
        "/redfish/v1/d": redirect(FW),
    })
    with session(bmc, certs) as s:
        assert s.get(FW) == {"Members": []}
    assert bmc.paths() == [FW, "/redfish/v1/a", "/redfish/v1/b", "/redfish/v1/c"]
    assert "redirects" in refused(bmc, certs, "/redfish/v1/d")


@pytest.mark.parametrize("location", [
    "https://evil.example/redfish/v1/x",       # another host
    "https://127.0.0.1:1/redfish/v1/x",        # another port
    "http://127.0.0.1:{port}/redfish/v1/x",    # another scheme
    "//evil.example/redfish/v1/x",             # another host, scheme-relative
    "https://u:p@127.0.0.1:{port}/redfish/v1/x",  # credentials in the URL
    "https://127.0.0.1:99999/redfish/v1/x",    # a port that is none
    "/admin",                                  # this BMC, not Redfish
    "/redfish/v1/../../admin",                 # ... in disguise
    "/redfish/v1/%2e%2e/%2E%2E/admin",
])
def test_a_redirect_anywhere_else_is_refused(bmc: FakeBmc, certs: Certs, location: str) -> None:
    bmc.answers[FW] = redirect(location.format(port=bmc.port))
    bmc.answers["/redfish/v1/x"] = ok({"Members": []})
    assert "not followed" in refused(bmc, certs)
    assert bmc.paths() == [FW]


# --- links, sizes, bodies ---

@pytest.mark.parametrize("link", ["/admin", "https://evil.example/redfish/v1/x",
                                  "redfish/v1/x", "/redfish/v1/../../admin"])
def test_member_links_outside_redfish_are_refused(bmc: FakeBmc, certs: Certs,
                                                   link: str) -> None:
    bmc.answers[FW] = ok({"Members": [{"@odata.id": link}]})
    with session(bmc, certs) as s, pytest.raises(RedfishError) as err:
        firmware_inventory(s)
    assert "which is not a Redfish path; the BMC's answer is not trusted" in str(err.value)
    assert bmc.paths() == [FW]


def test_answers_over_4_mib_are_refused_and_the_connection_is_not_reused(
        bmc: FakeBmc, certs: Certs) -> None:
    exact = b'{"a": "' + b"x" * (MAX_BODY - 9) + b'"}'
    assert len(exact) == MAX_BODY
    bmc.answers.update({
        "/redfish/v1/exact": (200, {}, exact),
        "/redfish/v1/big": (200, {}, exact[:-2] + b'x"}'),
        "/redfish/v1/chunked": (200, {"Transfer-Encoding": "chunked"},
                                b"".join(b"%x\r\n%s\r\n" % (1 << 16, b" " * (1 << 16))
                                         for _ in range(65)) + b"0\r\n\r\n"),
        "/redfish/v1/small": ok({"ok": True}),
        "/redfish/v1/small-chunked": (200, {"Transfer-Encoding": "chunked"},
                                      b'5\r\n{"ok"\r\n7\r\n: true}\r\n0\r\n\r\n'),
    })
    with session(bmc, certs) as s:
        assert len(s.get("/redfish/v1/exact")["a"]) == MAX_BODY - 9
        assert s.get("/redfish/v1/small-chunked") == {"ok": True}
        for path in ("/redfish/v1/big", "/redfish/v1/chunked"):
            with pytest.raises(RedfishError, match=f"answered more than {MAX_BODY} bytes"):
                s.get(path)
            assert s.get("/redfish/v1/small") == {"ok": True}  # not the rest of the big one


@pytest.mark.parametrize(("body", "words"), [
    (b"<html>", "did not answer JSON"),
    (b"\xff\xfe\x00", "did not answer JSON"),
    (b"[]", "did not answer an object"),
    (b'"text"', "did not answer an object"),
    (b"[" * 100_000 + b"]" * 100_000, "answered JSON nested too deeply"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "answered JSON nested too deeply"),
])
def test_answers_that_are_not_a_json_object_are_refused(bmc: FakeBmc, certs: Certs,
                                                        body: bytes, words: str) -> None:
    bmc.answers[FW] = (200, {}, body)
    assert words in refused(bmc, certs)


def test_a_compressed_answer_is_not_inflated(bmc: FakeBmc, certs: Certs) -> None:
    import gzip

    bomb = gzip.compress(b" " * (64 * MAX_BODY))
    bmc.answers[FW] = (200, {"Content-Encoding": "gzip"}, bomb)
    assert "did not answer JSON" in refused(bmc, certs)


def test_bmc_chosen_text_in_messages_is_escaped_and_short(bmc: FakeBmc, certs: Certs) -> None:
    evil = "/redfish/v1/\x1b]0;pwn\x07\u202e" + "A" * 500
    bmc.answers[FW] = ok({"Members": [{"@odata.id": evil}]})
    with session(bmc, certs) as s, pytest.raises(RedfishError) as err:
        firmware_inventory(s)
    msg = str(err.value)
    assert "answered HTTP 404" in msg and "\\x1b]0;pwn\\x07\\u202e" in msg
    assert not any(ch in msg for ch in "\x1b\x07\u202e") and len(msg) < 250
    bmc.answers[FW] = redirect("https://evil.example/\x1b[2J" + "B" * 500)
    msg = refused(bmc, certs)
    assert "\x1b" not in msg and "\\x1b[2J" in msg and len(msg) < 250


# --- deadlines ---

def timed_out(s: RedfishSession, path: str = FW) -> float:
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        s.get(path)
    assert str(err.value) == "web-01: BMC 127.0.0.1 unreachable: timed out" or \
        str(err.value).startswith("web-01: BMC 127.0.0.1 unreachable: timed out (")
    return time.monotonic() - started


def test_a_body_dripping_a_byte_at_a_time_times_out_at_the_deadline(bmc: FakeBmc,
                                                                    certs: Certs) -> None:
    bmc.answers[FW] = dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n{")
    with session(bmc, certs, timeout=1.0) as s:
        assert 0.9 < timed_out(s) < 2.5


def test_headers_dripping_a_byte_at_a_time_time_out_at_the_deadline(bmc: FakeBmc,
                                                                    certs: Certs) -> None:
    bmc.answers[FW] = dripping(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    with session(bmc, certs, timeout=1.0) as s:
        assert 0.9 < timed_out(s) < 2.5


def test_a_tls_handshake_dripping_times_out_at_the_deadline(bmc: FakeBmc,
                                                            certs: Certs) -> None:
    def handshake(raw: socket.socket, server: FakeBmc) -> None:
        raw.recv(65536)  # the ClientHello; answer a record of 16 KiB, a byte at a time
        dripping(b"\x16\x03\x03\x40\x00\x02")(raw, server)
    bmc.raw = handshake
    with session(bmc, certs, timeout=1.0) as s:
        assert 0.9 < timed_out(s) < 2.5


def test_the_session_has_one_deadline_for_all_its_requests(bmc: FakeBmc, certs: Certs) -> None:
    for n in range(20):
        bmc.answers[f"/redfish/v1/p{n}"] = (*ok({"Members": []}), 0.3)
    started = time.monotonic()
    with session(bmc, certs, timeout=1.0, total=1.0) as s:
        with pytest.raises(Unreachable, match="unreachable: timed out"):
            for n in range(20):
                s.get(f"/redfish/v1/p{n}")  # each well within its own timeout
    assert time.monotonic() - started < 2.5 and 1 <= len(bmc.requests) <= 4


def test_the_default_total_is_ten_request_timeouts(bmc: FakeBmc, certs: Certs) -> None:
    assert RedfishSession(target(bmc, certs), timeout=2).total == 20
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            RedfishSession(target(bmc, certs), timeout=bad)


# --- credentials and TLS ---

@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_named_without_the_password(bmc: FakeBmc, certs: Certs,
                                                            status: int) -> None:
    bmc.answers[FW] = (status, {"WWW-Authenticate": 'Basic realm="x"'}, b"{}")
    assert refused(bmc, certs).endswith(f"refused the credentials (HTTP {status}); check "
                                        "bmc_user and bmc_password")


def _tls_failure(bmc: FakeBmc, certs: Certs, **kw: Any) -> str:
    with session(bmc, certs, **kw) as s, pytest.raises(Unreachable) as err:
        s.get(FW)
    msg = str(err.value)
    assert "TLS failed" in msg and "bmc_ca_file" in msg and "\n" not in msg
    assert bmc.requests == []  # nothing, not even the Authorization header, was sent
    return msg


def test_a_certificate_from_another_ca_fails_tls(bmc: FakeBmc, certs: Certs) -> None:
    assert "certificate verify failed" in _tls_failure(bmc, certs, ca=certs.other_ca)


def test_a_certificate_for_another_name_fails_tls(bmc: FakeBmc, certs: Certs) -> None:
    msg = _tls_failure(bmc, certs, address=f"localhost:{bmc.port}")
    assert "Hostname mismatch" in msg or "localhost" in msg


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_validate_certs_off_reads_a_bmc_of_any_ca(bmc: FakeBmc, certs: Certs) -> None:
    bmc.answers[FW] = ok({"Members": []})
    b = Bmc("web-01", f"localhost:{bmc.port}", "admin", CANARY, ca_file=str(certs.other_ca),
            verify=False)
    with RedfishSession(b, timeout=5) as s:
        assert s.get(FW) == {"Members": []}


def test_a_ca_file_that_is_no_pem_is_an_inventory_error(bmc: FakeBmc, certs: Certs,
                                                         tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(InventoryError) as err:
        RedfishSession(target(bmc, certs, ca=bad))
    assert str(err.value).startswith("web-01: inventory variable bmc_ca_file: ")
    assert "holds no PEM certificate" in str(err.value)


def test_the_scan_reads_a_bmc_from_inventory_variables(bmc: FakeBmc, certs: Certs) -> None:
    from orchestrator.firmware.scan import FirmwareJob, read_host

    bmc.answers.update({FW: ok({"Members": [{"@odata.id": f"{FW}/BIOS"}]}),
                        f"{FW}/BIOS": ok({"Id": "BIOS", "Version": "2.18"}),
                        "/redfish/v1/Systems": ok({"Members": [
                            {"@odata.id": "/redfish/v1/Systems/1"}]}),
                        "/redfish/v1/Systems/1": ok({"PowerState": "On"})})
    good = {"bmc_address": f"127.0.0.1:{bmc.port}", "bmc_user": "admin",
            "bmc_password": CANARY, "bmc_ca_file": str(certs.ca)}
    got = read_host(FirmwareJob("web-01", "g", "redfish", good), None, 5)
    assert (got.status, got.power_state) == ("ok", "On")
    assert [(c.id, c.version) for c in got.components] == [("BIOS", "2.18")]
    bad_pem = {**good, "bmc_ca_file": str(certs.server_key)}
    got = read_host(FirmwareJob("web-01", "g", "redfish", bad_pem), None, 5)
    assert got.status == "error" and "bmc_ca_file" in (got.error or "")


def test_the_cli_refuses_a_timeout_that_is_not_positive(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from orchestrator.cli.main import main

    monkeypatch.chdir(tmp_path)
    for value in ("0", "-1", "nan", "inf"):
        assert main(["firmware", "scan", "--timeout", value]) == 1
        err = capsys.readouterr().err
        assert "Invalid value for '--timeout'" in err, (value, err)


def test_bmc_of_keeps_a_password_latin1_cannot_carry(certs: Certs) -> None:
    b = bmc_of("web-01", {"bmc_address": "127.0.0.1", "bmc_user": "admin",
                          "bmc_password": UTF8, "bmc_ca_file": str(certs.ca)})
    assert b.password == UTF8 and b.ca_file == str(certs.ca)
    assert b.ca_pem is not None and b.ca_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert os.path.isabs(b.ca_file)
