"""pytest fixtures for tests against the lab (register with `pytest_plugins`).

- `lab_fleet` (session): a running Lab with LAB_HOSTS (default 3) Debian hosts, LAB_RPM_HOSTS
  (default 1) dnf hosts, LAB_ZYPPER_HOSTS (default 1) zypper hosts, LAB_FWUPD_HOSTS (default 1)
  fwupd hosts (Debian with fwupd and its test device) and 1 Windows host; the last
  Debian host is reserved for `lab_fresh_host` and is not meant for shared tests
  (`lab_fleet.shared_hosts` lists the others).
- `lab_fresh_host` (function): the name of a Debian host reset to a fresh writable layer before
  and after this test.
- `lab_fresh_rpm_host`, `lab_fresh_zypper_host`, `lab_fresh_fwupd_host` (function): the same
  for the last dnf, zypper and fwupd host (tests that only read may use `lab_fleet.rpm_hosts`
  directly). Resetting a fwupd host also ends its fwupd faults and gives the test device back
  its first version, 1.2.2.
- `lab_fresh_windows_host` (function): the name of the Windows host, its recorded state reset
  to the default (winstate.py) before this test and put back as it was after it.
Tests using these fixtures are skipped (with the reason) when not root or when the lab
cannot run here, unless ORCHESTRATOR_LAB_REQUIRED=1 (as `make test` sets): then they fail.
Each xdist worker gets its own lab folder and addresses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _lab_root(config: pytest.Config) -> Path:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base = Path(config.rootpath) / ".orchestrator"
    return base / (f"lab-test-{worker}" if worker else "lab-test")


@pytest.fixture(scope="session")
def lab_fleet(request: pytest.FixtureRequest):
    from orchestrator.errors import LabError
    from orchestrator.lab.fleet import Lab

    required = os.environ.get("ORCHESTRATOR_LAB_REQUIRED") == "1"  # `make test` sets it
    if os.geteuid() != 0:
        if required:
            pytest.fail("the lab needs root (ORCHESTRATOR_LAB_REQUIRED=1)")
        pytest.skip("the lab needs root")
    hosts = int(os.environ.get("LAB_HOSTS", "3"))
    rpm = int(os.environ.get("LAB_RPM_HOSTS", "1"))
    zypper = int(os.environ.get("LAB_ZYPPER_HOSTS", "1"))
    fwupd = int(os.environ.get("LAB_FWUPD_HOSTS", "1"))
    lab = Lab(_lab_root(request.config), log=lambda msg: None)
    try:
        lab.up(hosts=hosts, windows=1, rpm=rpm, zypper=zypper, fwupd=fwupd)
    except LabError as exc:
        if required:
            pytest.fail(f"lab unavailable: {exc}")
        pytest.skip(f"lab unavailable: {exc}")
    lab.shared_hosts = [h.name for h in lab.hosts[:-1]]
    lab.scratch_host = lab.hosts[-1].name
    yield lab
    lab.down()


def _fresh(lab, hosts: list, kind: str):
    if not hosts:
        pytest.skip(f"the lab fleet has no {kind} host (LAB_{kind.upper()}_HOSTS=0)")
    name = hosts[-1].name
    lab.reset_host(name)
    yield name
    lab.reset_host(name)  # leave the fleet whole for the tests that only read


@pytest.fixture
def lab_fresh_host(lab_fleet):
    lab_fleet.reset_host(lab_fleet.scratch_host)
    yield lab_fleet.scratch_host
    lab_fleet.reset_host(lab_fleet.scratch_host)  # leave the fleet whole for `all` tests


@pytest.fixture
def lab_fresh_rpm_host(lab_fleet):
    yield from _fresh(lab_fleet, lab_fleet.rpm_hosts, "rpm")


@pytest.fixture
def lab_fresh_zypper_host(lab_fleet):
    yield from _fresh(lab_fleet, lab_fleet.zypper_hosts, "zypper")


@pytest.fixture
def lab_fresh_fwupd_host(lab_fleet):
    yield from _fresh(lab_fleet, lab_fleet.fwupd_hosts, "fwupd")


@pytest.fixture
def lab_fresh_windows_host(lab_fleet):
    from orchestrator.lab.winstate import default_state

    name = lab_fleet.windows_hosts[0].name
    original = lab_fleet.windows_state(name)
    lab_fleet.set_windows_state(name, default_state(name))
    yield name
    lab_fleet.set_windows_state(name, original)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster on loopback for the whole session (lab/postgres.py).
    Skipped where no server is installed, unless ORCHESTRATOR_LAB_REQUIRED=1."""
    from orchestrator.lab.errors import LabError
    from orchestrator.lab.postgres import Cluster, server_bin

    try:
        server_bin()
    except LabError as exc:
        if os.environ.get("ORCHESTRATOR_LAB_REQUIRED") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def rabbitmq_broker():
    """A throwaway RabbitMQ broker on loopback for the whole session (lab/rabbitmq.py): AMQP at
    `.url(tls=False)`, AMQPS at `.url()` with the lab CA at `.ca` (`.ssl_options()` for
    clients). Shared: tests use their own queue names and never restart or stop it (make an
    own `Broker` for that). Skipped where rabbitmq-server is not installed, unless
    ORCHESTRATOR_LAB_REQUIRED=1."""
    from orchestrator.lab.errors import LabError
    from orchestrator.lab.rabbitmq import Broker, server_bin

    try:
        server_bin()
    except LabError as exc:
        if os.environ.get("ORCHESTRATOR_LAB_REQUIRED") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    broker = Broker(tls=True)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A new, empty database of the session's cluster."""
    import uuid

    return pg_cluster.database("t_" + uuid.uuid4().hex[:16])


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, tmp_path):
    """Tests that run against both store backends: `stores("name")` opens (another
    connection to) the store called name, SQLite or PostgreSQL (a new database of the
    session's cluster); `stores.backend` says which."""
    import uuid

    opened = []
    urls: dict[str, str] = {}

    def open_(name: str = "state"):
        if request.param == "sqlite":
            from orchestrator.changelog.sqlite import SqliteStore

            store = SqliteStore(tmp_path / f"{name}.db")
        else:
            from orchestrator.changelog.postgres import PostgresStore

            if name not in urls:
                urls[name] = request.getfixturevalue("pg_cluster").database(
                    "t_" + uuid.uuid4().hex[:16])
            store = PostgresStore(urls[name])
        opened.append(store)
        return store

    open_.backend = request.param
    open_.url = lambda name="state": (f"sqlite:///{tmp_path / f'{name}.db'}"
                                      if request.param == "sqlite" else urls[name])
    yield open_
    for s in opened:
        s.close()
