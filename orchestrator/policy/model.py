"""Typed model objects for every policy kind (SPEC section 1).

Objects are immutable and carry `source`, the file position of their document,
so that later checks can still say `path:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Location:
    path: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Meta:
    name: str
    description: str | None
    source: Location


# ---------------------------------------------------------------- Window, Freeze
@dataclass(frozen=True)
class Window:
    meta: Meta
    timezone: str
    duration: timedelta
    cutoff: timedelta
    cron: str | None = None
    rrule: str | None = None
    offset_days: int = 0
    on_end: Literal["finish", "cancel"] = "finish"
    misfire_grace: timedelta | None = None  # None: until the cutoff instant
    valid_from: datetime | None = None  # naive local wall-clock time
    valid_until: datetime | None = None  # naive local wall-clock time

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class Freeze:
    meta: Meta
    start: datetime  # naive local wall-clock time (`from`)
    until: datetime  # naive local wall-clock time
    timezone: str
    reason: str
    groups: tuple[str, ...] | None = None  # None: every group

    @property
    def name(self) -> str:
        return self.meta.name

    def applies_to(self, group: str) -> bool:
        return self.groups is None or group in self.groups


# ---------------------------------------------------------------- Baseline
@dataclass(frozen=True)
class FileRule:
    path: str
    owner: str | None = None
    group: str | None = None
    mode: str | None = None  # four octal digits, "0644" (the loader pads "644")
    contains: tuple[str, ...] = ()
    absent: bool = False
    sha256: str | None = None


@dataclass(frozen=True)
class DiskThreshold:
    max: float
    mounts: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class Thresholds:
    disk_used_percent: DiskThreshold | None = None
    memory_used_percent: float | None = None
    pending_patch_age_days: int | None = None


@dataclass(frozen=True)
class RegistryRule:
    key: str
    name: str
    value: str | int


@dataclass(frozen=True)
class Baseline:
    meta: Meta
    platform: Literal["linux", "windows"]
    packages_installed: tuple[str, ...] = ()
    packages_absent: tuple[str, ...] = ()
    services_running: tuple[str, ...] = ()
    services_stopped: tuple[str, ...] = ()
    services_enabled: tuple[str, ...] = ()
    services_disabled: tuple[str, ...] = ()
    files: tuple[FileRule, ...] = ()
    sysctl: tuple[tuple[str, str], ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    registry: tuple[RegistryRule, ...] = ()
    hotfixes_installed: tuple[str, ...] = ()
    ansible_playbook: str | None = None

    @property
    def name(self) -> str:
        return self.meta.name


# ---------------------------------------------------------------- PatchPolicy
@dataclass(frozen=True)
class ApprovalRule:
    classification: str  # security | bugfix | enhancement | any ...
    severity: tuple[str, ...] | None  # None: any severity
    approve_after_days: int
    deadline_days: int


@dataclass(frozen=True)
class Rollout:
    serial: tuple[int | str, ...] = ("100%",)
    max_failures: int | str = 0


@dataclass(frozen=True)
class HealthChecks:
    services: tuple[str, ...] = ()
    command: str | None = None
    timeout: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Promotion:
    after_group: str
    min_days: int = 0
    max_failure_percent: float = 0


@dataclass(frozen=True)
class PatchPolicy:
    meta: Meta
    rules: tuple[ApprovalRule, ...]
    approved: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    rejected_action: Literal["block", "allowAsDependency"] = "block"
    reboot: Literal["ifNeeded", "always", "never"] = "ifNeeded"
    rollout: Rollout = field(default_factory=Rollout)
    disk_free_percent_min: float | None = None
    health_checks: HealthChecks = field(default_factory=HealthChecks)
    promotion: Promotion | None = None

    @property
    def name(self) -> str:
        return self.meta.name


# ---------------------------------------------------------------- FirmwarePolicy
@dataclass(frozen=True)
class FirmwareComponent:
    match: str
    version: str
    image: str


@dataclass(frozen=True)
class FirmwarePolicy:
    meta: Meta
    method: Literal["redfish", "fwupd"]
    components: tuple[FirmwareComponent, ...]
    require_power_state: Literal["On", "Off", "any"] = "any"
    rollout: Rollout = field(default_factory=Rollout)

    @property
    def name(self) -> str:
        return self.meta.name


# ---------------------------------------------------------------- AssetGroup, Waiver
@dataclass(frozen=True)
class AssetGroup:
    meta: Meta
    inventory_groups: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    patch_policy: str | None = None
    firmware_policy: str | None = None
    windows: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class Waiver:
    meta: Meta
    checks: tuple[str, ...]
    justification: str
    expires: date
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name

    def expired(self, today: date) -> bool:
        """A waiver applies through its expiry date and no longer after it."""
        return today > self.expires


KINDS = ("Window", "Freeze", "Baseline", "PatchPolicy", "FirmwarePolicy", "AssetGroup", "Waiver")


@dataclass(frozen=True)
class PolicySet:
    """Every policy object, by kind and name."""

    root: Path
    windows: dict[str, Window] = field(default_factory=dict)
    freezes: dict[str, Freeze] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    patch_policies: dict[str, PatchPolicy] = field(default_factory=dict)
    firmware_policies: dict[str, FirmwarePolicy] = field(default_factory=dict)
    groups: dict[str, AssetGroup] = field(default_factory=dict)
    waivers: dict[str, Waiver] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list, compare=False)
    problems: list[str] = field(default_factory=list, compare=False)  # strict=False loads
    # (kind, name) -> document positions, so that later checks can name file:line:col
    positions: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    def by_kind(self, kind: str) -> dict:
        return {
            "Window": self.windows,
            "Freeze": self.freezes,
            "Baseline": self.baselines,
            "PatchPolicy": self.patch_policies,
            "FirmwarePolicy": self.firmware_policies,
            "AssetGroup": self.groups,
            "Waiver": self.waivers,
        }[kind]

    def locate(self, kind: str, name: str, *path: str | int, key: bool = False) -> str:
        """`file:line:col` of a field of an object, or of its document."""
        found = self.positions.get((kind, name))
        if found is None:
            return str(self.root)
        file, doc = found
        line, col = doc.position(path, key=key)
        return f"{file}:{line}:{col}"

    def all_objects(self) -> list[tuple[str, Any]]:
        return [(kind, obj) for kind in KINDS for obj in self.by_kind(kind).values()]

    def freezes_for(self, group: str) -> list[Freeze]:
        return [f for f in self.freezes.values() if f.applies_to(group)]

    def groups_using_window(self, window: str) -> list[str]:
        return sorted(g.name for g in self.groups.values() if window in g.windows)
