"""Occurrence leases with a heartbeat: who runs an occurrence, whether it is still alive, and
taking over from a run that died (SIGKILL, a crash, the machine lost).

A run holding a lease beats its heartbeat every HEARTBEAT_SECONDS from a thread with its
own store connection. A running lease's holder is gone when:
- it ran here (same host name, same boot, same pid namespace) and its process no longer
  exists (the pid is checked with the process's start tick, so a reused pid is not mistaken
  for it): known at once;
- it ran anywhere else (another machine, another container, this machine before a restart)
  and its heartbeat is older than STALE_SECONDS: the only sign one can see of another. A
  holder here whose process lives is never gone, however late its heartbeat: it may be
  stopped, not dead.
Heartbeats are compared with this machine's clock: machines sharing a store need synchronised
clocks (NTP; a skew near STALE_SECONDS would make a live holder look gone).
A finished run's lease (state done) is never taken over: the occurrence ran.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.changelog.store import ChangeLogStore, Lease, LeaseOwner

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 120.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_tick(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or
    None when no such process runs (a zombie, killed and not yet reaped, runs no more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ""  # exists but unreadable: alive, start unknown
    # the command name (field 2) is in parentheses and may hold spaces or ')'
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else ""


def _pid_namespace() -> str:
    """This process's pid namespace (containers on one machine share its boot id and often its
    host name, never their pid namespace)."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return ""


def node_name() -> str:
    return socket.gethostname()


def this_owner() -> LeaseOwner:
    pid = os.getpid()
    return LeaseOwner(node_name(), pid,
                      f"{_boot_id()}:{_pid_namespace()}:{_start_tick(pid) or ''}")


def holder_gone(lease: Lease, now: datetime | None = None,
                node: str | None = None) -> str | None:
    """Why `lease`'s holder is gone (a reason to record), or None while it may be alive or
    when its run finished."""
    if lease.state != "running":
        return None
    owner = lease.owner
    here = node or node_name()
    boot, pidns, tick = ((owner.started.split(":") + ["", "", ""])[:3] if owner is not None
                         else ("", "", ""))
    if owner is not None and owner.node == here and boot == _boot_id() and pidns \
            and pidns == _pid_namespace():
        # the same kernel since its start and the same pid namespace: its process is
        # visible from here, alive or not is known at once (otherwise: another machine,
        # another container, or this machine restarted, all judged by the heartbeat)
        now_tick = _start_tick(owner.pid)
        if now_tick is None or (tick and now_tick and now_tick != tick):
            return f"its process {owner.pid} on {owner.node} is gone"
        return None
    if lease.heartbeat is None:
        return None  # a lease from an orchestrator without heartbeats: not judged
    beat = datetime.fromisoformat(lease.heartbeat)
    age = ((now or datetime.now(UTC)) - beat).total_seconds()
    if age > STALE_SECONDS:
        where = f" on {owner.node}" if owner else ""
        return f"no heartbeat{where} for {int(age)} s (limit {int(STALE_SECONDS)} s)"
    return None


@dataclass(frozen=True)
class Claim:
    """The outcome of `claim`: `taken`, and the lease found in the way (when not taken: who
    holds it; when taken over: from whom) with why its holder was judged gone."""

    taken: bool
    held: Lease | None = None
    gone: str | None = None


def claim(store: ChangeLogStore, key: str, holder: str, until: datetime,
          now: datetime | None = None) -> Claim:
    """Take `key` for `holder` until `until`; if a holder that is gone has it, take it over
    (compare-and-swap: of two runs taking over at once, one wins)."""
    owner = this_owner()
    if store.acquire_lease(key, holder, until, now=now, owner=owner):
        return Claim(True)
    held = store.lease(key)
    gone = holder_gone(held) if held is not None else None
    if gone is not None and store.acquire_lease(key, holder, until, now=now, owner=owner,
                                                replacing=held):
        return Claim(True, held, gone)
    return Claim(False, held)


class Heartbeat:
    """Beats `key`'s heartbeat for `holder` from a daemon thread until stopped. The thread
    opens its own store (`open_store(url)`): a connection is not shared between threads."""

    def __init__(self, url: str, key: str, holder: str,
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.url, self.key, self.holder, self.interval = url, key, holder, interval
        self.lost = False  # the lease was taken from us (we were judged gone)
        self.failing: str | None = None  # why the last beat could not be written
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {key}",
                                        daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    @property
    def healthy(self) -> bool:
        """The lease is ours and its heartbeat is being written (a beat or two may fail on a
        busy database; for half the stale limit, another machine could judge us gone)."""
        if self.lost or not (self._thread.is_alive() or self._stop.is_set()):
            return False
        return time.monotonic() - self._last_ok < STALE_SECONDS / 2

    @property
    def problem(self) -> str:
        if self.lost:
            return "another run took it over"
        if self.healthy:
            return ""
        if self.failing is not None:
            return f"its heartbeat cannot be written: {self.failing}"
        return "its heartbeat stopped"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from orchestrator.changelog.open import open_store
        from orchestrator.errors import OrchestratorError

        store: ChangeLogStore | None = None
        try:
            store = open_store(self.url)
            while not self._stop.wait(self.interval):
                try:
                    if not store.heartbeat(self.key, self.holder):
                        self.lost = True
                        return
                    self.failing, self._last_ok = None, time.monotonic()
                except OrchestratorError as exc:
                    self.failing = exc.message  # busy database: the next beat tries again
        except OrchestratorError as exc:
            self.failing = exc.message
        except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback
            self.failing = f"{type(exc).__name__}: {exc}"
        finally:
            if store is not None:
                store.close()
