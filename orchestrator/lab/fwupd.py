"""fwupd on the lab's `fwupd` hosts: its test device, cabinets for it, the boot hook, faults.

Debian bookworm's fwupd (2.0.20) runs on a lab host without hardware: `TestDevices=true` gives
the test plugin's device "Integrated Webcam™" (plugin `test`, DeviceId TEST_DEVICE_ID, GUID
TEST_GUID, version 1.2.2 when the daemon starts, version format triplet). It is updated with
`fwupdmgr install <cab> <DeviceId>` from a cabinet (`make_cab`) whose payload's first 9 bytes
are the new version as a decimal number: A.B.C = bits 24-31, 16-23 and 0-15.

The daemon keeps the device's version in memory only, and the lab hosts have no init system:
at every boot, before sshd, the supervisor runs BOOT_HOOK (/usr/local/sbin/lab-fwupd-boot). It
forgets the run-time configuration (`fwupdmgr modify-config`, where the faults live), starts
the system D-Bus (fwupd is started by the bus on the first fwupdmgr call), and gives the device
back the version its last update left, as fwupd's history on disk records it: the new version
after a success (also one that "needed a reboot": this boot is that reboot), else the old one.

Faults (`FAULTS`, set by Lab.fwupd_fault over SSH, undone by Lab.fwupd_clear or a reboot):
  write-fails   the install fails ("failed to write-firmware: device was not in supported
                mode"), the version stays;
  slow          the write takes `seconds` (at most MAX_SLOW_SECONDS);
  needs-reboot  the install succeeds, the version changes only at the next reboot (the device
                gains the flag `needs-reboot`, as a UEFI capsule);
  no-change     as needs-reboot, but the next reboot keeps the old version (a "successful"
                update that never shows; NO_CHANGE_FLAG on the host, consumed by that boot);
  hang          the daemon is stopped (SIGSTOP from outside the host): every fwupdmgr call
                blocks until fwupd_clear, a reboot or reset_host.

Standard library only: this file is also the hosts' /usr/local/bin/lab-fwupd-cab (the boot hook
builds its cabinets with it), `python3 lab-fwupd-cab VERSION FILE`.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from pathlib import Path

TEST_DEVICE_ID = "08d460be0f1f9f128413f816022a6439e0078018"
TEST_GUID = "b585990a-003e-5270-89d5-3705a17f9a43"
TEST_PLUGIN = "test"
INITIAL_VERSION = "1.2.2"  # what the test device says when the daemon starts
CAB_FOLDER = "fwupd"  # under the lab repository's folder and URL
MAX_SLOW_SECONDS = 10.0  # the test plugin's WriteDelay is at most 10000 ms
FAULTS = ("write-fails", "slow", "needs-reboot", "no-change", "hang")
# `fwupdmgr modify-config test KEY VALUE` of each fault, and the values that undo them
FAULT_SETTINGS = {"write-fails": ("WriteSupported", "false"),
                  "needs-reboot": ("NeedsReboot", "true"), "no-change": ("NeedsReboot", "true")}
NO_CHANGE_FLAG = "/var/lib/lab-fwupd/no-change"  # on the host; the boot hook removes it
CLEAR_SETTINGS = (("WriteSupported", "true"), ("WriteDelay", "0"), ("NeedsReboot", "false"))

_VERSION = re.compile(r"(0|[1-9][0-9]{0,4})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,4})")
_CAB_BLOCK = 0x8000  # the largest CFDATA block


class CabError(ValueError):
    """Not a version the test device can show (the message says why)."""


def version_number(version: str) -> int:
    """The test plugin's number for `version` (A.B.C, no leading zeros, 0 < number <= 9 digits,
    the payload being 9 decimal digits); CabError otherwise."""
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match:
        a, b, c = (int(x) for x in match.groups())
        value = (a << 24) | (b << 16) | c
        if b <= 255 and c <= 65535 and 0 < value <= 999_999_999:
            return value
    raise CabError(f"'{version}' is not a test device version: A.B.C without leading zeros, "
                   "B <= 255, C <= 65535, not 0.0.0, (A << 24 | B << 16 | C) < 10**9 "
                   "(e.g. 7.10.30)")


def cab_name(version: str) -> str:
    """The file name of the cabinet of `version` (one name per version: fwupdmgr caches
    downloads by file name, and the lab's cabinet of a version is always the same bytes)."""
    version_number(version)
    return f"lab-webcam-{version}.cab"


def payload(version: str) -> bytes:
    return b"%09d" % version_number(version)


def metainfo(version: str) -> str:
    """The cabinet's firmware.metainfo.xml (`version` is checked, so it needs no escaping)."""
    version_number(version)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<component type="firmware">
  <id>org.fwupd.fakedevice.firmware</id>
  <name>FakeDevice</name>
  <summary>Firmware for the ACME Corp Integrated Webcam (orchestrator lab)</summary>
  <provides>
    <firmware type="flashed">{TEST_GUID}</firmware>
  </provides>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>proprietary</project_license>
  <developer_name>Orchestrator lab</developer_name>
  <custom>
    <value key="LVFS::VersionFormat">triplet</value>
    <value key="LVFS::UpdateProtocol">com.acme.test</value>
  </custom>
  <releases>
    <release version="{version}" date="2026-01-01" urgency="medium">
      <description><p>Lab test release {version}.</p></description>
    </release>
  </releases>
</component>
"""


def _checksum(data: bytes, seed: int) -> int:
    """The MS-CAB CFDATA checksum (XOR of little-endian words, odd tail bytes big-endian)."""
    words = len(data) // 4
    value = seed
    for (word,) in struct.iter_unpack("<I", data[:words * 4]):
        value ^= word
    tail = 0
    for byte in data[words * 4:]:
        tail = (tail << 8) | byte
    return value ^ tail


def cabinet(files: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed Microsoft cabinet (one folder) holding `files`, as fwupdtool
    build-cabinet writes it (no dates, no attributes; same input, same bytes)."""
    names = [name.encode("ascii") + b"\0" for name, _ in files]
    data = b"".join(content for _, content in files)
    blocks = [data[i:i + _CAB_BLOCK] for i in range(0, len(data), _CAB_BLOCK)] or [b""]
    files_at = 36 + 8  # CFHEADER, one CFFOLDER
    data_at = files_at + sum(16 + len(n) for n in names)
    size = data_at + sum(8 + len(b) for b in blocks)
    out = bytearray(struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, size, 0, files_at, 0, 3, 1,
                                1, len(files), 0, 0, 0))
    out += struct.pack("<IHH", data_at, len(blocks), 0)  # typeCompress 0: none
    offset = 0
    for name, (_, content) in zip(names, files, strict=True):
        out += struct.pack("<IIHHHH", len(content), offset, 0, 0, 0, 0) + name
        offset += len(content)
    for block in blocks:
        sizes = struct.pack("<HH", len(block), len(block))
        out += struct.pack("<I", _checksum(sizes, _checksum(block, 0))) + sizes + block
    assert len(out) == size
    return bytes(out)


