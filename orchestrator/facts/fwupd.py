"""In-band firmware: `fwupd` (sh) lists a Linux host's devices with `fwupdmgr get-devices --json`,
plus the pure helpers a FirmwarePolicy with `method: fwupd` needs around it (matching a
component, the install command and reading its outcome).

The command is fixed (no argument reaches the shell). A host without fwupdmgr prints one marker
line instead; a host without any device (fwupdmgr says "No detected devices", exit 2) has an
empty device list, not an error; a daemon that cannot be reached (no system D-Bus, fwupd not
installed as a bus service, masked) makes fwupdmgr fail with its own message, which becomes
the fact's one-line error. fwupd >= 1.8 prints errors under --json as
{"Error": {"Domain", "Code", "Message"}} on stdout; older versions print the message on
stderr; both are read.

Everything a device says (names, versions, vendors, GUIDs, flags) comes from the host: strings
are neutralised with orchestrator.textsafe.clean (escape sequences, bidi marks and newlines
become visible escapes; lone surrogates become backslash escapes) and cut to 200 characters.
DeviceId must be what fwupd always prints, 40 lower-case hex digits (a SHA-1), and a GUID
must be a canonical GUID: anything else is not fwupd's output and fails the fact, so an id
that later reaches `fwupdmgr install` on a command line is known to be harmless.

Matching a policy component (`match`): case-insensitive fnmatch (`*`, `?`, `[...]`) of the
pattern against the device's DeviceId, its Name, each of its GUIDs and its Plugin; a device
matches when any of them does. `match: b585990a-003e-5270-89d5-3705a17f9a43` (one GUID),
`match: "Integrated Webcam*"` (a name), `match: uefi_capsule` (every device of a plugin).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.facts.base import Fact, FactArgError, FactParseError, Output, register
from orchestrator.textsafe import clean

MISSING = "@fwupdmgr-missing"
MAX_TEXT = 200
DEVICE_ID_RE = re.compile(r"^[0-9a-f]{40}$")
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# FwupdUpdateState (libfwupd/fwupd-enums.h); 0 (unknown) is not printed
UPDATE_STATES = {
    1: "pending",
    2: "success",
    3: "failed",
    4: "needs-reboot",
    5: "failed-transient",
}
# FwupdError codes (libfwupd/fwupd-error.h) the install outcome distinguishes
ERROR_VERSION_NEWER = 1  # the file is older than the installed version
ERROR_VERSION_SAME = 2  # the file's version is already installed
ERROR_NOTHING_TO_DO = 9  # get-devices: "No detected devices" (exit 2)
NO_DEVICES_MESSAGES = (
    "No detected devices",
    "No hardware detected with firmware update capability",
)
_DAEMON_DOWN = ("Failed to connect to daemon", "org.freedesktop.DBus.Error")


@dataclass(frozen=True)
class FwupdDevice:
    """One device as `fwupdmgr get-devices --json` lists it (all strings neutralised)."""

    id: str  # DeviceId: 40 hex digits
    name: str  # Name, or the DeviceId when the device has none
    version: str | None  # Version; None when fwupd cannot read it (e.g. a CPU)
    guids: tuple[str, ...]  # Guid, lower case
    plugin: str  # Plugin ("uefi_capsule", "nvme", "test", ...)
    vendor: str | None
    # Flags as fwupd names them. "needs-reboot": the device applies firmware only at a reboot
    # (UEFI capsules carry it before any update); "updatable-hidden": updatable, not now.
    flags: tuple[str, ...]
    updatable: bool  # "updatable" in flags (not "updatable-hidden": inhibited for now)
    parent_id: str | None = None  # ParentDeviceId (composite devices)
    version_format: str | None = None  # VersionFormat ("triplet", "quad", "plain", ...)
    problems: tuple[str, ...] = ()  # Problems (fwupd >= 1.8.1): why an update is inhibited
    update_state: str | None = None  # pending | success | failed | needs-reboot | ...
    update_error: str | None = None  # UpdateError: why the last update failed
    releases: tuple[str, ...] = ()  # versions the enabled remotes offer for this device

    @property
    def reboot_applies(self) -> bool:
        """New firmware takes effect only after a reboot (or a shutdown): read the version
        back after one."""
        return "needs-reboot" in self.flags or "needs-shutdown" in self.flags

    @property
    def update_pending(self) -> bool:
        """An update was written and waits for the reboot that applies it."""
        return self.update_state in ("pending", "needs-reboot")


@dataclass(frozen=True)
class FwupdDevices:
    devices: tuple[FwupdDevice, ...] = ()

    def matching(self, pattern: str) -> list[FwupdDevice]:
        return [d for d in self.devices if device_matches(pattern, d)]


def device_matches(pattern: str, device: FwupdDevice) -> bool:
    """The module docstring's rule: case-insensitive fnmatch against DeviceId, Name, any GUID
    or Plugin."""
    p = pattern.lower()
    return any(
        fnmatch.fnmatchcase(v.lower(), p)
        for v in (device.id, device.name, *device.guids, device.plugin)
        if v
    )


# -- the command ---------------------------------------------------------------------------
def _no_args(args: tuple[str, ...]) -> None:
    if args:
        raise FactArgError("fwupd takes no arguments")


FWUPD_SH = f"""if command -v fwupdmgr >/dev/null 2>&1; then
  exec fwupdmgr get-devices --json
