"""`updates.pending` against a real lab host: real sh, real apt-get, the lab's apt repository
(suites bookworm and bookworm-security), over SSH with the fact batch's own framing."""

from __future__ import annotations

import subprocess

from orchestrator.facts import FactBatch, FactRequest


def scan(lab, host: str, *args: str):
    req = FactRequest("updates.pending", args)
    batch = FactBatch("sh", section_timeout=120)
    batch.add(req)
    res = subprocess.run([*lab.ssh_argv(host), "sh -s"], input=batch.script().encode(),
                         capture_output=True, timeout=180)
    return batch.parse(res.stdout, res.stderr)[req]


def test_scan_refresh_failure_and_norefresh_on_a_lab_host(lab_fleet, lab_fresh_host) -> None:
    host = lab_fresh_host
    result = scan(lab_fleet, host)
    assert result.error is None, result.error
    got = {u.name: (u.current, u.available, u.classification, u.origin)
           for u in result.value.updates}
    assert result.value.manager == "apt" and result.value.refreshed
    assert got == {
        "acme-agent": ("1.0", "1.1", "other", "Acme:bookworm"),
        "acme-broken": ("1.0", "1.1", "other", "Acme:bookworm"),
        "acme-kernel": ("1.0", "1.1", "other", "Acme:bookworm"),
        "acme-tls": ("1.0", "1.0+sec1", "security", "Acme-Security:bookworm-security"),
    }

    # a repository that cannot be reached: apt-get update exits 0 with a warning
    lab_fleet.ssh(host, "echo 'deb [trusted=yes] http://127.0.0.1:9/debian bookworm main' "
                        "> /etc/apt/sources.list.d/gone.list")
    failed = scan(lab_fleet, host)
    assert failed.value is None
    assert failed.error.startswith("apt-get update failed (exit 0): W: Failed to fetch")

    # without a refresh the cached lists still answer
    cached = scan(lab_fleet, host, "norefresh")
    assert cached.error is None, cached.error
    assert not cached.value.refreshed
    assert {u.name for u in cached.value.updates} == set(got)
