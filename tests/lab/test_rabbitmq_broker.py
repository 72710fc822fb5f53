"""The suite's throwaway RabbitMQ broker (orchestrator/lab/rabbitmq.py): AMQP and AMQPS with the
configured credentials, durable quorum queues across restarts, loopback only, side by side with
another broker (and with what a system broker would hold), and nothing left after stop()."""

from __future__ import annotations

import os
import pwd
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import amqp
import pytest

from orchestrator.lab.errors import LabError, LabSetupError, LabStartError
from orchestrator.lab.rabbitmq import EPMD, Broker

QUORUM = {"x-queue-type": "quorum"}
SYSTEM_PORTS = (4369, 5671, 5672, 15672, 25672)  # epmd, AMQPS, AMQP, management, distribution


def connect(url: str, ssl_options: dict | None = None, **override) -> amqp.Connection:
    """A connection made from the URL alone (so a wrong URL fails the test)."""
    parts = urlsplit(url)
    options = {"userid": unquote(parts.username or ""),
               "password": unquote(parts.password or ""),
               "virtual_host": unquote(parts.path[1:]), "connect_timeout": 5,
               "read_timeout": 10, "write_timeout": 10,
               "ssl": ssl_options if parts.scheme == "amqps" else False, **override}
    conn = amqp.Connection(f"{parts.hostname}:{parts.port}", **options)
    conn.connect()
    return conn


def publish(conn: amqp.Connection, queue: str, *bodies: str) -> None:
    ch = conn.channel()
    ch.confirm_select()  # basic_publish waits for the broker's confirm
    ch.queue_declare(queue, durable=True, auto_delete=False, arguments=QUORUM)
    for body in bodies:
        ch.basic_publish(amqp.Message(body, delivery_mode=2), exchange="", routing_key=queue)
    ch.close()


def get(conn: amqp.Connection, queue: str) -> str | None:
    """One message, acknowledged (None when the queue is empty)."""
    ch = conn.channel()
    msg = ch.basic_get(queue, no_ack=False)
    if msg is None:
        ch.close()
        return None
    ch.basic_ack(msg.delivery_tag)
    ch.close()
    return msg.body.decode() if isinstance(msg.body, bytes) else msg.body


def marked_processes(folder: Path) -> list[str]:
    """Every process (read from /proc, not by the broker's own code) that carries the broker's
    folder in its environment or command line, as 'pid comm'."""
    found = []
    needle = str(folder).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            comm = Path(f"/proc/{name}/comm").read_text().strip()
        except OSError:
            continue
        if needle in environ or needle in cmdline:
            found.append(f"{name} {comm}")
    return found


def listening(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket the given processes hold."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in inodes:
                continue
            hexaddr, hexport = parts[1].split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc/net prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(hexport, 16)))
    return found


@pytest.fixture(scope="module")
def second_broker(rabbitmq_broker):
    """Another broker (plain AMQP), started while the ports and epmd port of a system broker
    are held on loopback: it must need none of them."""
    held = []
    for port in SYSTEM_PORTS:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            s.listen()  # a connection would hang: a broker that asked here would not start
            held.append(s)
        except OSError:  # already taken (a running system broker?): just as good
            s.close()
    broker = Broker(consumer_timeout_ms=600_000, timeout=60)
    try:
        broker.start()
        yield broker
    finally:
        for s in held:
            s.close()
        broker.stop()


def test_publish_and_consume_on_a_durable_quorum_queue(rabbitmq_broker) -> None:
    queue = f"t-{uuid.uuid4().hex[:12]}"
    with connect(rabbitmq_broker.url(tls=False)) as conn:
        publish(conn, queue, "hello")
        assert get(conn, queue) == "hello"
        assert get(conn, queue) is None
        ch = conn.channel()
        # it is a quorum queue: redeclaring it as classic is refused
        with pytest.raises(amqp.exceptions.PreconditionFailed):
            ch.queue_declare(queue, durable=True, auto_delete=False,
                             arguments={"x-queue-type": "classic"})
    with connect(rabbitmq_broker.url(tls=False)) as conn:
        conn.channel().queue_delete(queue)


def test_a_wrong_password_and_the_default_guest_are_refused(rabbitmq_broker) -> None:
    url = rabbitmq_broker.url(tls=False)
    with pytest.raises(amqp.exceptions.AccessRefused):
        connect(url, password=rabbitmq_broker.password + "x")
    with pytest.raises(amqp.exceptions.AccessRefused):
        connect(url, userid="guest", password="guest")
    with pytest.raises((amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)):
        connect(url, virtual_host="/")  # no other vhost than the configured one
    connect(url).close()  # the test's own connection works


def test_amqps_verifies_the_server_name_against_the_lab_ca(rabbitmq_broker) -> None:
    broker = rabbitmq_broker
    url = broker.url()
    assert url.startswith("amqps://") and f":{broker.tls_port}/" in url
    for name in ("127.0.0.1", "localhost"):  # both are in the certificate
        with connect(url, broker.ssl_options(server_hostname=name)) as conn:
            assert conn.transport.sock.version() in ("TLSv1.3", "TLSv1.2")
            assert conn.transport.sock.getpeercert()["issuer"]
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|doesn't match"):
        connect(url, broker.ssl_options(server_hostname="not-the-broker.example"))
    # a client that trusts only the system CAs is refused
    untrusting = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "127.0.0.1"}
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        connect(url, untrusting)
    assert not (broker.base / "certs" / "ca.key").exists()  # nothing else can be signed