fi
echo '{MISSING}'"""


def fwupd_cmd(args: tuple[str, ...]) -> str:
    return FWUPD_SH


# -- parsing -------------------------------------------------------------------------------
def _text(value: str) -> str:
    """Host text made safe: no lone surrogates, no control or bidi characters, bounded."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return clean(safe)[:MAX_TEXT]


def _one_line(text: str, limit: int = MAX_TEXT) -> str:
    return _text(" ".join(text.split()))[:limit]


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FactParseError(f"{where}: {key} is not a string")
    return _text(value)


def _str_list(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FactParseError(f"{where}: {key} is not a list of strings")
    return tuple(_text(v) for v in value)


def _device(item: Any, n: int) -> FwupdDevice:
    where = f"device {n}"
    if not isinstance(item, dict):
        raise FactParseError(f"{where} is not a JSON object")
    ident = item.get("DeviceId")
    if not isinstance(ident, str) or not DEVICE_ID_RE.fullmatch(ident):
        shown = _one_line(str(ident), 60) if ident is not None else "none"
        raise FactParseError(f"{where}: DeviceId {shown!r} is not 40 hex digits")
    where = f"device {ident}"
    guids = tuple(g.lower() for g in _str_list(item, "Guid", where))
    for g in guids:
        if not GUID_RE.fullmatch(g):
            raise FactParseError(f"{where}: {g[:60]!r} is not a GUID")
    flags = _str_list(item, "Flags", where)
    state = item.get("UpdateState")
    releases = item.get("Releases")
    if releases is not None and not isinstance(releases, list):
        raise FactParseError(f"{where}: Releases is not a list")
    versions: list[str] = []
    for rel in releases or []:
        if not isinstance(rel, dict):
            raise FactParseError(f"{where}: a release is not a JSON object")
        version = _opt_str(rel, "Version", where)
        if version is not None and version not in versions:
            versions.append(version)
    parent = item.get("ParentDeviceId")
    return FwupdDevice(
        id=ident,
        name=_opt_str(item, "Name", where) or ident,
        version=_opt_str(item, "Version", where),
        guids=guids,
        plugin=_opt_str(item, "Plugin", where) or "",
        vendor=_opt_str(item, "Vendor", where),
        flags=flags,
        updatable="updatable" in flags,
        parent_id=parent if isinstance(parent, str) and DEVICE_ID_RE.fullmatch(parent) else None,
        version_format=_opt_str(item, "VersionFormat", where),
        problems=_str_list(item, "Problems", where),
        update_state=(UPDATE_STATES.get(state, f"state-{state}")
                      if isinstance(state, int) and not isinstance(state, bool) and state > 0
                      else None),
        update_error=_opt_str(item, "UpdateError", where),
        releases=tuple(versions),
    )


def _load(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        cut = " (cut short?)" if exc.pos >= len(text.rstrip()) else ""
        raise FactParseError(
            f"{what} output is not JSON{cut}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise FactParseError(f"{what} output nests too deeply to be fwupd's JSON") from None


@dataclass(frozen=True)
class _Error:
    message: str
    domain: str | None
    code: int | None

    def where(self, rc: int | None = None) -> str:
        """"exit 1, FwupdError 7": what goes in brackets after "failed"."""
        parts = [f"exit {rc}"] if rc is not None else []
        if self.domain == "FwupdError" and self.code is not None:
            parts.append(f"FwupdError {self.code}")
        return f" ({', '.join(parts)})" if parts else ""


def _error_object(data: Any) -> _Error | None:
    """fwupdmgr's {"Error": {"Domain", "Code", "Message"}} (fwupd >= 1.8 with --json)."""
    if not isinstance(data, dict) or not isinstance(data.get("Error"), dict):
        return None
    err = data["Error"]
    msg, domain, code = err.get("Message"), err.get("Domain"), err.get("Code")
    return _Error(msg if isinstance(msg, str) and msg.strip() else "no message",
                  domain if isinstance(domain, str) else None,
                  code if isinstance(code, int) and not isinstance(code, bool) else None)


def _json_or_none(text: str) -> Any:
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _failure(what: str, err: _Error, rc: int | None) -> str:
    return f"{what} failed{err.where(rc)}: {_daemon_hint(err.message)}{_one_line(err.message)}"


def _daemon_hint(message: str) -> str:
    if any(k in message for k in _DAEMON_DOWN):
        return ("fwupd daemon not reachable (is the system D-Bus running and fwupd installed "
                "as its service?): ")
    return ""


def parse_devices_json(text: str, what: str = "fwupdmgr get-devices") -> tuple[FwupdDevice, ...]:
    """The devices of `fwupdmgr get-devices --json` (also get-updates, get-history and
    get-details, which print the same shape). Raises FactParseError (one line)."""
    body = text.strip().lstrip("\ufeff")
    if not body:
        raise FactParseError(f"{what} printed nothing")
    data = _load(body, what)
    err = _error_object(data)
    if err is not None:
        raise FactParseError(_failure(what, err, None))
    if not isinstance(data, dict) or not isinstance(data.get("Devices"), list):
        raise FactParseError(f"{what} output has no Devices list")
    return tuple(_device(item, n) for n, item in enumerate(data["Devices"], 1))


def _no_devices(err: _Error, rc: int) -> bool:
    """fwupd's way of saying the host has no devices: FwupdError 9 (nothing to do), exit 2,
    message "No detected devices" (fwupd 2.0.20, recorded)."""
    if err.domain == "FwupdError":
        return err.code == ERROR_NOTHING_TO_DO
    return rc == 2 and err.message.strip().rstrip(".") in NO_DEVICES_MESSAGES


def parse_fwupd(out: Output, args: tuple[str, ...]) -> FwupdDevices:
    stdout = out.stdout.strip()
    if stdout == MISSING:
        raise FactParseError(
            "fwupdmgr not found on the host: install the fwupd package for in-band firmware"
        )
    if out.rc != 0:
        # fwupd < 1.8 (or no JSON at all): the message is on stderr
        err = _error_object(_json_or_none(stdout)) or _Error(out.first_error(), None, None)
        if _no_devices(err, out.rc):
            return FwupdDevices(())
        raise FactParseError(_failure("fwupdmgr get-devices", err, out.rc))
    return FwupdDevices(parse_devices_json(out.stdout))


# -- installing ----------------------------------------------------------------------------
INSTALL_FLAGS = ("--json", "--assume-yes", "--no-reboot-check")


def install_argv(image: str, device_id: str) -> list[str]:
    """argv for installing `image` (a local .cab path, or an http(s) URL fwupdmgr downloads
    itself) on one device. Run it as an argv (no shell). Older or equal versions are refused
    by fwupd (see parse_install); a reboot, when the device needs one, is the caller's job.
    fwupdmgr keeps a URL's download in ~/.cache/fwupd/<file name> and reuses it for any later
    URL with the same file name: download to a fresh path yourself when images can change."""
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise FactArgError(f"device id {device_id[:60]!r} is not 40 hex digits")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in image):
        raise FactArgError(f"image {clean(image)[:80]!r} contains whitespace or a control "
                           "character")
    if not (image.startswith("/") or re.match(r"^https?://", image)):
        raise FactArgError(f"image {clean(image)[:80]!r} is neither an absolute path nor an "
                           "http(s) URL")
    return ["fwupdmgr", "install", image, device_id, *INSTALL_FLAGS]


@dataclass(frozen=True)
class InstallOutcome:
    status: str  # installed | already-installed | older | failed
    error: str | None = None  # one line, neutralised; None when installed
    code: int | None = None  # FwupdError code when fwupdmgr gave one


def parse_install(stdout: str, stderr: str, rc: int) -> InstallOutcome:
    """What `install_argv` reported. fwupdmgr --json prints nothing and exits 0 on success;
    on failure it prints {"Error": {...}} (fwupd >= 1.8; older: text on stderr) and exits 1
    (3 when the file or a matching device is not found, 2 when there is nothing to do).
    `installed` says the write succeeded, not that the version changed: a device that needs
    a reboot keeps its old version until then, so read the version back."""
    err = _error_object(_json_or_none(stdout))
    if rc == 0 and err is None:
        return InstallOutcome("installed")
    if err is None:
        err = _Error(Output(stdout, stderr, rc).first_error(), None, None)
    message = _failure("fwupdmgr install", err, rc)
    if err.domain == "FwupdError" and err.code == ERROR_VERSION_SAME:
        return InstallOutcome("already-installed", message, err.code)
    if err.domain == "FwupdError" and err.code == ERROR_VERSION_NEWER:
        return InstallOutcome("older", message, err.code)
    return InstallOutcome("failed", message, err.code)


register(
    Fact(
        "fwupd",
        "sh",
        fwupd_cmd,
        parse_fwupd,
        _no_args,
        "firmware devices from fwupd (fwupdmgr get-devices --json)",
    ),
)
