"""Host flavours of the lab: which package manager a Linux host has, its names and addresses.

| flavour | hosts          | inventory group | addresses (host, BMC) | rootfs variant | manager |
|---------|----------------|-----------------|-----------------------|----------------|---------|
| apt     | lab-NN         | lab_linux       | 127.B.0.x, 127.B.1.x  | debian         | apt     |
| rpm     | lab-rpm-NN     | lab_rpm         | 127.B.4.x, 127.B.5.x  | dnf            | dnf     |
| zypper  | lab-zypper-NN  | lab_zypper      | 127.B.6.x, 127.B.7.x  | zypper         | zypper  |
| fwupd   | lab-fw-NN      | lab_fwupd       | 127.B.8.x, 127.B.9.x  | fwupd          | apt     |

(x = 10 + N; 127.B.2.x are the Windows hosts, 127.B.3.1 the package repository.)
The RPM flavours are Debian userlands whose package manager is Debian's dnf or zypper working
on an rpmdb in /var/lib/rpm: /etc/os-release names an RPM distribution, apt and dpkg are hidden,
so package-manager detection (`command -v dnf`, Ansible's pkg_mgr) picks dnf or zypper.
os-release must not contain the word "Debian": Ansible's distribution facts would call the
host Debian and force its pkg_mgr to apt.
The fwupd flavour is the apt flavour plus fwupd with its test device (orchestrator.lab.fwupd):
its supervisor runs the fwupd boot hook at every boot, before sshd.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.lab.fwupd import BOOT_HOOK_PATH
from orchestrator.lab.fwupd import layer_files as fwupd_layer_files
from orchestrator.lab.shims import LAYER_FILES


@dataclass(frozen=True)
class Flavour:
    name: str
    prefix: str  # host names: prefix + "NN"
    group: str  # inventory group
    host_octet: int
    bmc_octet: int
    rootfs: str  # variant in orchestrator.lab.rootfs.VARIANTS
    packaging: str = "deb"  # deb: apt repository and 1.0 debs; rpm: RPM repository and RPMs
    boot: tuple[str, ...] = ()  # run (chrooted, in order) at every boot before sshd


FLAVOURS: dict[str, Flavour] = {
    "apt": Flavour("apt", "lab-", "lab_linux", 0, 1, "debian"),
    "rpm": Flavour("rpm", "lab-rpm-", "lab_rpm", 4, 5, "dnf", "rpm"),
    "zypper": Flavour("zypper", "lab-zypper-", "lab_zypper", 6, 7, "zypper", "rpm"),
    "fwupd": Flavour("fwupd", "lab-fw-", "lab_fwupd", 8, 9, "fwupd", "deb", (BOOT_HOOK_PATH,)),
}

RPM_KEY_PATH = "etc/pki/rpm-gpg/RPM-GPG-KEY-lab"
# apt and dpkg front-ends removed from the RPM flavours (overlay whiteouts in their layer)
HIDDEN_ON_RPM = ("usr/bin/apt", "usr/bin/apt-get", "usr/bin/apt-cache", "usr/bin/apt-mark",
                 "usr/bin/apt-config", "usr/bin/apt-key", "usr/bin/dpkg", "usr/bin/dpkg-query")

OS_RELEASE_DNF = """NAME="Acme Enterprise Linux"
VERSION="9 (orchestrator lab RPM flavour)"
ID="acme"
ID_LIKE="rhel centos fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Acme Enterprise Linux 9 (orchestrator lab, dnf)"
HOME_URL="https://lab.invalid/"
"""

OS_RELEASE_ZYPPER = """NAME="Acme Linux Enterprise Server"
VERSION="15-SP5 (orchestrator lab zypper flavour)"
ID="acme-sles"
ID_LIKE="suse sles"
VERSION_ID="15.5"
PRETTY_NAME="Acme Linux Enterprise Server 15 SP5 (orchestrator lab, zypper)"
HOME_URL="https://lab.invalid/"
"""

# Debian's rpm, asked to install, warns "RPM should not be used directly ..., use Alien" unless
# given --force-debian; zypper runs rpm, so the RPM flavours add it to rpm's install options.
POPT = """rpm alias -i -i --force-debian
rpm alias -U -U --force-debian
rpm alias --install --install --force-debian
rpm alias --upgrade --upgrade --force-debian
"""
RPM_MACROS = "%_dbpath /var/lib/rpm\n"  # Debian's default is ~/.rpmdb

_RPM_COMMON: dict[str, tuple[str, int]] = {
    "etc/rpm/macros": (RPM_MACROS, 0o644),
    "etc/popt": (POPT, 0o644),
}

LAYER_FILES_BY_FLAVOUR: dict[str, dict[str, tuple[str, int]]] = {
    "apt": dict(LAYER_FILES),
    "rpm": {
        **LAYER_FILES, **_RPM_COMMON,
        "etc/os-release": (OS_RELEASE_DNF, 0o644),
        "usr/lib/os-release": (OS_RELEASE_DNF, 0o644),
        # Debian's dnf-plugins-core enables the `local` plugin (needs createrepo_c): off.
        "etc/dnf/plugins/local.conf": ("[main]\nenabled = false\n", 0o644),
        # `dnf needs-restarting -r` reports a reboot when one of these was updated after boot
        "etc/dnf/plugins/needs-restarting.d/acme.conf": ("acme-kernel\n", 0o644),
    },
    "zypper": {
        **LAYER_FILES, **_RPM_COMMON,
        "etc/os-release": (OS_RELEASE_ZYPPER, 0o644),
        "usr/lib/os-release": (OS_RELEASE_ZYPPER, 0o644),
        # libzypp touches /run/reboot-needed after installing one of these, which is what
        # `zypper needs-rebooting` (exit 102) and `zypper ps -s` report
        "etc/zypp/needreboot.d/acme": ("acme-kernel\n", 0o644),
    },
    "fwupd": {**LAYER_FILES, **fwupd_layer_files()},
}