def make_cab(version: str) -> bytes:
    """A cabinet that makes the test device report `version` once installed."""
    return cabinet([("firmware.bin", payload(version)),
                    ("firmware.metainfo.xml", metainfo(version).encode())])


FWUPD_CONF = """[fwupd]
# use `man 5 fwupd.conf` for documentation
# lab: a virtual test device (plugin "test", GUID b585990a-003e-5270-89d5-3705a17f9a43)
TestDevices=true
# lab: the cabinets the lab builds are not signed by a key fwupd trusts (never on production)
OnlyTrusted=false
# lab: never exit when idle (a new daemon's test device is back at 1.2.2)
IdleTimeout=0

# lab: test plugin faults are set at run time with `fwupdmgr modify-config test KEY VALUE`
# (kept in /var/etc/fwupd/fwupd.conf, which lab-fwupd-boot removes at the next boot):
# WriteSupported=false (the write fails), WriteDelay=MS (<= 10000: the write takes that long),
# NeedsReboot=true (success; the version changes at the next boot)
"""

BOOT_HOOK = """#!/bin/sh
# orchestrator lab: run by the host's supervisor at every boot, before sshd
# (orchestrator/lab/fwupd.py). fwupd itself is started by the bus on the first fwupdmgr call.
# A reboot clears what `fwupdmgr modify-config` changed (the faults): not `fwupdmgr
# reset-config`, after which the reloading daemon can lose an install.
rm -f /var/etc/fwupd/fwupd.conf
mkdir -p /run/dbus
dbus-daemon --system --fork || exit 1
# The test device keeps its version in the daemon's memory: give it back the version of its
# last update, as fwupd's history (on disk) records it. Fault no-change (the flag file): this
# boot keeps the version from before that update, and records it as the last update.
nochange=
if [ -e NO_CHANGE_FLAG ]; then rm -f NO_CHANGE_FLAG; nochange=1; fi
v=$(fwupdmgr get-history --json 2>/dev/null | NOCHANGE=$nochange python3 -c '
import json, os, sys
try:
    devices = json.load(sys.stdin).get("Devices") or []
except (ValueError, AttributeError):
    devices = []
for d in devices:
    if isinstance(d, dict) and d.get("Plugin") == "test":
        rel = ((d.get("Releases") or [{}])[0] or {}).get("Version")
        ok = d.get("UpdateState") == 2 and rel and not os.environ.get("NOCHANGE")
        print(rel if ok else d.get("Version") or "")
' 2>/dev/null | tail -n 1)
history=--no-history
if [ -n "$nochange" ]; then history=; fi
case $v in "") exit 0 ;; 1.2.2) [ -n "$nochange" ] || exit 0 ;; esac
f=$(mktemp -d)
if lab-fwupd-cab "$v" "$f/restore.cab"; then
    fwupdmgr install "$f/restore.cab" --allow-older --allow-reinstall $history -y \\
        --no-reboot-check --json >/dev/null 2>&1 || echo "lab-fwupd-boot: cannot restore $v" >&2
fi
rm -rf "$f"
exit 0
"""

BOOT_HOOK = BOOT_HOOK.replace("NO_CHANGE_FLAG", NO_CHANGE_FLAG)
BOOT_HOOK_PATH = "/usr/local/sbin/lab-fwupd-boot"
CAB_TOOL_PATH = "/usr/local/bin/lab-fwupd-cab"


def layer_files() -> dict[str, tuple[str, int]]:
    """What the fwupd hosts' shared layer adds to an apt host's."""
    return {
        "etc/fwupd/fwupd.conf": (FWUPD_CONF, 0o644),
        BOOT_HOOK_PATH.lstrip("/"): (BOOT_HOOK, 0o755),
        CAB_TOOL_PATH.lstrip("/"): ("#!/usr/bin/python3\n" + Path(__file__).read_text(), 0o755),
    }


def main(argv: list[str]) -> int:
    """lab-fwupd-cab VERSION FILE: write the cabinet of VERSION to FILE."""
    if len(argv) != 2:
        print("usage: lab-fwupd-cab VERSION FILE", file=sys.stderr)
        return 2
    try:
        raw = make_cab(argv[0])
    except CabError as exc:
        print(f"lab-fwupd-cab: {exc}", file=sys.stderr)
        return 2
    tmp = f"{argv[1]}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(raw)
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
