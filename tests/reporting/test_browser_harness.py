"""The headless-browser harness the report tests stand on (tests/reporting/browser.py).

Each test feeds it a small page whose faults are known and checks they are all seen: a harness
that missed a console error or an outside request would let a broken report pass.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import threading
import time
from pathlib import Path

import pytest
from browser import (
    Browser,
    BrowserError,
    launch,
    living_members,
    print_pdf,
    render,
    require_chromium,
)

CHART = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Patch compliance – March</title>
<style>body { font-family: sans-serif; margin: 0 } .tall { height: 2400px }</style></head>
<body>
<h1>Patch compliance</h1>
<svg id="compliance" width="400" height="220" viewBox="0 0 400 220" role="img">
  <title>Hosts with no overdue patch</title>
  <line x1="40" y1="200" x2="390" y2="200" stroke="#333"/>
  <line x1="40" y1="10" x2="40" y2="200" stroke="#333"/>
  <rect x="60" y="60" width="60" height="140" fill="steelblue"/>
  <rect x="160" y="100" width="60" height="100" fill="steelblue"/>
  <rect x="260" y="30" width="60" height="170" fill="steelblue"/>
  <path d="M90 60 L190 100 L290 30" fill="none" stroke="darkorange" stroke-width="2"/>
  <circle cx="290" cy="30" r="4" fill="darkorange"/>
  <text x="70" y="215" font-size="10">web</text>
  <text x="170" y="215" font-size="10">db</text>
  <text x="270" y="215" font-size="10">edge</text>
</svg>
<svg id="empty" width="120" height="40"></svg>
<svg id="hidden" style="display:none"><rect width="10" height="10"/></svg>
<p>92.5 % compliant</p>
<div class="tall"></div>
<p>appendix: records 1–40</p>
</body></html>
"""

FAULTY = """<!doctype html><html><head><title>faulty</title></head><body>
<p>before</p>
<script>
console.error("chart data missing:", 3); console.warn("careful"); console.log("ok");
</script>
<script>throw new TypeError("cannot read the series");</script>
<script>setTimeout(() => { throw new Error("late failure"); }, 0);</script>
<p>after</p>
</body></html>
"""

EXTERNAL = """<!doctype html><html><head><title>outside</title>
<link rel="stylesheet" href="https://cdn.example.invalid/style.css">
<script src="http://cdn.example.invalid/chart.js"></script>
</head><body>
<img src="http://images.example.invalid/logo.png" alt="logo">
<img src="sibling.png" alt="a file beside the report">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="inline, allowed">
<script>
fetch("https://api.example.invalid/figures").catch(() => {});
try { new WebSocket("ws://live.example.invalid/feed"); } catch (e) {}
</script>
<p>still renders</p>
</body></html>
"""


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chrome():
    with launch(timeout=30) as browser:
        yield browser


def test_chart_is_measured_and_the_whole_page_screenshot(chrome: Browser, tmp_path: Path):
    shot = tmp_path / "shots" / "chart.png"
    rendered = chrome.render(write(tmp_path, "chart.html", CHART), shot, width=1024)

    assert rendered.problems() == []
    assert rendered.console == []
    assert rendered.title == "Patch compliance – March"
    assert "92.5 % compliant" in rendered.text and "appendix: records 1–40" in rendered.text
    by_label = {svg.label: svg for svg in rendered.svgs}
    assert set(by_label) == {"compliance", "empty", "hidden"}
    chart = by_label["compliance"]
    assert (chart.width, chart.height) == (400, 220)
    assert (chart.elements, chart.drawn) == (10, 10)  # 2 lines, 3 rects, path, circle, 3 texts
    assert (by_label["empty"].width, by_label["empty"].elements) == (120, 0)
    hidden = by_label["hidden"]
    assert (hidden.width, hidden.height, hidden.elements, hidden.drawn) == (0, 0, 1, 0)

    width, height = png_size(shot)
    assert width == 1024 == rendered.page_size[0]
    assert height == rendered.page_size[1] > 2400  # the whole page, not the 800px viewport
    assert shot.stat().st_size > 5000


def test_console_errors_and_exceptions_are_reported(chrome: Browser, tmp_path: Path):
    rendered = chrome.render(write(tmp_path, "faulty.html", FAULTY), None)

    assert [(m.level, m.text) for m in rendered.console] == [
        ("error", "chart data missing: 3"), ("warning", "careful"), ("log", "ok")]
    assert [m.text for m in rendered.console_errors] == ["chart data missing: 3"]
    assert len(rendered.exceptions) == 2
    assert rendered.exceptions[0].startswith("TypeError: cannot read the series")
    assert rendered.exceptions[1].startswith("Error: late failure")
    assert rendered.failed_requests == []
    assert rendered.text == "before\n\nafter"
    assert len(rendered.problems()) == 3


