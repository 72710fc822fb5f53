"""The `fwupd` fact and its helpers against golden outputs.

tests/facts/golden/fwupd/<case>.txt is the fact's stdout and <case>.expected.json its rc,
stderr, `source` (recorded or written by hand), the parsed value or the one-line error, and
`matches`: policy `match` patterns with the DeviceIds they select. install/<case>.json holds
one `fwupdmgr install` run (stdout, stderr, rc) and the outcome parse_install must give.
test_fact_golden.py runs the same .txt cases through FactBatch; here the parser is called
directly and everything it returns is checked to be safe to print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.facts import FACTS, FactArgError, FactParseError, Output, to_jsonable
from orchestrator.facts.fwupd import (
    FWUPD_SH,
    FwupdDevices,
    install_argv,
    parse_fwupd,
    parse_install,
)
from orchestrator.textsafe import clean

GOLDEN = Path(__file__).parent / "golden" / "fwupd"
CASES = sorted(GOLDEN.glob("*.txt"))
INSTALL_CASES = sorted((GOLDEN / "install").glob("*.json"))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _safe(text: str) -> bool:
    return clean(text) == text and "\n" not in text


@pytest.mark.parametrize("txt", CASES, ids=lambda p: p.stem)
def test_fwupd_golden(txt: Path):
    expected = json.loads(txt.with_suffix(".expected.json").read_text())
    assert expected["source"].startswith(("recorded", "written by hand"))
    out = Output(txt.read_text(), expected.get("stderr", ""), expected.get("rc", 0))
    if "error" in expected:
        with pytest.raises(FactParseError) as info:
            parse_fwupd(out, ())
        assert expected["error"] in str(info.value)
        assert _safe(str(info.value)), str(info.value)
        return
    value = parse_fwupd(out, ())
    assert isinstance(value, FwupdDevices)
    assert to_jsonable(value) == expected["value"]
    assert all(_safe(s) for s in _strings(to_jsonable(value)))
    for pattern, ids in expected.get("matches", {}).items():
        assert [d.id for d in value.matching(pattern)] == ids, pattern


@pytest.mark.parametrize("case", INSTALL_CASES, ids=lambda p: p.stem)
def test_fwupd_install_golden(case: Path):
    data = json.loads(case.read_text())
    got = parse_install(data["stdout"], data["stderr"], data["rc"])
    assert {"status": got.status, "error": got.error, "code": got.code} == data["expected"]
    assert got.error is None or _safe(got.error)


def test_every_golden_file_is_a_case():
    assert CASES and INSTALL_CASES
    for txt in CASES:
        assert txt.with_suffix(".expected.json").exists(), txt
    assert {p.name for p in GOLDEN.iterdir() if p.is_file()} == {"README.md"} | {
        n for t in CASES for n in (t.name, t.with_suffix(".expected.json").name)
    }


def test_the_fact_is_registered_and_fixed():
    fact = FACTS["fwupd"]
    assert fact.shell == "sh"
    assert fact.command(()) == FWUPD_SH
    assert "fwupdmgr get-devices --json" in FWUPD_SH
    assert fact.check is not None
    with pytest.raises(FactArgError):
        fact.check(("; reboot",))


@pytest.mark.parametrize(
    "image, device",
    [
        ("/var/tmp/fw.cab", "08d460be0f1f9f128413f816022a6439e0078018; reboot"),
        ("/var/tmp/fw.cab", "08D460BE0F1F9F128413F816022A6439E0078018"),
        ("/var/tmp/fw.cab", "--allow-older"),
        ("fw.cab", "08d460be0f1f9f128413f816022a6439e0078018"),
        ("--force", "08d460be0f1f9f128413f816022a6439e0078018"),
        ("ftp://repo/fw.cab", "08d460be0f1f9f128413f816022a6439e0078018"),
        ("/var/tmp/fw cab", "08d460be0f1f9f128413f816022a6439e0078018"),
        ("http://repo/fw.cab\n", "08d460be0f1f9f128413f816022a6439e0078018"),
    ],
)
def test_install_argv_refuses(image: str, device: str):
    with pytest.raises(FactArgError):
        install_argv(image, device)


def test_install_argv():
    assert install_argv("http://repo.internal/fw/bios-2.19.1.cab",
                        "08d460be0f1f9f128413f816022a6439e0078018") == [
        "fwupdmgr", "install", "http://repo.internal/fw/bios-2.19.1.cab",
        "08d460be0f1f9f128413f816022a6439e0078018", "--json", "--assume-yes",
        "--no-reboot-check",
    ]
