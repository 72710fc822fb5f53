"""The lab's apt repository: synthetic packages built with dpkg-deb, two suites, signed with the
lab key (InRelease and Release.gpg; the hosts trust only that key, through `signed-by`).

Installed on every host at version 1.0 (in the shared lab layer); the repository offers:
  acme-tls     1.0+sec1 in bookworm-security (Label Acme-Security): a pending security update
  acme-agent   1.1      in bookworm (Label Acme): a pending ordinary update
  acme-kernel  1.1      in bookworm: its postinst writes /var/run/reboot-required
  acme-broken  1.1      in bookworm: its postinst fails (exit 1)
  acme-extra   1.0      in bookworm: not installed (for install tests)
  acme-app     1.0, 1.1 in bookworm: not installed; 1.1 Depends on acme-lib (>= 2), so its
                        update pulls in a new package (tests of rejectedAction install 1.0)
  acme-lib     2.0      in bookworm: not installed; only acme-app 1.1 needs it
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from orchestrator.lab.errors import LabSetupError
from orchestrator.lab.signing import LabKey

COMPONENT = "main"
ARCH = "amd64"


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str
    suite: str  # "bookworm" or "bookworm-security"
    postinst: str = ""
    description: str = "lab package"
    depends: str = ""  # a Depends: field, e.g. "acme-lib (>= 2)"


REBOOT_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
  mkdir -p /var/run
  touch /var/run/reboot-required
  echo acme-kernel >> /var/run/reboot-required.pkgs
fi
"""
FAIL_POSTINST = """#!/bin/sh
echo "acme-broken: postinst refuses to configure" >&2
exit 1
"""

PACKAGES: tuple[Pkg, ...] = (
    Pkg("acme-tls", "1.0", "bookworm", description="TLS library (security update pending)"),
    Pkg("acme-tls", "1.0+sec1", "bookworm-security", description="TLS library, fixes CVE-LAB-1"),
    Pkg("acme-agent", "1.0", "bookworm", description="monitoring agent"),
    Pkg("acme-agent", "1.1", "bookworm", description="monitoring agent, ordinary update"),
    Pkg("acme-kernel", "1.0", "bookworm", description="needs a reboot after update"),
    Pkg("acme-kernel", "1.1", "bookworm", REBOOT_POSTINST, "needs a reboot after update"),
    Pkg("acme-broken", "1.0", "bookworm", description="update whose postinst fails"),
    Pkg("acme-broken", "1.1", "bookworm", FAIL_POSTINST, "update whose postinst fails"),
    Pkg("acme-extra", "1.0", "bookworm", description="not installed by default"),
    Pkg("acme-app", "1.0", "bookworm", description="application (not installed by default)"),
    Pkg("acme-app", "1.1", "bookworm", description="application, needs acme-lib 2",
        depends="acme-lib (>= 2)"),
    Pkg("acme-lib", "2.0", "bookworm", description="library only acme-app 1.1 needs"),
)
INSTALLED = ("acme-tls", "acme-agent", "acme-kernel", "acme-broken")
SUITES = {"bookworm": "Acme", "bookworm-security": "Acme-Security"}
# where the hosts keep the lab key (the only key `signed-by` lets sign the lab repository)
KEYRING = "etc/apt/keyrings/orchestrator-lab.gpg"


def _deb_name(pkg: Pkg) -> str:
    return f"{pkg.name}_{pkg.version}_all.deb"


def build_deb(pkg: Pkg, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN/control").write_text(
            f"Package: {pkg.name}\nVersion: {pkg.version}\nArchitecture: all\n"
            "Maintainer: Orchestrator Lab <lab@localhost>\nSection: misc\nPriority: optional\n"
            + (f"Depends: {pkg.depends}\n" if pkg.depends else "")
            + f"Description: {pkg.description}\n"
        )
        if pkg.postinst:
            script = root / "DEBIAN/postinst"
            script.write_text(pkg.postinst)
            script.chmod(0o755)
        doc = root / "usr/share/doc" / pkg.name
        doc.mkdir(parents=True)
        (doc / "VERSION").write_text(pkg.version + "\n")
        out = out_dir / _deb_name(pkg)
        proc = subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(out)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LabSetupError(f"dpkg-deb failed for {pkg.name}: {proc.stderr.strip()[:200]}")
    return out


def _control_of(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True
    ).stdout.strip()


def build_repo(repo_root: Path, key: LabKey) -> Path:
    """Build repo_root/debian with pool/ and dists/, each suite signed with `key` (call inside
    `key.session()`); returns the folder of 1.0 debs to install."""
    debian = repo_root / "debian"
    pool = debian / "pool" / COMPONENT
    pool.mkdir(parents=True, exist_ok=True)
    installed_dir = repo_root / "initial"
    installed_dir.mkdir(parents=True, exist_ok=True)
    by_suite: dict[str, list[str]] = {suite: [] for suite in SUITES}
    for pkg in PACKAGES:
        deb = build_deb(pkg, pool)
        data = deb.read_bytes()
        stanza = (
            _control_of(deb)
            + f"\nFilename: pool/{COMPONENT}/{deb.name}\nSize: {len(data)}\n"
            + f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            + f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
        by_suite[pkg.suite].append(stanza)
        if pkg.name in INSTALLED and pkg.version == "1.0":
            (installed_dir / deb.name).write_bytes(data)
    for suite, label in SUITES.items():
        dist = debian / "dists" / suite
        _write_suite(dist, suite, label, by_suite[suite])
        key.clearsign(dist / "Release", dist / "InRelease")
        key.detach_sign(dist / "Release", dist / "Release.gpg", armor=True)
    return installed_dir


def _write_suite(dist: Path, suite: str, label: str, stanzas: list[str]) -> None:
    binary = dist / COMPONENT / f"binary-{ARCH}"
    binary.mkdir(parents=True, exist_ok=True)
    packages = ("\n".join(stanzas) + "\n").encode()
    (binary / "Packages").write_bytes(packages)
    (binary / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    lines = [
        "Origin: Acme", f"Label: {label}", f"Suite: {suite}", f"Codename: {suite}",
        f"Date: {formatdate(usegmt=True)}", f"Architectures: {ARCH} all",
        f"Components: {COMPONENT}", "Description: orchestrator lab repository", "SHA256:",
    ]
    for rel in (f"{COMPONENT}/binary-{ARCH}/Packages", f"{COMPONENT}/binary-{ARCH}/Packages.gz"):
        blob = (dist / rel).read_bytes()
        lines.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} {rel}")
    (dist / "Release").write_text("\n".join(lines) + "\n")


def sources_list(address: str, port: int) -> str:
    url = f"http://{address}:{port}/debian" if port != 80 else f"http://{address}/debian"
    return "".join(f"deb [signed-by=/{KEYRING}] {url} {suite} {COMPONENT}\n" for suite in SUITES)
