"""The state database trusts only what this user (or root) wrote: its folder, the database,
its WAL and shared-memory files, and every folder and link on the way to them (issue 8)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main
from orchestrator.errors import StateError

NOBODY = 65534


def plant_db(path: Path, holder: str = "r-maintenance-already-ran") -> None:
    """What another user leaves: a database holding a lease far into the future."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, "
                 "acquired TEXT NOT NULL, until TEXT NOT NULL)")
    conn.execute("INSERT INTO leases VALUES ('always@x', ?, 'x', '9999')", (holder,))
    conn.commit()
    conn.close()


def refused(path: Path, match: str) -> str:
    with pytest.raises(StateError, match=match) as info:
        SqliteStore(path).close()
    text = str(info.value)
    assert "\n" not in text and "not trusted" in text
    return text


def test_shared_folder_is_refused(tmp_path: Path) -> None:
    """The reviewer's case: a 1777 state folder where another user planted state.db."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    db = shared / "state.db"
    plant_db(db)
    os.chown(db, NOBODY, NOBODY)
    text = refused(db, r"shared: state folder is writable by group or others \(mode 1777\)")
    assert "--state" in text


def test_planted_database_in_own_folder_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state" / "state.db"
    db.parent.mkdir(mode=0o700)
    plant_db(db)
    os.chown(db, NOBODY, NOBODY)
    refused(db, rf"state\.db: state database is owned by uid {NOBODY}, not by this user")


def test_group_writable_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    SqliteStore(db).close()
    db.chmod(0o664)
    refused(db, r"state\.db: state database is writable by group or others \(mode 0664\)")


def test_dangling_link_is_not_followed(tmp_path: Path) -> None:
    """Root must not create the database where a planted link points."""
    victim = tmp_path / "victim" / "owned-by-root.conf"
    victim.parent.mkdir()
    db = tmp_path / "state" / "state.db"
    db.parent.mkdir(mode=0o700)
    db.symlink_to(victim)
    refused(db, r"state\.db: state database is a symbolic link")
    assert not victim.exists()


def test_link_to_a_database_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    SqliteStore(real).close()
    db = tmp_path / "state" / "state.db"
    db.parent.mkdir(mode=0o700)
    db.symlink_to(real)
    refused(db, r"state\.db: state database is a symbolic link")


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_planted_companion_files_are_refused(tmp_path: Path, suffix: str) -> None:
    db = tmp_path / "state" / "state.db"
    SqliteStore(db).close()
    companion = db.with_name(db.name + suffix)
    companion.unlink(missing_ok=True)
    companion.symlink_to(tmp_path / "elsewhere")
    refused(db, rf"state\.db{suffix}: state file is a symbolic link")
    assert not (tmp_path / "elsewhere").exists()
    companion.unlink()
    companion.write_bytes(b"")
    os.chown(companion, NOBODY, NOBODY)
    refused(db, rf"state\.db{suffix}: state file is owned by uid {NOBODY}")


def test_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    refused(folder / "state.db", rf"svc: state folder is owned by uid {NOBODY}")
    assert not (folder / "state.db").exists()


def test_folder_above_writable_by_others_is_refused(tmp_path: Path) -> None:
    """Whoever can write a folder on the way can swap the state folder for their own
    between our check and SQLite's open (SQLite opens by name)."""
    above = tmp_path / "open"
    above.mkdir()
    above.chmod(0o777)
    db = above / ".orchestrator" / "state.db"
    refused(db, r"open \(on the way to .*\): writable by group or others \(mode 0777\)")
    above.chmod(0o1777)  # sticky: nobody else can rename our folder in it
    SqliteStore(db).close()
    assert db.is_file()


def test_link_on_the_way_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    SqliteStore(link / "state.db").close()  # our own link is followed
    assert (real / "state.db").is_file()
    os.lchown(link, NOBODY, NOBODY)
    refused(link / "state.db", rf"link \(on the way to .*\): owned by uid {NOBODY}")


def test_root_owned_state_is_trusted_by_another_user(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can write anything anyway: a state root created is not refused as "another
    user's" (whether this user can then write it is the file system's answer)."""
    db = tmp_path / "state" / "state.db"
    SqliteStore(db).close()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    SqliteStore(db).close()
    os.chown(db, 1001, 1001)
    refused(db, r"owned by uid 1001, not by this user \(uid 1000\) or root")


def test_new_database_is_private(tmp_path: Path) -> None:
    db = tmp_path / "state" / "state.db"
    s = SqliteStore(db)
    until = datetime.now(UTC) + timedelta(hours=1)
    assert s.acquire_lease("k", "me", until)
    s.close()
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        p = db.with_name(name)
        if p.exists():
            assert p.stat().st_mode & 0o077 == 0, name
    assert db.parent.stat().st_mode & 0o777 == 0o700


def test_cli_gives_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    plant_db(shared / "state.db")
    (tmp_path / "policies").mkdir()
    (tmp_path / "orchestrator.yml").write_text(
        f"policies: policies/\nstate: sqlite:///{shared}/state.db\n")
    monkeypatch.chdir(tmp_path)
    code = main(["log"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "state folder is writable by group or others" in err


def test_no_folder_created_through_another_users_link(tmp_path: Path) -> None:
    """A missing state folder is created only where nobody else can lead us."""
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "theirs"
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)
    refused(link / "new" / "state.db", rf"theirs \(on the way to .*\): owned by uid {NOBODY}")
    assert not (target / "new").exists()
