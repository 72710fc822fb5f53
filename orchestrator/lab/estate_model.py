"""What the simulated estate (estate.py) is made of: its groups and their windows and
policies, the packages each package manager releases over the year, the audit checks and the
ways hosts drift from them, the firmware components and their versions, and the people and
machines that act in the change log. Plain data, no records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from fnmatch import fnmatchcase
from typing import Any

GROUP_NAMES = ("web", "db", "app", "batch", "canary")
ZONE = "Europe/Berlin"  # where the windows and freezes are set
SCHEDULER = "orchestrator@ops-hub-01"
SECOND_SCHEDULER = "orchestrator@ops-hub-02"  # a second hub triggering the same windows
OPERATORS = ("alice@ops-ws-03", "bob@ops-ws-11", "chen@ops-ws-07")
PIPELINE = "gitlab-ci:policies@runner-02"
FORKS = 25
MISFIRE_GRACE = timedelta(hours=1)
REBOOTING = ("linux-image-amd64", "kernel", "kernel-default", "libc6", "glibc", "systemd")

# per manager: (package, base version, mean days between releases)
PACKAGES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "apt": (("openssl", "3.0.15", 30), ("openssh-server", "1:9.2p1", 60),
            ("linux-image-amd64", "6.1.0", 24), ("libc6", "2.36", 90), ("systemd", "252.30", 75),
            ("sudo", "1.9.13p3", 120), ("curl", "7.88.1", 45), ("tzdata", "2024a", 60),
            ("ca-certificates", "20230311", 150), ("python3.11", "3.11.2", 90)),
    "dnf": (("openssl", "3.0.7", 30), ("openssh-server", "8.7p1", 60), ("kernel", "5.14.0", 21),
            ("glibc", "2.34", 90), ("systemd", "252", 75), ("sudo", "1.9.5p2", 120),
            ("curl", "7.76.1", 45), ("tzdata", "2024a", 60), ("ca-certificates", "2024.2.69", 150),
            ("python3", "3.9.18", 90)),
    "zypper": (("libopenssl3", "3.1.4", 30), ("openssh", "9.6p1", 60),
               ("kernel-default", "6.4.0", 21), ("glibc", "2.38", 90), ("systemd", "254.10", 75),
               ("sudo", "1.9.15p5", 120), ("curl", "8.6.0", 45), ("timezone", "2024a", 60),
               ("ca-certificates-mozilla", "2.68", 150), ("python311", "3.11.9", 90)),
}
SSH_PACKAGE = {"apt": "openssh-server", "dnf": "openssh-server", "zypper": "openssh"}
MANAGERS = ("apt", "dnf", "zypper")


@dataclass(frozen=True)
class Template:
    manager: str
    weekday: int  # the window's local weekday, Monday 0
    hour: int  # the window's local start hour
    extra: tuple[tuple[str, str, int], ...] = ()  # the group's own packages
    services: tuple[str, ...] = ()  # health-checked after patching
    firmware: str | None = None  # firmware policy (hosts with a BMC)
    age_limit: int | None = None  # threshold.pendingPatchAgeDays of its baseline
    rejected: tuple[str, ...] = ()


TEMPLATES = {
    "web": Template("apt", 1, 22, (("nginx", "1.22.1", 50),), ("nginx",), None, 60),
    "db": Template("dnf", 3, 22, (("postgresql16-server", "16.4", 70),), ("postgresql",),
                    "r750-bmc", 60, ("postgresql*",)),
    "app": Template("apt", 2, 22, (("openjdk-17-jre-headless", "17.0.12+7", 80),)),
    "batch": Template("zypper", 5, 6, (), (), "r650-bmc"),
    "canary": Template("apt", 0, 22),
}

# approval rules: (classification or any, severities or None, approve after, deadline days)
RULES = (("security", ("critical",), 0, 2), ("security", ("high",), 0, 3),
         ("security", None, 0, 10), ("bugfix", None, 7, 21), ("enhancement", None, 14, 30),
         ("other", None, 7, 21))
CANARY_RULES = (("any", None, 0, 7),)

# audit checks: (id, expected, actual when it passes; None: a measured value)
CHECKS: tuple[tuple[str, Any, Any], ...] = (
    ("package.installed:chrony", "installed", "4.3-2"),
    ("package.installed:auditd", "installed", "3.0.9-1"),
    ("package.absent:telnetd", "absent", "absent"),
    ("package.absent:rsh-server", "absent", "absent"),
    ("service.running:sshd", "running", "running"),
    ("service.running:auditd", "running", "running"),
    ("service.running:chronyd", "running", "running"),
    ("file.exists:/etc/ssh/sshd_config", "present", "present"),
    ("file.owner:/etc/ssh/sshd_config", "root", "root"),
    ("file.mode:/etc/ssh/sshd_config", "0600", "0600"),
    ("file.contains:/etc/ssh/sshd_config", ["PermitRootLogin no"], ["PermitRootLogin no"]),
    ("file.exists:/etc/chrony/chrony.conf", "present", "present"),
    ("file.mode:/etc/shadow", "0640", "0640"),
    ("sysctl:net.ipv4.ip_forward", "0", "0"),
    ("sysctl:kernel.randomize_va_space", "2", "2"),
    ("threshold.diskUsedPercent:/", "<= 90", None),
    ("threshold.diskUsedPercent:/var", "<= 85", None),
    ("threshold.memoryUsedPercent", "<= 95", None),
)
# kinds of drift: the checks they break and what those then find
DRIFTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "chrony-missing": (("package.installed:chrony", "absent"),
                       ("service.running:chronyd", "not installed"),
                       ("file.exists:/etc/chrony/chrony.conf", "absent")),
    "sshd-mode": (("file.mode:/etc/ssh/sshd_config", "0644"),),
    "root-login": (("file.contains:/etc/ssh/sshd_config", {"missing": ["PermitRootLogin no"]}),),
    "auditd-stopped": (("service.running:auditd", "stopped"),),
    "ip-forward": (("sysctl:net.ipv4.ip_forward", "1"),),
    "aslr-off": (("sysctl:kernel.randomize_va_space", "0"),),
    "telnetd": (("package.absent:telnetd", "0.17+2.4-2"),),
    "shadow-mode": (("file.mode:/etc/shadow", "0644"),),
    "disk-var": (("threshold.diskUsedPercent:/var", 91.7),),
}
PERSISTENT = ("chrony-missing", "sshd-mode", "auditd-stopped", "telnetd", "aslr-off",
              "shadow-mode")
TRANSIENT = ("auditd-stopped", "disk-var", "sshd-mode", "root-login", "chrony-missing")

# firmware components: id -> (name, policy match, versions, reset after an update)
FIRMWARE: dict[str, tuple[str, str, tuple[str, ...], tuple[str, str] | None]] = {
    "BIOS": ("System BIOS", "BIOS", ("2.17.1", "2.18.0", "2.19.1", "2.20.0", "2.21.2", "2.22.1"),
             ("ForceRestart", "system")),
    "BMC": ("Integrated Remote Access Controller", "BMC",
            ("6.10.30.00", "7.00.00.00", "7.00.30.00", "7.10.30.00", "7.10.50.00", "7.20.10.00"),
            ("GracefulRestart", "manager")),
    "NIC": ("Embedded NIC 1 Port 1", "NIC*",
            ("22.31.6", "22.36.1", "22.41.0", "22.71.3", "23.0.8", "23.2.1"), None),
}
FIRMWARE_FAILURE = "the BMC task ended in state Exception (Unable to verify update package)"

OVERRIDE_REASONS = (
    "CHG0041377 emergency: openssl critical advisory exploited in the wild",
    "INC0081234: nginx worker crash fix needed before the weekend peak",
    "CHG0042810 security: sudo privilege escalation, CISO approved out of window",
    "INC0083307: kernel bug hangs hosts under load; vendor fix approved by CAB",
)
APPLY_MESSAGES = {
    "initial": "Import the estate's policies: groups, windows, baselines, patch and firmware "
               "policies",
    "bios": "firmware: BIOS {version} for {policies} (vendor advisory)",
    "bmc": "firmware: BMC {version} for {policies} (security fixes in the web interface)",
    "nic": "firmware: NIC {version} for {policies} (link flaps under load)",
    "baseline": "baselines: require auditd and chrony on every Linux host",
    "freeze": "windows: add release-freeze for {groups} (CHG0043120)",
    "waiver": "waivers: extend db-replication-forwarding until the VLAN move (CHG0040712)",
    "invalid": "windows: move the web window one hour later",
    "fix": "windows: fix the web window's duration",
}


@dataclass(frozen=True)
class Release:
    version: str
    classification: str
    severity: str | None
    released: date | None  # the source's release date (dnf, zypper); apt gives none
    day: int  # the simulated day it is published to the hosts' repositories


@dataclass(eq=False)
class Group:
    name: str
    template: Template
    packages: list[str]
    rules: tuple[tuple[str, tuple[str, ...] | None, int, int], ...]
    serial: list[int | str]
    max_failures: int | str
    hosts: list[Host] = field(default_factory=list)

    @property
    def manager(self) -> str:
        return self.template.manager

    @property
    def window(self) -> str:
        return f"{self.name}-weekly"

    @property
    def policy(self) -> str:
        return f"{self.name}-linux"

    def decide(self, name: str, rel: Release, first_seen: date, today: date
               ) -> tuple[str, date | None, bool, int]:
        """(scan state, due on, overdue, age in days), as approval.decide judges."""
        base = rel.released or first_seen
        age = (today - base).days
        if any(fnmatchcase(name, p) for p in self.template.rejected):
            return "rejected", None, False, age
        for cls, severities, after, deadline in self.rules:
            if cls not in ("any", rel.classification):
                continue
            if severities is not None and rel.severity not in severities:
                continue
            approved = base + timedelta(days=after)
            due = approved + timedelta(days=deadline)
            if today < approved:
                return "not_approved", due, False, age
            return "missing", due, today > due, age
        return "not_approved", None, False, age


@dataclass(eq=False)
class Host:
    name: str
    group: Group
    installed: dict[str, int]  # package -> index of its installed release
    bmc: bool
    firmware: dict[str, int]  # component -> index of its installed version
    disk_root: float
    disk_var: float
    memory: float
    drifts: list[tuple[str, int, int]] = field(default_factory=list)  # kind, first, last day
    outages: list[tuple[int, int]] = field(default_factory=list)
    bmc_outages: list[tuple[int, int]] = field(default_factory=list)
    stuck: tuple[str, int, int] | None = None  # a package whose install fails, from/to day
    powered_off: bool = False  # a spare whose BMC reports power Off

    def down(self, d: int) -> bool:
        return any(a <= d <= b for a, b in self.outages)

    def bmc_down(self, d: int) -> bool:
        return any(a <= d <= b for a, b in self.bmc_outages)


@dataclass(frozen=True)
class Pending:
    name: str
    current: str
    release: Release
    index: int
    first_seen: date
    state: str
    due: date | None
    overdue: bool
    age: int

    def to_json(self) -> dict[str, Any]:
        r = self.release
        return {"name": self.name, "current": self.current, "available": r.version,
                "classification": r.classification, "severity": r.severity,
                "released": r.released.isoformat() if r.released else None,
                "firstSeen": self.first_seen.isoformat(), "state": self.state,
                "dueOn": self.due.isoformat() if self.due else None, "overdue": self.overdue}
