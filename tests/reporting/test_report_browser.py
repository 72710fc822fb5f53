"""The HTML report in a real headless browser (Debian's chromium, tests/reporting/browser.py):
it renders offline, its charts are drawn, nothing errs, and it prints."""

from __future__ import annotations

import re
import sqlite3
import struct
from pathlib import Path

import pytest
from browser import launch
from reportdata import write_estate

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main

HOSTILE = "<script>alert(1)</script>web-2"
CHARTS = ("Patch compliance", "Hosts drifting", "Mean days to install", "Window runs",
          "Firmware")


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


def _report(tmp_path: Path, *, broken: bool = False) -> Path:
    state = tmp_path / ".orchestrator"
    state.mkdir(mode=0o700)
    store = SqliteStore(state / "state.db")
    write_estate(store, hostile=HOSTILE)
    store.close()
    if broken:
        conn = sqlite3.connect(state / "state.db")
        conn.execute("UPDATE records SET host = 'db-9' WHERE seq = 5")
        conn.commit()
        conn.close()
    out = tmp_path / "report.html"
    code = main(["--state", f"sqlite:///{state / 'state.db'}", "--policies",
                 str(tmp_path / "none"), "report", "--from", "2026-09-01", "--until",
                 "2026-10-31", "--format", "html", "--output", str(out)])
    assert code == 0
    return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_renders_with_charts_and_no_errors(browser, tmp_path):
    html = _report(tmp_path)
    shot = tmp_path / "report.png"
    page = browser.render(html, shot)
    assert page.problems() == []  # no console error, exception or request leaving the file
    assert page.title.startswith("Compliance report 2026-09-01 to 2026-10-31")
    assert page.text.lstrip().startswith("Change log intact through record")
    charts = [s for s in page.svgs if s.width > 200 and s.height > 100]
    assert len(charts) == len(CHARTS), page.svgs
    for svg in charts:
        assert svg.elements > 10 and svg.drawn > 10, svg
    for name in CHARTS:
        assert name in page.text
    assert HOSTILE in page.text  # shown as text, never run: no exception, no alert
    width, height = _png_size(shot)
    assert width >= 1200 and height > 2000


def test_broken_chain_is_the_first_thing_seen(browser, tmp_path):
    page = browser.render(_report(tmp_path, broken=True), tmp_path / "broken.png")
    assert page.problems() == []
    assert page.text.lstrip().startswith("WARNING: the change log is BROKEN at record 5")


def test_report_prints(browser, tmp_path):
    pdf = tmp_path / "report.pdf"
    page = browser.print_pdf(_report(tmp_path), pdf)
    assert page.problems() == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    # one page per section at least (print CSS breaks before each): 2+ pages
    assert len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data)) >= 3
