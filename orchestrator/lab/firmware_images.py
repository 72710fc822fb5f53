"""Firmware images of the lab's BMCs: what they hold, the defaults `lab up` serves, validation.

An image is a small JSON file served by the lab's package repository under `/firmware/<name>`
(folder `<lab>/repo/firmware/`). A BMC downloads it from the SimpleUpdate `ImageURI`:

    {"component": "BIOS", "version": "2.19.1", "seconds": 3, "reset": "system", "fault": null}

- component: the FirmwareInventory member it updates (when the request names no `Targets`);
- version: the version it installs;
- seconds: how long the update task runs after the download (0..3600, default 3);
- reset: null (the new version shows when the task completes), "system" (after a
  ComputerSystem.Reset that boots the system) or "manager" (after a Manager.Reset);
- fault: null, "fail-halfway" (the task ends in Exception at 50 %, version unchanged), "hang"
  (the task stays Running), "no-change" (the task completes, the version does not change);
- reset_seconds (optional): how long the BMC stays unreachable when a Manager.Reset activates
  this image (default RESET_SECONDS).

Standard library only: the Redfish emulator (redfish_server.py) imports it as a sibling module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

# What every BMC holds before any update (and after Lab.restore_bmc).
DEFAULT_FIRMWARE = {
    "BIOS": {"Name": "System BIOS", "Version": "2.18.0"},
    "BMC": {"Name": "BMC Firmware", "Version": "7.00.00"},
    "NIC": {"Name": "Embedded NIC", "Version": "22.31.6"},
}
RESETS = (None, "system", "manager")
FAULTS = (None, "fail-halfway", "hang", "no-change")
DEFAULT_SECONDS = 3.0
RESET_SECONDS = 3.0  # a Manager.Reset keeps the BMC unreachable this long (image may override)
MAX_SECONDS = 3600
MAX_IMAGE_BYTES = 64 * 1024
IMAGE_FOLDER = "firmware"  # under the repository folder and URL
_COMPONENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_KEYS = {"component", "version", "seconds", "reset", "fault", "reset_seconds"}

# Served by every lab: the newer versions of DEFAULT_FIRMWARE, one per kind of reset.
DEFAULT_IMAGES = {
    "bios-2.19.1.bin": {"component": "BIOS", "version": "2.19.1", "seconds": 3,
                        "reset": "system", "fault": None},
    "bmc-7.10.30.bin": {"component": "BMC", "version": "7.10.30", "seconds": 3,
                        "reset": "manager", "fault": None},
    "nic-22.41.0.bin": {"component": "NIC", "version": "22.41.0", "seconds": 3,
                        "reset": None, "fault": None},
}


class ImageError(ValueError):
    """Not a lab firmware image (the message says why)."""


def _number(value: object, what: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ImageError(f"'{what}' must be a number of seconds from 0 to {high:g}")
    return float(value)


def parse_image(raw: bytes) -> dict:
    """The image's fields, checked and completed with defaults; ImageError when it is not one."""
    if len(raw) > MAX_IMAGE_BYTES:
        raise ImageError(f"larger than {MAX_IMAGE_BYTES // 1024} KiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ImageError("not a JSON firmware image") from None
    if not isinstance(data, dict):
        raise ImageError("not a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ImageError(f"unknown field(s) {', '.join(unknown)}")
    component, version = data.get("component"), data.get("version")
    if not isinstance(component, str) or not _COMPONENT.fullmatch(component):
        raise ImageError("'component' must be a component name such as BIOS")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ImageError("'version' must be a version string such as 2.19.1")
    if data.get("reset") not in RESETS:
        raise ImageError("'reset' must be null, \"system\" or \"manager\"")
    if data.get("fault") not in FAULTS:
        raise ImageError("'fault' must be null, \"fail-halfway\", \"hang\" or \"no-change\"")
    seconds = data.get("seconds", DEFAULT_SECONDS)
    reset_seconds = data.get("reset_seconds", RESET_SECONDS)
    return {"component": component, "version": version,
            "seconds": _number(seconds, "seconds", MAX_SECONDS),
            "reset": data.get("reset"), "fault": data.get("fault"),
            "reset_seconds": _number(reset_seconds, "reset_seconds", 60)}


def make_image(component: str, version: str, seconds: float = DEFAULT_SECONDS,
               reset: str | None = None, fault: str | None = None,
               reset_seconds: float | None = None) -> bytes:
    """The bytes of an image; ImageError when a field is not valid."""
    data: dict = {"component": component, "version": version, "seconds": seconds,
                  "reset": reset, "fault": fault}
    if reset_seconds is not None:
        data["reset_seconds"] = reset_seconds
    raw = (json.dumps(data) + "\n").encode()
    parse_image(raw)
    return raw


def check_image_name(name: str) -> str:
    """A plain file name (no folder, no '..'); ImageError otherwise."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise ImageError(f"'{name}' is not a plain file name (letters, digits, . _ -)")
    return name


def write_image(folder: Path, name: str, raw: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / check_image_name(name)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    os.chmod(tmp, 0o644)
    tmp.replace(path)
    return path


def write_default_images(folder: Path) -> None:
    """A fresh image folder with DEFAULT_IMAGES (images added by earlier tests go away)."""
    shutil.rmtree(folder, ignore_errors=True)
    for name, fields in DEFAULT_IMAGES.items():
        write_image(folder, name, make_image(**fields))
