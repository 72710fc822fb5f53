"""The inventory cache trusts only what this user wrote; stale entries go; state folders are
0700 whichever command creates them (issue 8)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.inventory import cache, loader
from orchestrator.inventory.loader import load_inventory
from orchestrator.privatefs import private_dir

NOBODY = 65534
INI = "[web]\nweb-01 ansible_host=127.0.0.1 ansible_port=9\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "hosts.ini"
    src.write_text(INI)
    return src


def plant(cache_dir: Path, source: Path, marker: Path) -> Path:
    """What an attacker who can write the state folder leaves: a well-formed, current entry
    whose host reaches its address through a ProxyCommand of theirs."""
    key = cache.cache_key(source)
    assert key is not None
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / cache.entry_name(source)
    entry.write_text(json.dumps({
        "hosts": {"web-01": {"groups": ["web"], "literal": [], "vars": {
            "ansible_host": "127.0.0.1", "ansible_port": 9,
            "ansible_ssh_common_args": f"-o ProxyCommand='touch {marker}'"}}},
        "groups": ["web"], "key": key, "format": cache.FORMAT, "source": str(source.resolve())}))
    entry.chmod(0o600)
    return entry


def connect(inv) -> None:
    """Open the host's SSH connection as an audit would (port 9: nothing listens)."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.transports import TransportSettings, transport_for_host

    host = inv.hosts["web-01"]
    t = transport_for_host("web-01", host.vars, TransportSettings(connect_timeout=2))
    try:
        t.run("true", timeout=2)
    except OrchestratorError:
        pass
    finally:
        t.close()


