"""The base root filesystems of the lab hosts: built once by debootstrap, cached as zstd tarballs.

The cache lives in ~/.cache/orchestrator/lab/ (or $ORCHESTRATOR_LAB_CACHE); the unpacked tree
next to the tarball is the read-only lower layer of every host's overlayfs. One variant per
package manager: `debian` (apt hosts), `dnf` (Debian's rpm, dnf and dnf-plugins-core) and
`zypper` (Debian's rpm and zypper; Debian's dnf-plugins-core and zypper both ship
needs-restarting, so they cannot share a tree) and `fwupd` (the debian packages plus fwupd and
the system D-Bus, for in-band firmware). A variant is built only when a host needs it,
under a lock, so concurrent `lab up`s build it once.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.lab.errors import LabSetupError

SUITE = "bookworm"
PACKAGES = ("python3", "python3-apt", "openssh-server")
ROOTFS_VERSION = "v1"  # bump when PACKAGES or the post-processing change
# variant -> (debootstrap --include packages, cache name)
VARIANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "debian": (PACKAGES, f"rootfs-{SUITE}-{ROOTFS_VERSION}"),
    "dnf": (("python3", "openssh-server", "rpm", "dnf", "dnf-plugins-core"),
            f"rootfs-{SUITE}-dnf-v1"),
    "zypper": (("python3", "openssh-server", "rpm", "zypper"), f"rootfs-{SUITE}-zypper-v1"),
    # fwupd with its test device (orchestrator.lab.fwupd). fwupd depends on the virtual
    # systemd-sysusers: name its small provider, or the full systemd would be pulled in.
    "fwupd": (PACKAGES + ("fwupd", "dbus", "systemd-standalone-sysusers"),
              f"rootfs-{SUITE}-fwupd-v1"),
}


def cache_dir() -> Path:
    env = os.environ.get("ORCHESTRATOR_LAB_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "orchestrator" / "lab"
    return base


def debian_mirror() -> str:
    """The Debian mirror apt on this machine already uses (read at run time, never stored)."""
    env = os.environ.get("ORCHESTRATOR_LAB_MIRROR")
    if env:
        return env
    candidates = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in match.group(1):
                return match.group(1)
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if "security" not in match.group(1) and "security" not in match.group(2):
                return match.group(1)
    raise LabSetupError(
        "no Debian mirror found in /etc/apt/sources.list(.d); set ORCHESTRATOR_LAB_MIRROR"
    )


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise LabSetupError(f"'{tool}' is missing: run 'apt-get install {package}' as root")


def ensure_rootfs(log=print, variant: str = "debian") -> Path:
    """Return the unpacked rootfs of `variant`, building or unpacking the cached tarball if
    needed."""
    packages, name = VARIANTS[variant]
    cache = cache_dir()
    tree = cache / name
    if (tree / ".lab-complete").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `lab up` may be building it right now
        if (tree / ".lab-complete").exists():
            return tree
        return _unpack(cache / f"{name}.tar.zst", tree, packages, log)


def _unpack(tarball: Path, tree: Path, packages: tuple[str, ...], log) -> Path:
    cache = tarball.parent
    _need("zstd", "zstd")
    if not tarball.exists():
        _build_tarball(tarball, packages, log)
    log(f"lab: unpacking {tarball.name}")
    tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache))
    try:
        subprocess.run(
            ["tar", "--zstd", "-xpf", str(tarball), "-C", str(tmp), "--numeric-owner"],
            check=True, capture_output=True,
        )
        (tmp / ".lab-complete").write_text(ROOTFS_VERSION + "\n")
        if tree.exists():
            shutil.rmtree(tree)
        tmp.rename(tree)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LabSetupError(
            f"cannot unpack {tarball}: {exc.stderr.decode(errors='replace').strip()[:200]}; "
            "delete it and run 'lab up' again"
        ) from exc
    return tree


def _build_tarball(tarball: Path, packages: tuple[str, ...], log) -> None:
    _need("debootstrap", "debootstrap")
    mirror = debian_mirror()
    build = Path(tempfile.mkdtemp(prefix="build-", dir=tarball.parent))
    root = build / "root"
    log(f"lab: building the root filesystem {tarball.name} with debootstrap (first run only, "
        "about a minute)")
    try:
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
             SUITE, str(root), mirror],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise LabSetupError("debootstrap failed: " + " | ".join(tail))
        _post_process(root)
        tmp_tar = tarball.with_suffix(".tmp")
        subprocess.run(
            ["tar", "--zstd", "-cpf", str(tmp_tar), "--numeric-owner", "-C", str(root), "."],
            check=True, capture_output=True,
        )
        tmp_tar.rename(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _post_process(root: Path) -> None:
    """Make the tree host-neutral: no host keys, no outside apt sources, no caches."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for path in (root / "var/lib/apt/lists").glob("*"):
        if path.is_file():
            path.unlink()
    for path in (root / "var/cache/apt/archives").glob("*.deb"):
        path.unlink()
    (root / "etc/apt/sources.list").write_text("")
    for path in (root / "etc/apt/sources.list.d").glob("*"):
        path.unlink()
