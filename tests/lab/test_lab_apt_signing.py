"""The lab apt repository is signed with the lab's own key and the hosts trust only that key."""

from __future__ import annotations

import gzip
import subprocess

import pytest

from orchestrator.lab.repo import KEYRING, sources_list
from orchestrator.lab.signing import LabKey

DIST = "debian/dists/bookworm"


def _apt_update(lab, host: str, port: int) -> subprocess.CompletedProcess:
    address, _ = lab.repo_address
    lab.ssh(host, f"cat > /etc/apt/sources.list.d/lab.list <<'EOF'\n"
                  f"{sources_list(address, port)}EOF")
    return lab.ssh(host, "apt-get update", check=False)


def test_hosts_trust_only_the_lab_key(lab_fleet, lab_fresh_host, tmp_path):
    host = lab_fresh_host
    sources = lab_fleet.ssh(host, "cat /etc/apt/sources.list.d/lab.list").stdout
    assert "trusted=yes" not in sources
    assert sources.count(f"[signed-by=/{KEYRING}]") == 2
    # the lab key is not among the keys apt trusts for every source (only Debian's are)
    trusted = lab_fleet.ssh(host, "ls /etc/apt/trusted.gpg.d/").stdout.split()
    assert trusted and all(name.startswith("debian-archive-") for name in trusted)
    assert lab_fleet.ssh(host, "test -e /etc/apt/trusted.gpg", check=False).returncode == 1
    proc = lab_fleet.ssh(host, "apt-get update")
    assert "W:" not in proc.stdout + proc.stderr and "E:" not in proc.stdout + proc.stderr
    # the InRelease the host accepted is the lab key's signature (checked here with gpgv)
    keyring = tmp_path / "lab.gpg"
    keyring.write_bytes(subprocess.run(lab_fleet.ssh_argv(host) + [f"cat /{KEYRING}"],
                                       capture_output=True, check=True).stdout)
    for suite in ("bookworm", "bookworm-security"):
        dist = lab_fleet.root / "repo" / "debian" / "dists" / suite
        for argv in (["gpgv", "--keyring", str(keyring), str(dist / "InRelease")],
                     ["gpgv", "--keyring", str(keyring), str(dist / "Release.gpg"),
                      str(dist / "Release")]):
            check = subprocess.run(argv, capture_output=True, text=True)
            assert check.returncode == 0, check.stderr


def test_signing_key_is_private_to_the_lab_folder(lab_fleet):
    home = lab_fleet.root / "gnupg"
    assert home.stat().st_mode & 0o777 == 0o700
    secret = list((home / "private-keys-v1.d").iterdir())
    assert secret and all(p.stat().st_mode & 0o777 == 0o600 for p in secret)
    # no gpg-agent (or anything else) of the lab's key runs once the lab is up
    assert not [p for p in lab_fleet.leftovers()["processes"] if "gpg" in p]


def _edit_packages(folder):
    index = folder / DIST / "main/binary-amd64"
    data = (index / "Packages").read_bytes() + b"\nPackage: evil\nVersion: 6.6\n"
    (index / "Packages").write_bytes(data)
    (index / "Packages.gz").write_bytes(gzip.compress(data, mtime=0))


def _edit_inrelease(folder):
    path = folder / DIST / "InRelease"
    path.write_text(path.read_text().replace("Label: Acme", "Label: Evil", 1))


def _foreign_key(folder, tmp_path):
    other = LabKey(tmp_path / "other-gnupg")
    with other.session():
        other.ensure()
        dist = folder / DIST
        other.clearsign(dist / "Release", dist / "InRelease")
        other.detach_sign(dist / "Release", dist / "Release.gpg")


def _unsigned(folder):
    (folder / DIST / "InRelease").unlink()
    (folder / DIST / "Release.gpg").unlink()


@pytest.mark.parametrize("tamper, refusal", [
    (_edit_packages, "File has unexpected size"),
    (_edit_inrelease, "BADSIG"),
    (_foreign_key, "NO_PUBKEY"),
    (_unsigned, "is not signed"),
], ids=["index-edited-after-signing", "inrelease-edited", "signed-by-another-key", "unsigned"])
def test_tampered_repository_is_refused(lab_fleet, lab_fresh_host, repo_copy, tmp_path,
                                        tamper, refusal):
    host = lab_fresh_host
    pristine, port = repo_copy()
    assert _apt_update(lab_fleet, host, port).returncode == 0  # the copy as served is fine
    folder, port = repo_copy()
    if tamper is _foreign_key:
        tamper(folder, tmp_path)
    else:
        tamper(folder)
    proc = _apt_update(lab_fleet, host, port)
    assert proc.returncode == 100, proc.stdout + proc.stderr
    assert refusal in proc.stdout + proc.stderr
    # nothing of the tampered copy reached the host's package lists
    assert lab_fleet.ssh(host, "apt-cache show evil", check=False).returncode == 100
    # (apt leaves a refused download in lists/partial/, which it never reads)
    used = lab_fleet.ssh(host, "find /var/lib/apt/lists -maxdepth 1 -type f "
                               "-exec grep -l 'Label: Evil' {} +", check=False)
    assert (used.returncode, used.stdout) == (1, "")  # grep: no file matched
