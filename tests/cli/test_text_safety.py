"""Text output is safe on a terminal and holds no password: control characters from hosts,
policies and the environment are escaped; URL passwords are hidden; the lab names its extra."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.audit.result import AuditRun, CheckResult, HostAudit
from orchestrator.cli.main import main
from orchestrator.redact import redact
from orchestrator.reporting.audit_text import audit_text
from orchestrator.textsafe import clean, clean_block, json_text

REPO = Path(__file__).resolve().parents[2]
UNSAFE = ["\x00", "\x07", "\x08", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\u061c",
          "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
          "\u2067", "\u2068", "\u2069", "\u2028", "\u2029"]


@pytest.mark.parametrize("ch", UNSAFE)
def test_clean_escapes_every_unsafe_character(ch: str) -> None:
    out = clean(f"a{ch}b")
    assert ch not in out and out.startswith("a\\") and out.endswith("b")
    assert out.isprintable()


def test_clean_forms_and_what_it_keeps() -> None:
    assert clean("\x1b[31mred\n\t\r") == "\\x1b[31mred\\n\\t\\r"
    assert clean("x\u202ey\x9bz\x7f") == "x\\u202ey\\x9bz\\x7f"
    kept = "Grüße 東京 ✓ C:\\path 😀 a\u200db"  # letters, emoji, joiner, backslash
    assert clean(kept) == kept
    assert clean(42) == "42" and clean(None) == "None"
    assert clean_block("one\x1b\ntwo\u202e") == "one\\x1b\ntwo\\u202e"


def test_json_text_keeps_the_value() -> None:
    value = {"v": "a\x7fb\x85c\u202ed\u2028e\x1bf", "k\u2066": ["\x9b"]}
    text = json_text(json.dumps(value, ensure_ascii=False))
    assert all(ch not in text for ch in UNSAFE)
    assert json.loads(text) == value
    assert json_text('"\\\\\u202e"') == '"\\\\\\u202e"'
    assert json.loads(json_text(json.dumps("\\\u202e", ensure_ascii=False))) == "\\\u202e"


@pytest.mark.parametrize(("text", "shown"), [
    ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
    ("error at postgresql://u:s3cret@h:5432/db: refused", "postgresql://u:***@h:5432/db:"),
    ("'postgres://u:p@ss/w:rd@h/db'", "'postgres://u:***@h/db'"),
    ("mysql://:s3cret@h", "mysql://:***@h"),
    ("postgresql://h/db?user=u&password=s3cret&sslmode=require", "&password=***&sslmode"),
    ("host=h sslpassword=s3cret dbname=x", "sslpassword=*** dbname=x"),
    ("PASSWORD=s3cret", "PASSWORD=***"),
])
def test_redact_hides_passwords(text: str, shown: str) -> None:
    out = redact(text)
    assert "s3cret" not in out and "ss/w:rd" not in out
    assert shown in out


@pytest.mark.parametrize(("text", "shown"), [
    # libpq keyword/value strings: a quoted value runs to its closing quote, spaces and all
    ("host=db password='hunter 2' dbname=x", "host=db password=*** dbname=x"),
    ("host=db password = 'hunter 2'", "host=db password = ***"),
    ("password='hun\\'ter 2' port=5", "password=*** port=5"),
    ('password="hunter 2" port=5', "password=*** port=5"),
    ("x: password='hunter 2", "x: password=***"),  # no closing quote: to the end
    ("x: password='hunter 2\\", "x: password=***"),  # nor after a last backslash
    ("(password='hunter 2')", "(password=***)"),
    ("host=db password=hunter\\ 2 dbname=x", "host=db password=*** dbname=x"),
    ("sqlite:////tmp/host=db password='hunter 2': cannot open",
     "sqlite:////tmp/host=db password=***: cannot open"),
    # a password with a space in the user information
    ("postgresql://u:hunter 2@h/db: refused", "postgresql://u:***@h/db: refused"),
    ("'postgresql://u:hunter 2@h/db'", "'postgresql://u:***@h/db'"),
    # query strings: quoted values, and the ':' that ends a message is not the password's
    ("postgresql://h/db?password='hunter 2'&sslmode=require",
     "postgresql://h/db?password=***&sslmode=require"),
    ("error: postgresql://h/db?password=hunter%202: refused",
     "error: postgresql://h/db?password=***: refused"),
])
def test_redact_hides_quoted_and_spaced_passwords(text: str, shown: str) -> None:
    out = redact(text)
    assert "hunter" not in out and "ter 2" not in out
    assert out == shown


def test_state_in_libpq_form_is_never_printed(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for state in ("host=db password='hunter 2'", "/nonexistent/host=db password='hunter 2'",
                  "postgresql://u:hunter 2@h/db"):
        code = main(["--state", state, "log", "verify"])
        out, err = capsys.readouterr()
        assert code == 1 and "***" in err
        assert "hunter" not in out + err


@pytest.mark.parametrize("text", ["sqlite:////srv/state.db", "postgresql://u@h/db",
                                  "see https://example.org/a:b and x=y",
                                  "window patch@2026-01-01T00:00:00+01:00"])
def test_redact_keeps_what_holds_no_password(text: str) -> None:
    assert redact(text) == text


def test_open_store_redacts_its_own_message() -> None:
    from orchestrator.changelog.open import open_store
    from orchestrator.errors import StateError

    for url in ("postgresql://u:s3cret@h/db", "oracle://u:s3cret@h/db"):
        with pytest.raises(StateError) as info:
            open_store(url)
        assert "s3cret" not in str(info.value) and "u:***@h/db" in str(info.value)


def test_audit_text_escapes_host_values() -> None:
    run = AuditRun("r-1", [HostAudit(
        host="web-01", groups=("web",), platform="linux", status="drift", checks=(
            CheckResult("package.version:openssl", "drift", "3.0.13",
                        "3.0.13\n    pass   forged: expected x, actual x\x1b[2J"),
            CheckResult("file.mode:/etc/x", "drift", "0644", {"mode": "\u202e0644"}),
        )), HostAudit(host="web-02", groups=("web",), platform="linux", status="unreachable",
                      error="banner \x1b]0;owned\x07")])
    text = audit_text(run)
    assert all(ch not in text for ch in UNSAFE if ch != "\n")
    lines = text.splitlines()
    assert len(lines) == 6  # header, 2 hosts, 2 findings, summary: nothing forged
    assert "actual 3.0.13\\n    pass   forged" in lines[2]
    assert "\\u202e0644" in text and "banner \\x1b]0;owned\\x07" in lines[4]


def test_windows_text_escapes_policy_text(tmp_path: Path, monkeypatch, capsys) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    path = tmp_path / "policies" / "windows" / "freezes.yml"
    path.write_text(path.read_text().replace(
        "reason: Year-end change freeze",
        'reason: "Year-end\\e[2J\\nFREEZES\\u202e"'))
    monkeypatch.chdir(tmp_path)
    code = main(["--policies", "policies", "windows", "list"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert out.count("FREEZES") == 2 and "Year-end\\x1b[2J\\nFREEZES\\u202e" in out
    assert sum(1 for line in out.splitlines() if line == "FREEZES") == 1


def test_lab_names_its_extra_before_anything_starts(tmp_path: Path, monkeypatch,
                                                    capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def no_sushy(name: str, *args, **kwargs):
        return None if name == "sushy_tools" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_sushy)
    monkeypatch.chdir(tmp_path)
    code = main(["lab", "up", "--hosts", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "needs the 'lab' extra (sushy_tools not installed)" in err
    assert "pip install 'orchestrator[lab]'" in err
    assert not (tmp_path / ".orchestrator").exists()  # nothing was started or created


def test_lab_extra_is_declared_and_tests_include_it() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lab = {req.split(">")[0].split("[")[0].lower() for req in extras["lab"]}
    assert {"sushy-tools", "flask"} <= lab
    assert "orchestrator[lab]" in extras["test"]
    core = {req.split(">")[0].split("[")[0].lower() for req in project["dependencies"]}
    assert not core & {"sushy-tools", "flask"}