def test_requests_outside_the_file_are_blocked_and_reported(chrome: Browser, tmp_path: Path):
    (tmp_path / "sibling.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # exists, still not allowed
    started = time.monotonic()
    rendered = chrome.render(write(tmp_path, "outside.html", EXTERNAL), tmp_path / "o.png")

    assert time.monotonic() - started < 10  # blocked at once, no network timeout waited for
    assert {r.url for r in rendered.failed_requests} == {
        "https://cdn.example.invalid/style.css",
        "http://cdn.example.invalid/chart.js",
        "http://images.example.invalid/logo.png",
        (tmp_path / "sibling.png").as_uri(),
        "https://api.example.invalid/figures",
        "ws://live.example.invalid/feed",
    }
    assert all(r.reason.startswith("blocked") for r in rendered.failed_requests)
    assert "still renders" in rendered.text
    assert rendered.console_errors  # Chromium also logs each failed load
    assert png_size(tmp_path / "o.png")[0] == 1280


def test_renders_are_independent(chrome: Browser, tmp_path: Path):
    """Nothing from one page's console or requests leaks into the next render's report."""
    chrome.render(write(tmp_path, "faulty.html", FAULTY), None)
    chrome.render(write(tmp_path, "outside.html", EXTERNAL), None)
    clean = chrome.render(write(tmp_path, "chart.html", CHART), None)
    assert clean.problems() == [] and clean.console == []


def test_a_chart_drawn_by_script_after_load_is_waited_for(chrome: Browser, tmp_path: Path):
    page = write(tmp_path, "late.html", """<!doctype html><body><svg id="late" width="200"
height="100"></svg><script>
addEventListener("load", () => requestAnimationFrame(() => requestAnimationFrame(() => {
  const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  for (const [k, v] of [["width", 50], ["height", 80], ["fill", "teal"]]) bar.setAttribute(k, v);
  document.getElementById("late").appendChild(bar);
  console.error("drawn late");
})));
</script></body>""")
    rendered = chrome.render(page, None)
    assert [(s.label, s.elements, s.drawn) for s in rendered.svgs] == [("late", 1, 1)]
    assert [m.text for m in rendered.console_errors] == ["drawn late"]


def test_missing_file_is_an_error(chrome: Browser, tmp_path: Path):
    with pytest.raises(BrowserError, match="no such file"):
        chrome.render(tmp_path / "absent.html", None)


def test_render_and_print_pdf_with_a_browser_of_their_own(tmp_path: Path):
    require_chromium()
    page = write(tmp_path, "chart.html", CHART)
    rendered = render(page, tmp_path / "own.png")
    assert rendered.svgs and png_size(tmp_path / "own.png") == rendered.page_size

    pdf = tmp_path / "out" / "chart.pdf"
    printed = print_pdf(page, pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data)) >= 2  # 2400px: 2+ pages
    assert printed.problems() == []


def test_a_hung_page_times_out_and_the_browser_is_killed(tmp_path: Path):
    browser = Browser(require_chromium(), timeout=30)
    group = browser.pid
    assert group is not None and len(living_members(group)) >= 3  # browser, zygote, renderer...
    try:
        started = time.monotonic()
        with pytest.raises(BrowserError, match="timed out"):
            browser.render(write(tmp_path, "hang.html", "<script>for(;;){}</script>"), None,
                           timeout=3)
        assert time.monotonic() - started < 6
    finally:
        browser.close()
    assert living_members(group, browser._profile) == []  # not one of its processes runs
    assert not Path(browser._profile).exists()


@pytest.mark.parametrize("required", ["", "1"])
def test_without_chromium_the_tests_skip_unless_required(monkeypatch, required: str):
    import browser

    monkeypatch.setattr(browser, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("ORCHESTRATOR_LAB_REQUIRED", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="apt-get install chromium"):
        require_chromium()


def test_a_browser_that_stops_answering_is_killed(tmp_path: Path):
    """close() does not rely on the browser's cooperation: a frozen browser is killed too."""
    browser = Browser(require_chromium(), timeout=30)
    group = browser.pid
    assert group is not None
    os.kill(group, signal.SIGSTOP)  # it can no longer read Browser.close nor exit
    closing = threading.Thread(target=browser.close, daemon=True)
    closing.start()
    closing.join(timeout=15)
    assert not closing.is_alive(), "close() hung on a frozen browser"
    assert living_members(group, browser._profile) == []


def test_a_crashed_renderer_fails_at_once(tmp_path: Path):
    browser = Browser(require_chromium(), timeout=30)

    def kill_renderers() -> None:
        time.sleep(1.5)
        for pid in living_members(browser.pid or -1):
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"--type=renderer" in cmdline.read():
                    os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_renderers, daemon=True)
    try:
        killer.start()
        started = time.monotonic()
        with pytest.raises(BrowserError, match="renderer crashed"):
            browser.render(write(tmp_path, "hang.html", "<script>for(;;){}</script>"), None)
        assert time.monotonic() - started < 10  # not the 30 s timeout
    finally:
        killer.join()
        browser.close()