def test_listens_on_loopback_only_and_runs_unprivileged(rabbitmq_broker) -> None:
    broker = rabbitmq_broker
    pids = broker.pids()
    sockets = listening(pids)
    ports = {port for _, port in sockets}
    assert {broker.port, broker.tls_port, broker.dist_port, broker.epmd_port} <= ports
    assert {addr for addr, _ in sockets} <= {"127.0.0.1", "::1"}, sockets
    assert not ports & set(SYSTEM_PORTS)
    st = broker.base.stat()
    assert st.st_mode & 0o777 == 0o700
    if os.geteuid() == 0:
        rabbitmq = pwd.getpwnam("rabbitmq").pw_uid
        assert st.st_uid == rabbitmq
        uids = {os.stat(f"/proc/{pid}").st_uid for pid in pids}
        assert uids == {rabbitmq}


def test_the_cli_reaches_the_broker(rabbitmq_broker) -> None:
    queue = f"t-{uuid.uuid4().hex[:12]}"
    with connect(rabbitmq_broker.url(tls=False)) as conn:
        publish(conn, queue, "a", "b")
    try:
        # (its message counts lag: the broker gathers them every few seconds)
        out = rabbitmq_broker.ctl("list_queues", "-p", rabbitmq_broker.vhost, "name", "type")
        assert [queue, "quorum"] in [line.split() for line in out.splitlines()]
    finally:
        with connect(rabbitmq_broker.url(tls=False)) as conn:
            conn.channel().queue_delete(queue)


def test_two_brokers_side_by_side(rabbitmq_broker, second_broker) -> None:
    one, two = rabbitmq_broker, second_broker
    assert one.node != two.node and one.base != two.base
    assert not {one.port, one.tls_port, one.dist_port, one.epmd_port} & {
        two.port, two.dist_port, two.epmd_port}
    queue = f"t-{uuid.uuid4().hex[:12]}"
    with connect(one.url(tls=False)) as a, connect(two.url()) as b:
        publish(a, queue, "to one")
        publish(b, queue, "to two")
        assert get(b, queue) == "to two" and get(b, queue) is None
        assert get(a, queue) == "to one"
        a.channel().queue_delete(queue)
    with pytest.raises(amqp.exceptions.AccessRefused):  # each has its own password
        connect(one.url(tls=False), password=two.password)


def test_the_consumer_timeout_is_configured(second_broker) -> None:
    out = second_broker.ctl("eval", "application:get_env(rabbit, consumer_timeout).")
    assert out.strip() == "{ok,600000}"


def test_restart_keeps_a_durable_quorum_queue(second_broker) -> None:
    broker = second_broker
    url = broker.url()
    queue = f"t-{uuid.uuid4().hex[:12]}"
    with connect(url) as conn:
        publish(conn, queue, "first", "second", "third")
        assert get(conn, queue) == "first"  # acknowledged: must not come back
    assert broker.restart() == url  # clean shutdown, same data, ports and credentials
    with connect(url) as conn:
        assert get(conn, queue) == "second"
    assert broker.restart(kill=True) == url  # SIGKILL of the whole node
    with connect(url) as conn:
        assert get(conn, queue) == "third"
        assert get(conn, queue) is None


def test_stop_leaves_no_process_and_no_folder(rabbitmq_broker) -> None:
    broker = Broker()
    t0 = time.monotonic()
    try:
        broker.start()
        started = time.monotonic() - t0
        comms = " ".join(marked_processes(broker.base))
        assert "beam.smp" in comms and "epmd" in comms
        # a process that left the broker's process group, as a daemon epmd would
        spare = socket.socket()
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
        spare.close()
        subprocess.run([str(EPMD), "-daemon", "-port", str(port), "-address", "127.0.0.1"],
                       env=broker.env(), check=True, timeout=10)
        assert len([p for p in marked_processes(broker.base) if p.endswith("epmd")]) == 2
    finally:
        t1 = time.monotonic()
        broker.stop()
        stopped = time.monotonic() - t1
    assert marked_processes(broker.base) == []
    assert not broker.base.exists()
    assert broker.pids() == []
    print(f"broker start {started:.2f} s, stop {stopped:.2f} s")
    assert stopped < 15


def test_start_errors_are_one_line(rabbitmq_broker, tmp_path, monkeypatch) -> None:
    with pytest.raises(LabError, match="not a plain RabbitMQ user name"):
        Broker(user="admin\ndefault_user = guest")
    with pytest.raises(LabError, match="not a plain RabbitMQ vhost name"):
        Broker(vhost="../x")
    broker = Broker()
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", broker.port))
        taken.listen()
        with pytest.raises(LabStartError, match=f"port.*{broker.port}.*in use") as err:
            broker.start()
        assert "\n" not in str(err.value)
        assert not broker.running()
    finally:
        taken.close()
        broker.stop()
    assert not broker.base.exists() and marked_processes(broker.base) == []
    monkeypatch.setattr("orchestrator.lab.rabbitmq.RABBITMQ_BIN", tmp_path)
    with pytest.raises(LabSetupError, match="apt-get install rabbitmq-server"):
        Broker()

