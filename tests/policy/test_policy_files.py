"""Which files a policy folder holds: symbolic links are followed (each real file read once,
loops end), and anything that could leave a policy unread is an error, never a silent skip."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy import files
from orchestrator.policy.loader import load_policies
from orchestrator.windows.check import check_group

GOLDEN = Path(__file__).parent / "golden"

WINDOW = """apiVersion: orchestrator/v1
kind: Window
metadata: {name: nightly}
spec:
  schedule: {cron: "0 1 * * *"}
  timezone: UTC
  duration: 2h
  cutoff: 30m
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {name: web}
spec:
  hosts: {patterns: ["web*"]}
  windows: [nightly]
"""
FREEZE = """apiVersion: orchestrator/v1
kind: Freeze
metadata: {name: year-end}
spec:
  from: "2026-12-20"
  until: "2027-01-05"
  timezone: UTC
  reason: year-end change freeze
"""
IN_FREEZE = datetime(2026, 12, 24, 1, 30, tzinfo=UTC)  # inside the nightly window, frozen
BEFORE_FREEZE = datetime(2026, 12, 10, 1, 30, tzinfo=UTC)


def problems(root: Path) -> list[str]:
    try:
        load_policies(root)
    except PolicyError as exc:
        return [p.replace(f"{root}/", "") for p in exc.problems]
    return []


def test_golden_symlinked_folder_freeze_applies() -> None:
    """The freeze lives in a folder reached through a link (and again through a link to its
    file, and through a link back to the folder itself): read once, and it closes the window."""
    case = GOLDEN / "symlinked-folder"
    assert (case / "freezes").is_symlink() and (case / "same-freeze.yml").is_symlink()
    ps = load_policies(case)
    assert list(ps.freezes) == ["year-end"]
    assert ps.freezes["year-end"].meta.source.path == case / "freezes" / "year-end.yml"
    frozen = check_group(ps, "web", IN_FREEZE)
    assert not frozen.open
    assert "frozen by freeze year-end" in frozen.reason
    assert check_group(ps, "web", BEFORE_FREEZE).open


def test_policy_folder_that_is_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "groups.yml").write_text(WINDOW)
    (real / "freeze.yml").write_text(FREEZE)
    link = tmp_path / "policies"
    link.symlink_to("real")
    ps = load_policies(link)
    assert list(ps.freezes) == ["year-end"]
    assert not check_group(ps, "web", IN_FREEZE).open


def test_link_to_an_ancestor_ends_and_each_file_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    (root / "sub").mkdir(parents=True)
    (root / "groups.yml").write_text(WINDOW)
    (root / "sub" / "freeze.yml").write_text(FREEZE)
    (root / "sub" / "back").symlink_to("..")  # a loop through the root
    (root / "sub" / "up").symlink_to("../..")  # the folder above the root, and the root again
    (root / "twice.yml").symlink_to("sub/freeze.yml")
    found = files.find_policy_files(root)
    assert found.problems == []
    assert found.files == [root / "groups.yml", root / "sub" / "freeze.yml"]
    assert list(load_policies(root).freezes) == ["year-end"]


def test_dangling_links_are_errors(tmp_path: Path) -> None:
    (tmp_path / "groups.yml").write_text(WINDOW)
    (tmp_path / "freeze.yml").symlink_to("gone/freeze.yml")
    (tmp_path / "freezes").symlink_to("/nonexistent/freezes")
    assert problems(tmp_path) == [
        "freeze.yml: broken symbolic link (to gone/freeze.yml); restore its target or "
        "remove the link",
        "freezes: broken symbolic link (to /nonexistent/freezes); restore its target or "
        "remove the link"]


def test_dangling_root_link(tmp_path: Path) -> None:
    (tmp_path / "policies").symlink_to("nowhere")
    with pytest.raises(PolicyError) as exc:
        load_policies(tmp_path / "policies")
    assert exc.value.problems == [f"{tmp_path}/policies: broken symbolic link (to nowhere); "
                                  "restore its target or remove the link"]


def test_hidden_entries_stay_skipped(tmp_path: Path) -> None:
    (tmp_path / "groups.yml").write_text(WINDOW)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "bad.yml").write_text("{{{")
    (tmp_path / ".#groups.yml").symlink_to("root@host.1234:1700000000")  # an editor lock
    (tmp_path / ".hidden.yml").write_text("{{{")
    assert problems(tmp_path) == []


def test_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "groups.yml").write_text(WINDOW)
    os.mkfifo(tmp_path / "pipe.yml")
    (tmp_path / "zero.yml").symlink_to("/dev/zero")
    assert problems(tmp_path) == [
        "pipe.yml: not a regular file; policy files must be plain files (or links to them)",
        "zero.yml: not a regular file; policy files must be plain files (or links to them)"]


def test_unreadable_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads anything, so permission errors are simulated where the files are opened."""
    (tmp_path / "groups.yml").write_text(WINDOW)
    (tmp_path / "secret.yml").write_text(FREEZE)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "freeze.yml").write_text(FREEZE)
    real_open, real_scandir = open, os.scandir

    def fake_open(path, *args, **kwargs):
        if Path(path).name == "secret.yml":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    def fake_scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(files, "open", fake_open, raising=False)
    monkeypatch.setattr(files.os, "scandir", fake_scandir)
    assert problems(tmp_path) == [
        "locked: cannot list the folder: Permission denied; make it readable by this user or "
        "move it out of the policy folder",
        "secret.yml:1:1: cannot read: Permission denied; make it readable by this user or "
        "remove it"]


def test_too_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1024 * 1024)
    (tmp_path / "groups.yml").write_text(WINDOW)
    (tmp_path / "big.yml").write_text("# " + "x" * (1024 * 1024) + "\n")
    assert problems(tmp_path) == ["big.yml:1:1: larger than 1 MiB; split it into several files"]


def test_non_utf8_names_the_place(tmp_path: Path) -> None:
    text = WINDOW.encode().replace(b"nightly}", b"nightly}\n#\xc3\xa9\xff", 1)
    (tmp_path / "groups.yml").write_bytes(text)
    assert problems(tmp_path) == ["groups.yml:4:3: not UTF-8 text (byte 0xff); save the file "
                                  "as UTF-8"]


def test_deeply_nested_folders_are_walked_in_order(tmp_path: Path) -> None:
    """1,100 nested folders (deeper than Python's recursion limit): every file is found, in
    the order of a depth-first walk of sorted names."""
    root = tmp_path / "policies"
    (root / "a").mkdir(parents=True)
    folders = [root / "a"]
    try:
        for _ in range(1100):  # mkdir(parents=True) would recurse too
            folders.append(folders[-1] / "d")
            folders[-1].mkdir()
        deep = folders[-1]
        (deep / "freeze.yml").write_text(FREEZE)
        (deep / "back").symlink_to(root)  # a loop from the bottom still ends
        (root / "a" / "m.yml").write_text("")
        (root / "b.yml").write_text(WINDOW)
        found = files.find_policy_files(root)
        assert found.problems == []
        assert found.files == [deep / "freeze.yml", root / "a" / "m.yml", root / "b.yml"]
        ps = load_policies(root)
        assert list(ps.freezes) == ["year-end"]
        assert not check_group(ps, "web", IN_FREEZE).open
    finally:
        # shutil.rmtree (pytest's clean-up of old tmp folders) recurses: remove it here
        for name in ("freeze.yml", "back"):
            (folders[-1] / name).unlink(missing_ok=True)
        for folder in reversed(folders[1:]):
            folder.rmdir()
