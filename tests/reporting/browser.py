"""Open an HTML file in Debian's headless Chromium and report what a person (and the console) saw.

    rendered = render(Path("report.html"), tmp_path / "shot.png")
    assert not rendered.console_errors and not rendered.exceptions and not rendered.failed_requests
    assert all(svg.width > 0 and svg.drawn > 0 for svg in rendered.svgs)

The browser is driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`,
fds 3 and 4), not on a TCP port: no Python package is needed, no port has to be found, no other
local user can attach to a browser that runs as root without its sandbox, and the browser exits by
itself when this process dies (its end of the pipe closes). It runs in its own process group with
a fresh temporary profile and HOME, which are removed afterwards; the group is always killed.

Offline by construction: every request other than the file itself (and data:/blob: URLs) is
failed by the harness before it leaves the browser (Fetch interception) and reported in
`failed_requests`; name resolution is disabled and the browser's own services are switched off.
A report must be one self-contained file, so a reported request is a defect, not noise.

Tests skip when Chromium is missing, unless ORCHESTRATOR_LAB_REQUIRED=1 (as `make test` sets):
then they fail. `launch()` gives one browser for several renders (a module-scoped fixture);
`render()` and `print_pdf()` start and stop one of their own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Debian's launcher script (/usr/bin/chromium) sources /etc/chromium.d, which exports Google API
# keys, loads extensions and runs a /dev/shm check; the binary behind it is started directly.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
DRAWING = "path, rect, circle, ellipse, line, polyline, polygon, text"
MAX_SCREENSHOT_HEIGHT = 16384  # CSS pixels; a taller page is cut there, not rendered to gigabytes

FLAGS = (
    "--headless=new",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--mute-audio",
    "--hide-scrollbars",
    "--password-store=basic",
    "--use-mock-keychain",
    "--force-color-profile=srgb",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,"
    "InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater",
    # Belt and braces under the Fetch interception: no host name resolves, and anything that
    # still tries to connect is sent to a closed port on loopback.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "about:blank",
)

# Collects, in the page, what the tests assert on. Returns JSON-able data only.
PAGE_FACTS = """(() => {
  const svgs = Array.from(document.querySelectorAll('svg')).map((svg) => {
    const box = svg.getBoundingClientRect();
    const parts = Array.from(svg.querySelectorAll(DRAWING));
    const drawn = parts.filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 || r.height > 0;
    }).length;
    const title = svg.querySelector('title');
    const label = svg.id || svg.getAttribute('aria-label') || (title ? title.textContent : '');
    return {label: label || '', width: box.width, height: box.height,
            elements: parts.length, drawn: drawn};
  });
  return {title: document.title, text: document.body ? document.body.innerText : '',
          svgs: svgs, width: document.documentElement.scrollWidth,
          height: document.documentElement.scrollHeight};
})()""".replace("DRAWING", json.dumps(DRAWING))

# Let a script that draws after load (requestAnimationFrame, short timers, web fonts) finish; what
# the page logs or throws meanwhile reaches us before this promise's answer does.
SETTLE = """new Promise((done) => {
  const later = () => requestAnimationFrame(
    () => requestAnimationFrame(() => setTimeout(done, 50)));
  (document.fonts ? document.fonts.ready : Promise.resolve()).then(later, later);
})"""


class BrowserError(RuntimeError):
    """The browser could not be started, died, timed out or refused a command."""


@dataclass(frozen=True)
class ConsoleMessage:
    level: str  # "error", "warning", "info", "log", "debug", "verbose"
    text: str
    source: str = "console"  # "console" (console.*) or the browser's: "network", "javascript"...


@dataclass(frozen=True)
class FailedRequest:
    url: str
    reason: str


@dataclass(frozen=True)
class SvgBox:
    label: str  # its id, aria-label or <title>, whichever comes first ("" if none)
    width: float
    height: float
    elements: int  # descendant path/rect/circle/ellipse/line/polyline/polygon/text elements
    drawn: int  # of those, how many have a non-empty box on the page


@dataclass
class Rendered:
    title: str
    text: str  # document.body.innerText
    svgs: list[SvgBox]
    console: list[ConsoleMessage]
    exceptions: list[str]
    failed_requests: list[FailedRequest]
    screenshot: Path | None
    page_size: tuple[int, int]  # CSS pixels, the whole document
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def console_errors(self) -> list[ConsoleMessage]:
        return [m for m in self.console if m.level == "error"]

    def problems(self) -> list[str]:
        """Each console error, exception and failed request, a line each (for assert messages)."""
        return ([f"console {m.source}: {m.text}" for m in self.console_errors]
                + [f"exception: {e}" for e in self.exceptions]
                + [f"request {r.url}: {r.reason}" for r in self.failed_requests])


def living_members(group: int, marker: str | None = None) -> list[int]:
    """The processes of process group `group`, or with `marker` (our profile's path) on their
    command line, that are not zombies (read from /proc)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if fields[0] in (b"Z", b"X"):
                continue
            ours = int(fields[2]) == group
            if not ours and marker:
                with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                    ours = marker.encode() in cmdline.read()
        except (OSError, IndexError, ValueError):
            continue
        if ours:
            members.append(int(entry.name))
    return members


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def require_chromium() -> str:
    """The browser's path; skips the test without it, or fails under ORCHESTRATOR_LAB_REQUIRED=1."""
    import pytest

    path = chromium_path()
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium; `make test` does)"
        if os.environ.get("ORCHESTRATOR_LAB_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


class Browser:
    """One headless Chromium; each render gets its own browser context (no shared cache)."""

    def __init__(self, executable: str | None = None, timeout: float = 60) -> None:
        self.executable = executable or chromium_path()
        if self.executable is None:
            raise BrowserError("Chromium is not installed (apt-get install chromium)")
        self.timeout = timeout
        self.pid: int | None = None
        self._profile = tempfile.mkdtemp(prefix="orchestrator-chromium-")
        self._to_browser = self._from_browser = -1
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._blocked: list[FailedRequest] = []
        self._document = ""
        self._session: str | None = None
        self.log_path = Path(self._profile) / "chromium.log"
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # -- process --------------------------------------------------------------------------
    def _start(self) -> None:
        cmd_read, cmd_write = os.pipe()  # we write commands; the browser reads them on fd 3
        out_read, out_write = os.pipe()  # the browser writes replies on fd 4; we read them
        argv = [self.executable, *FLAGS[:-1], f"--user-data-dir={self._profile}/profile",
                FLAGS[-1]]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        home = Path(self._profile) / "home"
        home.mkdir()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC",
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
               "TMPDIR": self._profile}
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.log_path), os.O_WRONLY | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_DUP2, cmd_read, 3),
            (os.POSIX_SPAWN_DUP2, out_write, 4),
        ]
        try:
            # setsid: its own session and process group, so that killpg reaches every child
            # (renderer, GPU, zygote) and a terminal's Ctrl-C is ours to handle.
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            os.close(cmd_read)
            os.close(out_write)
        self._to_browser, self._from_browser = cmd_write, out_read
        os.set_blocking(self._from_browser, False)
        self.call("Browser.getVersion", deadline=time.monotonic() + min(self.timeout, 30))

    def close(self) -> None:
        """Stop the browser and all its processes, and remove its profile. Safe to call twice."""
        if self.pid is not None:
            pid, self.pid = self.pid, None
            with contextlib.suppress(BrowserError, OSError):
                self._send("Browser.close", {}, None)
            end = time.monotonic() + 2
            while time.monotonic() < end:
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                time.sleep(0.02)
            # The group outlives its leader when a child lingers: kill it in every case, and
            # wait (briefly) until none of it runs. Zombies left to init to reap do not count.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            # A helper that left the group (as Chromium's crash handler does, in its own
            # session) still names our unique profile directory on its command line.
            end = time.monotonic() + 3
            while (left := living_members(pid, self._profile)) and time.monotonic() < end:
                for stray in left:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(stray, signal.SIGKILL)
                time.sleep(0.02)
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_browser = self._from_browser = -1
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (" (chromium said: " + " | ".join(lines[-3:]) + ")") if lines else ""

    # -- DevTools protocol over the pipe (JSON messages ended by NUL) -----------------------
    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            _, ready, _ = select.select([], [self._to_browser], [], 5)
            if not ready:
                raise BrowserError(f"the browser does not take commands ({method})")
            data = data[os.write(self._to_browser, data):]
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("the browser exited" + self._log_tail())
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, deadline: float) -> dict[str, Any]:
        """Send one command and wait for its answer; events met meanwhile are kept."""
        wanted = self._send(method, params or {}, session)
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self._handle(message)

    # -- pages ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _page(self, html_path: Path, width: int, deadline: float) -> Iterator[tuple[str, str]]:
        """A fresh context and tab on `html_path`, loaded, with its events being collected."""
        path = Path(html_path).resolve()
        if not path.is_file():
            raise BrowserError(f"{html_path}: no such file")
        url = path.as_uri()
        self._events = []
        context = self.call("Target.createBrowserContext", {"disposeOnDetach": True},
                            deadline=deadline)["browserContextId"]
        try:
            target = self.call("Target.createTarget",
                               {"url": "about:blank", "browserContextId": context},
                               deadline=deadline)["targetId"]
            session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                deadline=deadline)["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                self.call(f"{domain}.enable", session=session, deadline=deadline)
            self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session=session,
                      deadline=deadline)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
                      session=session, deadline=deadline)
            self._blocked = []
            self._document = url
            self._session = session
            answer = self.call("Page.navigate", {"url": url}, session=session, deadline=deadline)
            if answer.get("errorText"):
                raise BrowserError(f"{html_path}: {answer['errorText']}")
            self._wait_for_load(session, deadline)
            self.call("Runtime.evaluate", {"expression": SETTLE, "awaitPromise": True},
                      session=session, deadline=deadline)
            yield session, url
        finally:
            self._session = None
            with contextlib.suppress(BrowserError, OSError):
                self.call("Target.disposeBrowserContext", {"browserContextId": context},
                          deadline=min(deadline, time.monotonic() + 5) + 1)

    def _wait_for_load(self, session: str, deadline: float) -> None:
        if any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session
               for e in self._events):
            return
        while True:
            message = self._receive(deadline)
            self._handle(message)
            if (message.get("method") == "Page.loadEventFired"
                    and message.get("sessionId") == session):
                return

    def _handle(self, message: dict[str, Any]) -> None:
        """Keep an event; answer a paused request: the document and data: go on, others fail."""
        if "method" not in message:
            return
        self._events.append(message)
        if self._session is None:
            return
        if (message["method"] in ("Inspector.targetCrashed", "Inspector.detached")
                and message.get("sessionId") == self._session) or (
                message["method"] == "Target.detachedFromTarget"
                and message["params"].get("sessionId") == self._session):
            self._session = None
            raise BrowserError("the page's renderer crashed or went away" + self._log_tail())
        if message["method"] != "Fetch.requestPaused" or message.get("sessionId") != self._session:
            return
        params = message["params"]
        request_url = params["request"]["url"]
        if request_url == self._document or request_url.split(":", 1)[0] in ("data", "blob"):
            self._send("Fetch.continueRequest", {"requestId": params["requestId"]},
                       self._session)
        else:
            self._blocked.append(FailedRequest(request_url, "blocked: not inside the file"))
            self._send("Fetch.failRequest", {"requestId": params["requestId"],
                                             "errorReason": "BlockedByClient"}, self._session)

    def _collect(self, session: str, url: str) -> tuple[list[ConsoleMessage], list[str],
                                                       list[FailedRequest]]:
        console: list[ConsoleMessage] = []
        exceptions: list[str] = []
        failed = list(self._blocked)
        requests: dict[str, str] = {}
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                level = {"warning": "warning", "error": "error", "assert": "error",
                         "debug": "debug", "info": "info"}.get(params["type"], "log")
                text = " ".join(_remote_text(arg) for arg in params.get("args", []))
                console.append(ConsoleMessage(level, text))
            elif method == "Log.entryAdded":
                entry = params["entry"]
                console.append(ConsoleMessage(entry["level"], entry.get("text", ""),
                                              entry.get("source", "other")))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                thrown = details.get("exception") or {}
                exceptions.append(thrown.get("description") or _remote_text(thrown)
                                  or details.get("text", ""))
            elif method == "Network.requestWillBeSent":
                requests[params["requestId"]] = params["request"]["url"]
            elif method == "Network.webSocketCreated":  # not seen by Fetch; the proxy stops it
                failed.append(FailedRequest(params["url"], "blocked: a WebSocket"))
            elif method == "Network.loadingFailed":
                request_url = requests.get(params["requestId"], "?")
                reason = params.get("blockedReason") or params.get("errorText", "failed")
                if not any(f.url == request_url for f in failed):
                    failed.append(FailedRequest(request_url, reason))
        return console, exceptions, failed

    def render(self, html_path: Path, screenshot: Path | None, *, width: int = 1280,
               timeout: float | None = None) -> Rendered:
        """Load the file, let it settle, and report what it showed and said."""
        started = time.monotonic()
        deadline = started + (timeout or self.timeout)
        with self._page(html_path, width, deadline) as (session, url):
            facts = self.call("Runtime.evaluate", {"expression": PAGE_FACTS,
                                                   "returnByValue": True},
                              session=session, deadline=deadline)["result"]["value"]
            page_size = (int(facts["width"]), int(facts["height"]))
            if screenshot is not None:
                height = max(1, min(page_size[1], MAX_SCREENSHOT_HEIGHT))
                shot = self.call("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": max(width, page_size[0]),
                             "height": height, "scale": 1}},
                    session=session, deadline=deadline)
                screenshot = Path(screenshot)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            console, exceptions, failed = self._collect(session, url)
        return Rendered(
            title=facts["title"], text=facts["text"],
            svgs=[SvgBox(s["label"], s["width"], s["height"], s["elements"], s["drawn"])
                  for s in facts["svgs"]],
            console=console, exceptions=exceptions, failed_requests=failed,
            screenshot=screenshot, page_size=page_size, seconds=time.monotonic() - started)

    def print_pdf(self, html_path: Path, pdf: Path, *, timeout: float | None = None) -> Rendered:
        """Print the file to PDF as a person would (A4, backgrounds on); also reports the page."""
        started = time.monotonic()
        deadline = started + (timeout or self.timeout)
        with self._page(html_path, 1280, deadline) as (session, url):
            printed = self.call("Page.printToPDF", {
                "printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69,
                "preferCSSPageSize": True}, session=session, deadline=deadline)
            pdf = Path(pdf)
            pdf.parent.mkdir(parents=True, exist_ok=True)
            pdf.write_bytes(base64.b64decode(printed["data"]))
            facts = self.call("Runtime.evaluate", {"expression": PAGE_FACTS,
                                                   "returnByValue": True},
                              session=session, deadline=deadline)["result"]["value"]
            console, exceptions, failed = self._collect(session, url)
        return Rendered(
            title=facts["title"], text=facts["text"],
            svgs=[SvgBox(s["label"], s["width"], s["height"], s["elements"], s["drawn"])
                  for s in facts["svgs"]],
            console=console, exceptions=exceptions, failed_requests=failed, screenshot=None,
            page_size=(int(facts["width"]), int(facts["height"])),
            seconds=time.monotonic() - started, extra={"pdf": pdf})


def _remote_text(value: dict[str, Any]) -> str:
    if "value" in value:
        return value["value"] if isinstance(value["value"], str) else json.dumps(value["value"])
    return value.get("description") or value.get("unserializableValue") or value.get("type", "")


@contextlib.contextmanager
def launch(timeout: float = 60) -> Iterator[Browser]:
    """One browser for several renders (skips or fails the test when Chromium is missing)."""
    browser = Browser(require_chromium(), timeout=timeout)
    try:
        yield browser
    finally:
        browser.close()


def render(html_path: Path, screenshot: Path, *, width: int = 1280,
           timeout: float = 60) -> Rendered:
    """Open `html_path` in a browser of its own, screenshot the whole page, report what it saw."""
    with launch(timeout) as browser:
        return browser.render(html_path, screenshot, width=width, timeout=timeout)


def print_pdf(html_path: Path, pdf: Path, *, timeout: float = 60) -> Rendered:
    """Print `html_path` to `pdf` in a browser of its own."""
    with launch(timeout) as browser:
        return browser.print_pdf(html_path, pdf, timeout=timeout)
