"""The known_hosts index: the same answers as reading every line, each file parsed once."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.transports import knownhosts


@pytest.fixture(autouse=True)
def _fresh_indexes():
    knownhosts.forget()
    yield
    knownhosts.forget()


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def scan(files: list[str], name: str) -> list[knownhosts.KnownKey]:
    """The reference: every line of every file, matched in full (the pre-index code)."""
    found = []
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for n, raw in enumerate(text.splitlines(), 1):
            parts = raw.strip().split()
            if not parts or parts[0].startswith("#"):
                continue
            revoked = parts[0] == "@revoked"
            if parts[0].startswith("@"):
                if not revoked:
                    continue
                parts = parts[1:]
            if len(parts) < 3:
                continue
            fld = parts[0]
            if fld.startswith("|"):
                try:
                    _, one, s, h = fld.split("|")
                    ok = one == "1" and hmac.compare_digest(
                        hmac.new(base64.b64decode(s), name.encode(), hashlib.sha1).digest(),
                        base64.b64decode(h))
                except ValueError:
                    ok = False
            else:
                ok = False
                for pat in fld.split(","):
                    neg = pat.startswith("!")
                    pat = pat[1:] if neg else pat
                    if pat == name or ("*" in pat or "?" in pat) and fnmatch.fnmatchcase(name,
                                                                                         pat):
                        if neg:
                            ok = False
                            break
                        ok = True
            if ok:
                found.append(knownhosts.KnownKey(f, n, parts[1], parts[2], revoked))
    return found


NAMES = ["a.example", "b.example", "[b.example]:2222", "10.0.0.1", "x.lab", "bad.lab", "c"]
FIELDS = st.one_of(
    st.lists(st.sampled_from(NAMES + ["*.lab", "!bad.lab", "?", "!*", "[b.example]:*", ""]),
             min_size=1, max_size=4).map(",".join),
    st.sampled_from(NAMES).map(hashed),
    st.tuples(st.sampled_from(NAMES), st.binary(min_size=1, max_size=24)).map(
        lambda t: hashed(t[0], t[1])),
    st.sampled_from(["|1|bad|", "|2|AAAA|BBBB", "|1|!!|??", "|1|a|b|c"]),
)
LINES = st.one_of(
    st.tuples(st.sampled_from(["", "@revoked ", "@cert-authority ", "@other "]), FIELDS,
              st.sampled_from(["ssh-ed25519", "ssh-rsa"]), st.sampled_from(["K1", "K2", "K3"]))
    .map(lambda t: f"{t[0]}{t[1]} {t[2]} {t[3]}"),
    st.sampled_from(["", "# comment a.example ssh-ed25519 K1", "garbage", "a.example ssh-rsa",
                     "  a.example   ssh-ed25519   K1  "]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, max_size=25), st.lists(LINES, max_size=5))
@example(["bad.lab,!bad.lab ssh-ed25519 K1", "!c,c ssh-rsa K2", "c,c ssh-rsa K3",
          "@revoked x.lab,!x.lab ssh-ed25519 K1", "x.lab ssh-ed25519 K1"], [])
def test_index_answers_like_a_full_scan(tmp_path_factory, lines, more):
    d = tmp_path_factory.mktemp("kh")
    one, two = d / "one", d / "two"
    one.write_text("\n".join(lines) + "\n")
    two.write_text("\r\n".join(more))
    files = [str(one), str(two), str(d / "missing")]
    knownhosts.forget()
    for name in NAMES + ["nowhere"]:
        want = scan(files, name)
        assert knownhosts.lookup(files, name) == want
        assert knownhosts.lookup(files, name) == want  # cached answer, same
        for keytype, key in (("ssh-ed25519", "K1"), ("ssh-rsa", "K2"), ("ssh-ed25519", "K9")):
            v = knownhosts.verify(files, name, keytype, key)
            revoked = [k for k in want if k.revoked and k.key_b64 == key]
            listed = [k for k in want if not k.revoked]
            if revoked:
                assert (v.status, v.match) == ("revoked", revoked[0])
            elif any((k.keytype, k.key_b64) == (keytype, key) for k in listed):
                assert v.status == "known"
            elif listed:
                assert v.status == "changed"
            else:
                assert v.status == "unknown"


def test_plain_hashed_and_marker_lines(tmp_path):
    f = tmp_path / "kh"
    f.write_text(
        "a.example,10.0.0.1 ssh-ed25519 AAAA1\n"
        f"{hashed('[b.example]:2222')} ssh-rsa BBBB\n"
        f"{hashed('c.example', b'another-salt')} ssh-ed25519 CCCC\n"
        "@revoked * ssh-ed25519 EVIL\n"
        "@cert-authority *.example ssh-ed25519 CA\n"
    )
    files = [str(f)]
    assert [k.line for k in knownhosts.lookup(files, "10.0.0.1")] == [1, 4]
    assert knownhosts.verify(files, "[b.example]:2222", "ssh-rsa", "BBBB").status == "known"
    assert knownhosts.verify(files, "c.example", "ssh-ed25519", "CCCC").status == "known"
    assert knownhosts.verify(files, "b.example", "ssh-rsa", "BBBB").status == "unknown"
    assert knownhosts.verify(files, "c.example", "ssh-ed25519", "EVIL").status == "revoked"
    # @cert-authority is not a host key: a host signed by it is not "known" here
    assert knownhosts.verify(files, "d.example", "ssh-ed25519", "CA").status == "unknown"


def test_changed_key_refused_from_the_cached_index(tmp_path, monkeypatch):
    monkeypatch.setattr(knownhosts, "RACY_SECONDS", 0.0)
    f = tmp_path / "kh"
    f.write_text(f"web ssh-ed25519 GOOD\n{hashed('db')} ssh-ed25519 DBKEY\n")
    files = [str(f)]
    assert knownhosts.verify(files, "web", "ssh-ed25519", "GOOD").status == "known"
    for _ in range(2):  # the second answer comes from the per-name cache
        v = knownhosts.verify(files, "web", "ssh-ed25519", "EVIL")
        assert (v.status, v.match.where) == ("changed", f"{f}:1")
        v = knownhosts.verify(files, "db", "ssh-ed25519", "EVIL")
        assert (v.status, v.match.line) == ("changed", 2)
        assert knownhosts.known_types(files, "db") == {"ssh-ed25519"}


def test_each_file_is_parsed_once_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(knownhosts, "RACY_SECONDS", 0.0)
    parses: list[str] = []
    real = knownhosts._parse
    monkeypatch.setattr(knownhosts, "_parse",
                        lambda file, *a: parses.append(file) or real(file, *a))
    f = tmp_path / "kh"
    f.write_text("web ssh-ed25519 OLD1\n")
    files = [str(f)]
    for _ in range(5):
        knownhosts.known_types(files, "web")
        knownhosts.verify(files, "web", "ssh-ed25519", "OLD1")
        knownhosts.verify(files, "other", "ssh-ed25519", "OLD1")
    assert parses == [str(f)]
    before = f.stat().st_mtime_ns
    f.write_text("web ssh-ed25519 NEW2\n")  # same size and inode: the times tell
    os.utime(f, ns=(before + 10**9, before + 10**9))
    assert knownhosts.verify(files, "web", "ssh-ed25519", "OLD1").status == "changed"
    assert parses == [str(f)] * 2
    os.replace(tmp_path / "kh", tmp_path / "gone")
    assert knownhosts.verify(files, "web", "ssh-ed25519", "NEW2").status == "unknown"


def test_a_recently_written_file_is_read_again_at_each_lookup(tmp_path, monkeypatch):
    """Timestamps are coarser than writes: a file written within RACY_SECONDS of being indexed
    could change again with the same size and times, so its index is not trusted."""
    parses: list[str] = []
    real = knownhosts._parse
    monkeypatch.setattr(knownhosts, "_parse",
                        lambda file, *a: parses.append(file) or real(file, *a))
    monkeypatch.setattr(knownhosts, "_stamp", lambda st: (0,))  # stat can no longer tell
    f = tmp_path / "kh"
    f.write_text("web ssh-ed25519 OLD1\n")
    assert knownhosts.verify([str(f)], "web", "ssh-ed25519", "OLD1").status == "known"
    f.write_text("web ssh-ed25519 NEW2\n")
    assert knownhosts.verify([str(f)], "web", "ssh-ed25519", "OLD1").status == "changed"
    assert len(parses) == 2


def test_append_is_seen_by_the_next_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(knownhosts, "RACY_SECONDS", 0.0)
    f = tmp_path / "kh"
    f.write_text("web ssh-ed25519 K1\n")
    assert knownhosts.verify([str(f)], "new", "ssh-ed25519", "K2").status == "unknown"
    assert knownhosts.append(str(f), "new", "ssh-ed25519", "K2") == 2
    assert knownhosts.verify([str(f)], "new", "ssh-ed25519", "K2").status == "known"
    assert knownhosts.verify([str(f)], "new", "ssh-ed25519", "K3").status == "changed"
