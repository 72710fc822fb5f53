"""Occurrence leases with heartbeats: when a holder is gone, take-over as compare-and-swap,
finished runs never taken over, old databases migrated, the heartbeat thread."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.changelog.lease import (
    STALE_SECONDS,
    Heartbeat,
    _start_tick,
    holder_gone,
    node_name,
    this_owner,
)
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.changelog.store import Lease, LeaseOwner

UNTIL = datetime.now(UTC) + timedelta(hours=1)


def dead_owner() -> LeaseOwner:
    """An owner on this machine whose process has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    tick = _start_tick(proc.pid)
    proc.wait()
    me = this_owner()
    boot, pidns, _ = me.started.split(":")
    return LeaseOwner(me.node, proc.pid, f"{boot}:{pidns}:{tick}")


def test_a_live_holder_on_this_machine_is_never_gone_even_without_heartbeat(stores) -> None:
    store = stores()
    assert store.acquire_lease("w@1", "run-a", UNTIL, owner=this_owner())
    held = store.lease("w@1")
    assert held is not None and held.state == "running" and held.owner == this_owner()
    late = datetime.now(UTC) + timedelta(seconds=10 * STALE_SECONDS)
    assert holder_gone(held, now=late) is None  # alive (maybe stopped), not dead


def test_a_dead_process_on_this_machine_is_gone_at_once(stores) -> None:
    store = stores()
    owner = dead_owner()
    assert store.acquire_lease("w@1", "run-a", UNTIL, owner=owner)
    held = store.lease("w@1")
    assert held is not None
    assert holder_gone(held) == f"its process {owner.pid} on {owner.node} is gone"


def test_a_reused_pid_is_not_the_holder(tmp_path) -> None:
    """Our own pid with another start tick: the holder's process is gone, whatever now has
    its number."""
    me = this_owner()
    boot, pidns, _ = me.started.split(":")
    lease = Lease("w@1", "run-a", "", UNTIL.isoformat(), None,
                  LeaseOwner(me.node, me.pid, f"{boot}:{pidns}:1"), "running")
    assert holder_gone(lease) == f"its process {me.pid} on {me.node} is gone"


def test_another_container_or_boot_is_judged_by_its_heartbeat_not_by_pid() -> None:
    """Same host name, another pid namespace (a container) or another boot: the pid means
    nothing here, so a fresh heartbeat keeps the lease and only a stale one loses it."""
    me = this_owner()
    boot, pidns, tick = me.started.split(":")
    now = datetime.now(UTC)
    for started in (f"{boot}:4026599999:{tick}", f"another-boot:{pidns}:{tick}"):
        lease = Lease("w@1", "run-a", "", UNTIL.isoformat(), now.isoformat(),
                      LeaseOwner(me.node, 1, started), "running")  # pid 1 lives here
        assert holder_gone(lease, now=now) is None
        stale = now + timedelta(seconds=STALE_SECONDS + 1)
        assert "no heartbeat" in (holder_gone(lease, now=stale) or "")
        dead_pid = replace(lease, owner=LeaseOwner(me.node, 999_999_999, started))
        assert holder_gone(dead_pid, now=now) is None  # not judged by a pid it cannot see


def test_another_machine_is_gone_only_after_its_heartbeat_is_stale() -> None:
    beat = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    lease = Lease("w@1", "run-a", beat.isoformat(), UNTIL.isoformat(), beat.isoformat(),
                  LeaseOwner("elsewhere-" + node_name(), 1, "x:1"), "running")
    assert holder_gone(lease, now=beat + timedelta(seconds=STALE_SECONDS - 1)) is None
    why = holder_gone(lease, now=beat + timedelta(seconds=STALE_SECONDS + 5))
    assert why is not None and "no heartbeat on elsewhere-" in why


def test_a_finished_run_is_never_taken_over(stores) -> None:
    store = stores()
    assert store.acquire_lease("w@1", "run-a", UNTIL, owner=dead_owner())
    store.finish_lease("w@1", "run-a")
    held = store.lease("w@1")
    assert held is not None and held.state == "done"
    assert holder_gone(held) is None
    assert not store.heartbeat("w@1", "run-a")  # a finished lease beats no more


