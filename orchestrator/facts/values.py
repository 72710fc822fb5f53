"""Typed values the fact parsers return."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Packages:
    manager: str  # dpkg | rpm | none
    installed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> versions
    broken: dict[str, str] = field(default_factory=dict)  # name -> dpkg status (half-installed...)

    def version(self, name: str) -> str | None:
        v = self.installed.get(name)
        return ", ".join(v) if v else None


@dataclass(frozen=True)
class ServiceState:
    name: str
    manager: str  # systemd | sysv
    running: bool
    enabled: bool | None  # None: cannot tell (no unit file / init script)
    active_state: str = ""  # systemctl is-active output, or process/initscript detail
    enabled_state: str = ""  # systemctl is-enabled output, or rc.d/runlevel detail
    process: str | None = None  # matched process name (non-systemd hosts)


@dataclass(frozen=True)
class FileStat:
    path: str
    exists: bool
    owner: str | None = None
    group: str | None = None
    mode: str | None = None  # "0644", four octal digits
    type: str | None = None  # "regular file", "directory", "symbolic link", ...
    size: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class FileContains:
    path: str
    exists: bool
    found: dict[str, bool] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [s for s, ok in self.found.items() if not ok]


@dataclass(frozen=True)
class FileHash:
    path: str
    exists: bool
    sha256: str | None = None


@dataclass(frozen=True)
class Sysctl:
    name: str
    exists: bool
    value: str | None = None  # whitespace runs collapsed to one space


@dataclass(frozen=True)
class DiskUsage:
    path: str  # as asked
    exists: bool
    filesystem: str | None = None
    mounted_on: str | None = None
    size_kb: int | None = None
    used_kb: int | None = None
    available_kb: int | None = None
    used_percent: float | None = None  # used / (used + available), one decimal
    capacity_percent: int | None = None  # df's own (rounded up) figure


@dataclass(frozen=True)
class Memory:
    total_kb: int
    available_kb: int
    used_percent: float


@dataclass(frozen=True)
class PendingReboot:
    required: bool
    reasons: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class OsInfo:
    id: str
    family: str  # debian | rhel | suse | alpine | windows | <id>
    version_id: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()
    kernel: str | None = None
    arch: str | None = None


@dataclass(frozen=True)
class WinService:
    name: str
    exists: bool
    status: str | None = None  # Running, Stopped, ...
    start_type: str | None = None  # Automatic, Manual, Disabled, Boot, System

    @property
    def running(self) -> bool:
        return self.status == "Running"

    @property
    def enabled(self) -> bool:
        return self.start_type in ("Automatic", "Boot", "System")


@dataclass(frozen=True)
class Hotfix:
    id: str
    description: str | None = None
    installed_on: str | None = None  # YYYY-MM-DD


@dataclass(frozen=True)
class RegistryValue:
    key: str
    name: str
    key_exists: bool
    exists: bool
    kind: str | None = None  # String, ExpandString, DWord, QWord, MultiString, Binary
    value: object = None
