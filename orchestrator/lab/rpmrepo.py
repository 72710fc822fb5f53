"""The lab's RPM repository: synthetic noarch RPMs (rpmbuild), createrepo_c metadata and an
updateinfo.xml (modifyrepo_c), every RPM and repomd.xml signed with the lab key.

The same packages as the apt repository, one repository (`lab`, served at /rpm/):
  acme-tls     1.0+sec1  advisory ACME-SA-2026-0001: security, severity Important
  acme-agent   1.1       advisory ACME-BA-2026-0002: bugfix
  acme-kernel  1.1       advisory ACME-EA-2026-0003: enhancement, reboot suggested; the RPM
                         hosts name acme-kernel as a core package (dnf needs-restarting.d,
                         zypp needreboot.d), so `dnf needs-restarting -r` and `zypper
                         needs-rebooting` report a reboot after it is installed
  acme-broken  1.1       no advisory (classification "other"); its %pre fails (exit 1), so
                         the package is not installed and dnf/zypper exit non-zero
  acme-extra   1.0       no advisory; not installed
  acme-app     1.0, 1.1  no advisory; not installed; 1.1 Requires acme-lib >= 2, so its update
                         pulls in a new package (tests of rejectedAction install 1.0)
  acme-lib     2.0       no advisory; not installed; only acme-app 1.1 needs it
  acme-release 9         the distribution's release package (system-release(releasever) = 9)
Version 1.0 of the first four and acme-release are what the RPM hosts have installed (release 1
throughout).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from orchestrator.lab.errors import LabSetupError
from orchestrator.lab.signing import LabKey

RELEASE = "1"
REPO_ID = "lab"
REPO_NAME = "Acme lab repository"


@dataclass(frozen=True)
class Rpm:
    name: str
    version: str
    summary: str
    pre: str = ""
    post: str = ""
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{RELEASE}.noarch.rpm"


@dataclass(frozen=True)
class Advisory:
    id: str
    type: str  # security | bugfix | enhancement
    severity: str  # "" for none
    issued: str  # "YYYY-MM-DD HH:MM:SS"
    title: str
    pkg: Rpm
    reboot_suggested: bool = False
    cve: str = ""


FAIL_PRE = 'echo "acme-broken: %pre refuses to install" >&2\nexit 1\n'

# The distribution's release package: dnf reads $releasever from it, and it stands in for the
# files the Debian base provides outside the rpmdb (scriptlets need /bin/sh).
RELEASE_RPM = Rpm("acme-release", "9", "Acme Enterprise Linux (lab RPM flavour) release",
                  provides=("system-release", "system-release(releasever) = 9", "/bin/sh"))
RPMS: tuple[Rpm, ...] = (
    RELEASE_RPM,
    Rpm("acme-tls", "1.0", "TLS library (security update pending)"),
    Rpm("acme-tls", "1.0+sec1", "TLS library, fixes CVE-LAB-1"),
    Rpm("acme-agent", "1.0", "monitoring agent"),
    Rpm("acme-agent", "1.1", "monitoring agent, ordinary update"),
    Rpm("acme-kernel", "1.0", "needs a reboot after update"),
    Rpm("acme-kernel", "1.1", "needs a reboot after update"),
    Rpm("acme-broken", "1.0", "update whose scriptlet fails"),
    Rpm("acme-broken", "1.1", "update whose scriptlet fails", pre=FAIL_PRE),
    Rpm("acme-extra", "1.0", "not installed by default"),
    Rpm("acme-app", "1.0", "application (not installed by default)"),
    Rpm("acme-app", "1.1", "application, needs acme-lib 2", requires=("acme-lib >= 2",)),
    Rpm("acme-lib", "2.0", "library only acme-app 1.1 needs"),
)
INSTALLED = ("acme-release", "acme-tls", "acme-agent", "acme-kernel", "acme-broken")
# packages after whose update the RPM hosts report a reboot (needs-restarting.d, needreboot.d)
REBOOT_PACKAGES = ("acme-kernel",)


def _rpm(name: str, version: str) -> Rpm:
    return next(r for r in RPMS if (r.name, r.version) == (name, version))


ADVISORIES: tuple[Advisory, ...] = (
    Advisory("ACME-SA-2026-0001", "security", "Important", "2026-01-12 00:00:00",
             "Important: acme-tls security update", _rpm("acme-tls", "1.0+sec1"),
             cve="CVE-LAB-1"),
    Advisory("ACME-BA-2026-0002", "bugfix", "", "2026-02-02 00:00:00",
             "acme-agent bug fix update", _rpm("acme-agent", "1.1")),
    Advisory("ACME-EA-2026-0003", "enhancement", "", "2026-02-16 00:00:00",
             "acme-kernel enhancement update", _rpm("acme-kernel", "1.1"),
             reboot_suggested=True),
)


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise LabSetupError(f"'{tool}' is missing: run 'apt-get install {package}' as root")


def _spec(pkg: Rpm) -> str:
    doc = f"/usr/share/doc/{pkg.name}"
    parts = [
        f"Name: {pkg.name}", f"Version: {pkg.version}", f"Release: {RELEASE}",
        f"Summary: {pkg.summary}", "License: MIT", "BuildArch: noarch",
        *(f"Provides: {p}" for p in pkg.provides),
        *(f"Requires: {r}" for r in pkg.requires),
        "URL: https://lab.invalid/acme", "Packager: Orchestrator Lab <lab@localhost>", "",
        "%description", f"{pkg.summary} (orchestrator lab package).", "",
        "%install", f"mkdir -p %{{buildroot}}{doc}",
        f"echo {pkg.version} > %{{buildroot}}{doc}/VERSION", "",
        "%files", f"{doc}/VERSION", "",
    ]
    if pkg.pre:
        parts += ["%pre", pkg.pre]
    if pkg.post:
        parts += ["%post", pkg.post]
    return "\n".join(parts) + "\n"


def build_rpm(pkg: Rpm, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        spec = top / f"{pkg.name}.spec"
        spec.write_text(_spec(pkg))
        proc = subprocess.run(
            ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
             "--define", "_buildhost lab.invalid", "--define", "__os_install_post %{nil}",
             str(spec)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        built = top / "RPMS" / "noarch" / pkg.filename
        if proc.returncode != 0 or not built.exists():
            raise LabSetupError(f"rpmbuild failed for {pkg.name}-{pkg.version}: "
                                f"{(proc.stderr or proc.stdout).strip()[-200:]}")
        out = out_dir / pkg.filename
        shutil.move(str(built), out)
    return out


def updateinfo_xml() -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<updates>"]
    for adv in ADVISORIES:
        p = adv.pkg
        out.append(f'  <update from="lab@localhost" status="final" type="{adv.type}" '
                   'version="1">')
        out.append(f"    <id>{escape(adv.id)}</id>")
        out.append(f"    <title>{escape(adv.title)}</title>")
        if adv.severity:
            out.append(f"    <severity>{escape(adv.severity)}</severity>")
        out.append("    <release>Acme Lab</release>")
        out.append(f'    <issued date="{adv.issued}"/>')
        out.append(f'    <updated date="{adv.issued}"/>')
        out.append("    <references>")
        if adv.cve:
            out.append(f'      <reference href="https://lab.invalid/{adv.cve}" id="{adv.cve}" '
                       f'type="cve" title="{adv.cve}"/>')
        out.append("    </references>")
        out.append(f"    <description>{escape(p.summary)}</description>")
        out.append("    <pkglist>")
        out.append('      <collection short="acme-lab">')
        out.append("        <name>Acme Lab</name>")
        out.append(f"        <package name={quoteattr(p.name)} version={quoteattr(p.version)} "
                   f'release="{RELEASE}" epoch="0" arch="noarch" '
                   f"src={quoteattr(f'{p.name}-{p.version}-{RELEASE}.src.rpm')}>")
        out.append(f"          <filename>{escape(p.filename)}</filename>")
        if adv.reboot_suggested:
            out.append("          <reboot_suggested>True</reboot_suggested>")
        out.append("        </package>")
        out.append("      </collection>")
        out.append("    </pkglist>")
        out.append("  </update>")
    out.append("</updates>")
    return "\n".join(out) + "\n"


def build_rpm_repo(repo_root: Path, key: LabKey) -> Path:
    """Build repo_root/rpm (packages, repodata with updateinfo, signatures) inside a
    `key.session()`; returns the folder of 1.0 RPMs the RPM hosts have installed."""
    for tool, package in (("rpmbuild", "rpm"), ("createrepo_c", "createrepo-c"),
                          ("modifyrepo_c", "createrepo-c")):
        _need(tool, package)
    repo = repo_root / "rpm"
    packages = repo / "Packages"
    packages.mkdir(parents=True, exist_ok=True)
    initial = repo_root / "rpm-initial"
    initial.mkdir(parents=True, exist_ok=True)
    built = [build_rpm(pkg, packages) for pkg in RPMS]
    key.sign_rpms(built)
    for pkg, path in zip(RPMS, built, strict=True):
        if pkg.name in INSTALLED and pkg.version in ("1.0", RELEASE_RPM.version):
            shutil.copy2(path, initial / path.name)
    _run(["createrepo_c", "--quiet", "--simple-md-filenames", "--no-database", str(repo)])
    with tempfile.TemporaryDirectory() as tmp:
        info = Path(tmp) / "updateinfo.xml"
        info.write_text(updateinfo_xml())
        _run(["modifyrepo_c", "--simple-md-filenames", "--mdtype", "updateinfo",
              str(info), str(repo / "repodata")])
    repomd = repo / "repodata" / "repomd.xml"
    key.detach_sign(repomd, repomd.with_name("repomd.xml.asc"), armor=True)
    key.export_public(repomd.with_name("repomd.xml.key"), armor=True)
    return initial


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabSetupError(f"{argv[0]} failed: {(proc.stderr or proc.stdout).strip()[-200:]}")


def yum_repo(address: str, port: int) -> str:
    """/etc/yum.repos.d/lab.repo of the dnf hosts: package signatures checked against the lab
    key in the rpmdb. repo_gpgcheck stays off, as on RHEL and Fedora: dnf keeps repository
    keys in a keyring per repository cache (named after a hash of the baseurl) and asks before
    importing, so a fresh host could not refresh non-interactively."""
    return (f"[{REPO_ID}]\nname={REPO_NAME}\nbaseurl={_url(address, port)}\nenabled=1\n"
            "gpgcheck=1\nrepo_gpgcheck=0\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-lab\n"
            "metadata_expire=0\nskip_if_unavailable=0\n")


def zypp_repo(address: str, port: int) -> str:
    """/etc/zypp/repos.d/lab.repo of the zypper hosts: repomd.xml (repomd.xml.asc) and package
    signatures checked; libzypp trusts the lab key because it is in the rpmdb."""
    return (f"[{REPO_ID}]\nname={REPO_NAME}\nbaseurl={_url(address, port)}\nenabled=1\n"
            "autorefresh=1\ntype=rpm-md\ngpgcheck=1\nrepo_gpgcheck=1\npkg_gpgcheck=1\n"
            "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-lab\nkeeppackages=0\n")


def _url(address: str, port: int) -> str:
    return f"http://{address}/rpm/" if port == 80 else f"http://{address}:{port}/rpm/"
