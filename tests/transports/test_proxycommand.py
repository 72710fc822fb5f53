"""The ProxyCommand's process group ends with the connection, whatever the proxy does."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from orchestrator.transports.proxycommand import ProxyCommand


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_close_kills_a_proxy_that_ignores_sigterm_and_its_background_child(tmp_path):
    pids = tmp_path / "pids"
    # the shell and its background child both ignore SIGTERM (an ignored signal is inherited)
    script = (f"trap '' TERM; sleep 300 </dev/null >/dev/null 2>&1 & echo $! $$ > {pids}; "
              "while :; do sleep 1; done")
    proxy = ProxyCommand(f"sh -c {script!r}", "web-01")
    pgid = proxy.process.pid
    try:
        deadline = time.monotonic() + 10
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.02)
        left = [int(x) for x in pids.read_text().split()]
        assert all(_alive(pid) for pid in left)
        closing = threading.Thread(target=proxy.close, daemon=True)
        start = time.monotonic()
        closing.start()
        closing.join(15)
        assert not closing.is_alive(), "close() hung on a proxy that ignores SIGTERM"
        assert time.monotonic() - start < 5
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in left if _alive(pid)] == []
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