def test_take_over_is_compare_and_swap(stores) -> None:
    """Two runs judge the same dead lease: one takes it, the other sees it changed."""
    a, b = stores(), stores()
    assert a.acquire_lease("w@1", "run-dead", UNTIL, owner=dead_owner())
    held = a.lease("w@1")
    assert held is not None
    assert not a.acquire_lease("w@1", "run-x", UNTIL)  # plainly held
    wins = [s.acquire_lease("w@1", f"run-{n}", UNTIL, owner=this_owner(), replacing=held)
            for n, s in (("b", b), ("c", a))]
    assert wins == [True, False]
    assert a.lease_holder("w@1") == "run-b"
    # a lease that beat since it was judged is not the one judged: no take-over
    b.heartbeat("w@1", "run-b")
    stale = replace(held, holder="run-b")
    assert not a.acquire_lease("w@1", "run-d", UNTIL, replacing=stale)


def test_heartbeat_thread_beats_and_notices_a_lost_lease(stores) -> None:
    store = stores()
    assert store.acquire_lease("w@1", "run-a", UNTIL, owner=this_owner())
    first = store.lease("w@1").heartbeat  # type: ignore[union-attr]
    beat = Heartbeat(store.url, "w@1", "run-a", interval=0.05).start()
    deadline = time.monotonic() + 5
    while store.lease("w@1").heartbeat == first and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.02)
    assert store.lease("w@1").heartbeat != first  # type: ignore[union-attr]
    store.release_lease("w@1", "run-a")  # taken from us
    deadline = time.monotonic() + 5
    while not beat.lost and time.monotonic() < deadline:
        time.sleep(0.02)
    beat.stop()
    assert beat.lost
    assert not [t for t in threading.enumerate() if t.name == "heartbeat w@1"]


def test_an_old_database_gets_the_lease_columns_and_its_leases_count_as_finished(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.touch(mode=0o600)
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL,
                             acquired TEXT NOT NULL, until TEXT NOT NULL);""")
    conn.execute("INSERT INTO leases VALUES ('w@1', 'run-old', ?, ?)",
                 (datetime.now(UTC).isoformat(), UNTIL.isoformat()))
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    held = store.lease("w@1")
    assert held is not None and (held.holder, held.state, held.owner) == ("run-old", "done",
                                                                         None)
    assert holder_gone(held) is None
    assert not store.acquire_lease("w@1", "run-new", UNTIL)


def test_a_heartbeat_that_cannot_be_written_is_not_healthy(tmp_path) -> None:
    """The thread that cannot open the store ends: the run learns it (and stops starting
    host work) instead of believing it still holds the lease."""
    beat = Heartbeat("sqlite:///" + str(tmp_path / "no" / "such" / "\0bad.db"), "w@1",
                     "run-a", interval=0.05).start()
    deadline = time.monotonic() + 5
    while beat.healthy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not beat.healthy and beat.problem.startswith("its heartbeat")
    beat.stop()
    store = SqliteStore(tmp_path / "s.db")
    assert store.acquire_lease("w@1", "run-a", UNTIL, owner=this_owner())
    ok = Heartbeat(store.url, "w@1", "run-a", interval=0.05).start()
    time.sleep(0.2)
    assert ok.healthy and ok.problem == ""
    ok.stop()
    assert ok.healthy  # stopped on purpose: not a fault


def test_a_killed_holder_not_yet_reaped_is_gone() -> None:
    """A zombie (killed, its parent has not waited for it yet) runs no more: gone."""
    import signal

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tick = _start_tick(proc.pid)
        me = this_owner()
        boot, pidns, _ = me.started.split(":")
        lease = Lease("w@1", "run-a", "", UNTIL.isoformat(), None,
                      LeaseOwner(me.node, proc.pid, f"{boot}:{pidns}:{tick}"), "running")
        assert holder_gone(lease) is None
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{proc.pid}/stat").read_text().split(")")[-1].split()[0] != "Z" \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder_gone(lease) == f"its process {proc.pid} on {me.node} is gone"
    finally:
        proc.kill()
        proc.wait()
