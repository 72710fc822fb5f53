"""FactBatch framing and gather() over real transports (local sh and a real sshd)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.errors import TransportError
from orchestrator.facts import FACTS, Fact, FactBatch, FactParseError, FactRequest, gather
from orchestrator.transports import TransportSettings, get_transport
from orchestrator.transports.local import LocalTransport

N = "feedfacefeedface"


def mark(i: int, rc: int = 0) -> bytes:
    return f"\n@@ORCH:{N}:{i}:{rc}\n".encode()


def test_sections_split_back_per_fact():
    b = FactBatch("sh", nonce=N)
    b.extend(
        [
            FactRequest("sysctl", ("net.ipv4.ip_forward",)),
            FactRequest("memory"),
            FactRequest("sysctl", ("net.ipv4.ip_forward",)),
        ]
    )
    assert len(b.requests) == 2  # duplicates collapse
    out = b"1" + mark(0) + b"MemTotal: 100 kB\nMemAvailable: 25 kB" + mark(1)
    r = b.parse(out, b"")
    assert r[FactRequest("sysctl", ("net.ipv4.ip_forward",))].value.value == "1"
    assert r[FactRequest("memory")].value.used_percent == 75.0


def test_missing_section_and_garbage_are_per_fact_errors():
    b = FactBatch("sh", nonce=N)
    reqs = [FactRequest("os"), FactRequest("memory"), FactRequest("file.stat", ("/etc/x",))]
    b.extend(reqs)
    out = b"\x00\xff garbage" + mark(0) + b"MemTotal: 10 kB\n"  # connection dropped mid-batch
    r = b.parse(out, b"")
    assert "no ID=" in r[reqs[0]].error and r[reqs[0]].lossy
    assert "batch stopped early" in r[reqs[1]].error
    assert "batch stopped early" in r[reqs[2]].error


def test_forged_or_foreign_markers_are_ignored():
    b = FactBatch("sh", nonce=N)
    b.add(FactRequest("sysctl", ("kernel.hostname",)))
    out = b"evil\n@@ORCH:0000000000000000:0:0\nname" + mark(0) + b"tail" + mark(7)
    r = b.parse(out, b"")
    assert r[FactRequest("sysctl", ("kernel.hostname",))].value.value == (
        "evil @@ORCH:0000000000000000:0:0 name"
    )


def test_rejected_arguments_unknown_facts_and_wrong_shell():
    b = FactBatch("sh", nonce=N)
    bad = [
        FactRequest("file.stat", ("relative/path",)),
        FactRequest("file.contains", ("/etc/hosts", "two\nlines")),
        FactRequest("service", ("x; touch /tmp/pwned",)),
        FactRequest("service", ("-h",)),
        FactRequest("sysctl", ("../../etc/shadow",)),
        FactRequest("win.services", ("Spooler",)),
        FactRequest("nope"),
    ]
    b.extend(bad)
    assert b.requests == []
    r = b.parse(b"", b"")
    assert all(r[q].error for q in bad)
    assert "rejected" in r[bad[2]].error and "unknown fact" in r[bad[6]].error
    assert "needs powershell" in r[bad[5]].error


def test_parser_bug_becomes_error(monkeypatch):
    def boom(out, args):
        raise KeyError("surprise")

    monkeypatch.setitem(FACTS, "test.boom", Fact("test.boom", "sh", lambda a: "true", boom))
    b = FactBatch("sh", nonce=N)
    b.add(FactRequest("test.boom"))
    r = b.parse(mark(0), b"")
    assert r[FactRequest("test.boom")].error.startswith("cannot parse output (KeyError")


def test_sysctl_name_mapping():
    from orchestrator.facts.posix import sysctl_path

    assert sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert (
        sysctl_path("net/ipv4/conf/eth0.100/forwarding")
        == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    )
    assert (
        sysctl_path("net.ipv4.conf.eth0/100.forwarding")
        == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    )


def test_powershell_batch_framing():
    b = FactBatch("powershell", nonce=N)
    b.extend([FactRequest("win.hotfixes"), FactRequest("win.services", ("Spool'er",))])
    script = b.script()
    assert "'Spool''er'" in script and script.count(f"@@ORCH:{N}:") == 2
    out = b'[{"HotFixID":"KB1"}]\r\n' + mark(0) + b"Access denied" + mark(1, 1)
    r = b.parse(out, b"")
    assert list(r[FactRequest("win.hotfixes")].value) == ["KB1"]
    assert r[FactRequest("win.services", ("Spool'er",))].error == "PowerShell failed: Access denied"


# -- real hosts -----------------------------------------------------------------------------
def _linux_requests(tmp: Path, hostile: str) -> list[FactRequest]:
    return [
        FactRequest("packages"),
        FactRequest("service", ("ssh",)),
        FactRequest("service", ("no-such-service",)),
        FactRequest("file.stat", (str(tmp / "conf"),)),
        FactRequest("file.stat", (str(tmp / "missing"),)),
        FactRequest("file.contains", (str(tmp / "conf"), "PermitRootLogin no", hostile)),
        FactRequest("file.sha256", (str(tmp / "conf"),)),
        FactRequest("file.stat", (str(tmp / hostile.replace("/", "_")),)),
        FactRequest("sysctl", ("net.ipv4.ip_forward",)),
        FactRequest("disk.usage", ("/", str(tmp))),
        FactRequest("memory"),
        FactRequest("reboot.pending"),
        FactRequest("os"),
        FactRequest("file.contains", (str(tmp / "latin1"), "caf")),
    ]


def _check(results: dict, tmp: Path, pwned: Path) -> None:
    assert all(r.error is None for r in results.values()), {
        k.key: r.error for k, r in results.items() if r.error
    }
    by = {k.key: r.value for k, r in results.items()}
    assert "dpkg" in by["packages"].installed
    assert by["service:no-such-service"].running is False
    st = by[f"file.stat:{tmp / 'conf'}"]
    assert (st.exists, st.mode, st.owner) == (True, "0640", "root")
    assert by[f"file.stat:{tmp / 'missing'}"].exists is False
    found = next(v for k, v in by.items() if k.startswith(f"file.contains:{tmp / 'conf'}"))
    assert found.found["PermitRootLogin no"] is True and found.missing == [f"x; touch {pwned}"]
    import hashlib

    sha = by[f"file.sha256:{tmp / 'conf'}"].sha256
    assert sha == hashlib.sha256((tmp / "conf").read_bytes()).hexdigest()
    assert (
        by["sysctl:net.ipv4.ip_forward"].value
        == Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    )
    disk = by[f"disk.usage:/,{tmp}"]
    assert 0 <= disk["/"].used_percent <= 100
    assert by["os"].family == "debian"
    assert not pwned.exists()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "conf").write_text("Port 22\nPermitRootLogin no\n")
    (tmp_path / "conf").chmod(0o640)
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    return tmp_path


def test_gather_local_one_round_trip(files: Path, monkeypatch):
    pwned = files / "pwned"
    t = LocalTransport()
    calls = []
    real = t.run
    monkeypatch.setattr(t, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    results = gather(t, _linux_requests(files, f"x; touch {pwned}"), timeout=30)
    assert len(calls) == 1
    _check(results, files, pwned)


def test_gather_over_real_ssh(files: Path, sshd_host, tmp_path: Path):
    pwned = files / "pwned"
    kh = tmp_path / "kh"
    kh.write_text(sshd_host.known_hosts_line())
    t = get_transport(
        "ssh", sshd_host.host_vars(), TransportSettings(known_hosts=kh), host="lab-01"
    )
    try:
        start = time.monotonic()
        results = gather(t, _linux_requests(files, f"x; touch {pwned}"), timeout=30)
        assert time.monotonic() - start < 10
    finally:
        t.close()
    _check(results, files, pwned)


def test_section_timeout_spares_other_facts(monkeypatch):
    monkeypatch.setitem(
        FACTS, "test.hang", Fact("test.hang", "sh", lambda a: "sleep 30", lambda o, a: o.stdout)
    )
    start = time.monotonic()
    r = gather(
        LocalTransport(),
        [FactRequest("test.hang"), FactRequest("memory")],
        timeout=20,
        section_timeout=0.5,
    )
    assert time.monotonic() - start < 10
    assert r[FactRequest("test.hang")].error == "timed out after 0.5s"
    assert r[FactRequest("memory")].value.total_kb > 0


def test_whole_batch_timeout_is_transport_error(monkeypatch):
    monkeypatch.setitem(
        FACTS, "test.hang", Fact("test.hang", "sh", lambda a: "sleep 30", lambda o, a: o.stdout)
    )
    with pytest.raises(TransportError, match="timed out"):
        gather(LocalTransport(), [FactRequest("test.hang")], timeout=0.5)


def test_parse_errors_are_fact_parse_errors():
    from orchestrator.facts.base import Output
    from orchestrator.facts.posix import parse_meminfo

    with pytest.raises(FactParseError):
        parse_meminfo(Output("nothing"), ())