def parsed_again(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = loader._parse
    monkeypatch.setattr(loader, "_parse", lambda s: calls.append(s) or real(s))
    return calls


def test_a_trusted_entry_is_used(tmp_path: Path, source: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same planted entry in a folder of ours is read, so the refusals
    below are the trust checks at work, not a malformed entry."""
    cache_dir = tmp_path / "state" / "cache"
    private_dir(cache_dir)
    plant(cache_dir, source, tmp_path / "ran")
    calls = parsed_again(monkeypatch)
    inv = load_inventory(source, cache_dir=cache_dir)
    assert calls == [] and "ProxyCommand" in inv.hosts["web-01"].vars["ansible_ssh_common_args"]
    connect(inv)
    assert (tmp_path / "ran").exists()  # what a planted entry would have run


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_planted_entry_in_a_folder_of_another_user_is_refused_and_not_run(
        tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cache_dir = tmp_path / "state" / "cache"
    marker = tmp_path / "ran"
    entry = plant(cache_dir, source, marker)
    cache_dir.chmod(0o700)
    os.chown(cache_dir, NOBODY, NOBODY)
    os.chown(entry, NOBODY, NOBODY)
    calls = parsed_again(monkeypatch)
    inv = load_inventory(source, cache_dir=cache_dir)
    assert calls == [source]
    assert "ansible_ssh_common_args" not in inv.hosts["web-01"].vars
    connect(inv)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert f"{cache_dir}: folder is owned by uid {NOBODY}" in err and "not used" in err
    assert entry.exists()  # not ours to clean: the folder is not trusted at all


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_entry_of_another_user_in_our_folder_is_removed(tmp_path: Path, source: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys) -> None:
    cache_dir = tmp_path / "state" / "cache"
    private_dir(cache_dir)
    entry = plant(cache_dir, source, tmp_path / "ran")
    os.chown(entry, NOBODY, NOBODY)
    calls = parsed_again(monkeypatch)
    inv = load_inventory(source, cache_dir=cache_dir)
    assert calls == [source] and "ansible_ssh_common_args" not in inv.hosts["web-01"].vars
    assert f"{entry}: file is owned by uid {NOBODY}" in capsys.readouterr().err
    # removed, and replaced by this user's own parse
    assert entry.stat().st_uid == os.geteuid()
    assert "ProxyCommand" not in entry.read_text()


@pytest.mark.parametrize("what", ["folder", "file"])
def test_group_or_world_writable_is_refused(tmp_path: Path, source: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys,
                                            what: str) -> None:
    cache_dir = tmp_path / "state" / "cache"
    private_dir(cache_dir)
    entry = plant(cache_dir, source, tmp_path / "ran")
    if what == "folder":
        cache_dir.chmod(0o770)
    else:
        entry.chmod(0o622)
    calls = parsed_again(monkeypatch)
    inv = load_inventory(source, cache_dir=cache_dir)
    assert calls == [source] and "ansible_ssh_common_args" not in inv.hosts["web-01"].vars
    assert "is writable by group or others" in capsys.readouterr().err


@pytest.mark.parametrize("what", ["folder", "file"])
def test_symbolic_links_are_refused(tmp_path: Path, source: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys, what: str) -> None:
    real = tmp_path / "elsewhere"
    private_dir(real)
    entry = plant(real, source, tmp_path / "ran")
    cache_dir = tmp_path / "state" / "cache"
    if what == "folder":
        private_dir(cache_dir.parent)
        cache_dir.symlink_to(real)
    else:
        private_dir(cache_dir)
        (cache_dir / entry.name).symlink_to(entry)
    calls = parsed_again(monkeypatch)
    inv = load_inventory(source, cache_dir=cache_dir)
    assert calls == [source] and "ansible_ssh_common_args" not in inv.hosts["web-01"].vars
    assert "is a symbolic link" in capsys.readouterr().err


def test_stale_entries_are_removed(tmp_path: Path) -> None:
    """A changed inventory replaces its entry; an entry whose inventory changed or vanished
    since (it still holds the old password) goes at the next write."""
    cache_dir = tmp_path / "cache"
    a, b, c = (tmp_path / n for n in ("a.ini", "b.ini", "c.ini"))
    a.write_text("[web]\nweb-01 ansible_password=old-a\n")
    b.write_text("[web]\nweb-02 ansible_password=old-b\n")
    c.write_text("[web]\nweb-03 ansible_password=old-c\n")
    for src in (a, b, c):
        load_inventory(src, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("inventory-*.json"))) == 3
    (cache_dir / ".inventory-0123456789abcdef.tmp").write_text("old-tmp")
    os.utime(cache_dir / ".inventory-0123456789abcdef.tmp", (0, 0))
    (cache_dir / "inventory-0123456789abcdef0123456789abcdef.json").write_text(
        '{"key": "x", "hosts": {}}')  # an older format, keyed by content

    a.write_text("[web]\nweb-01 ansible_password=new-a\n")  # rotated
    b.write_text("[web]\nweb-02 ansible_password=new-b\n")  # rotated, not loaded again yet
    c.unlink()
    assert load_inventory(a, cache_dir=cache_dir).hosts["web-01"].vars[
        "ansible_password"] == "new-a"
    left = sorted(p.name for p in cache_dir.iterdir())
    assert left == [cache.entry_name(a)]
    text = (cache_dir / cache.entry_name(a)).read_text()
    assert "new-a" in text and "old-a" not in text


def test_private_dir_makes_every_missing_parent_0700(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    old = os.umask(0o022)
    try:
        private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # an existing folder is left alone


POLICY = """\
apiVersion: orchestrator/v1
kind: Baseline
metadata: {name: base}
spec: {platform: linux, packages: {installed: [openssh-server]}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: fleet}
spec: {hosts: {patterns: ["nothing-*"]}, baselines: [base]}
"""


@pytest.mark.parametrize("state", [".orchestrator/state.db", ".orchestrator/deep/state.db"])
@pytest.mark.parametrize("first", ["audit", "log"])
def test_state_folder_is_0700_whichever_command_creates_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, first: str,
        state: str) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yml").write_text(POLICY)
    (tmp_path / "hosts.ini").write_text(INI)
    (tmp_path / "orchestrator.yml").write_text(
        f"policies: policies/\ninventory: hosts.ini\nstate: sqlite:///{state}\n")
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        code = main([first])
    finally:
        os.umask(old)
    capsys.readouterr()
    assert code == (4 if first == "audit" else 0)  # an audit of no host is incomplete
    created = [tmp_path / ".orchestrator"]
    if "deep" in state:
        created.append(tmp_path / ".orchestrator" / "deep")
    if first == "audit":
        created.append(Path(tmp_path / state).parent / "cache")
    for folder in created:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
