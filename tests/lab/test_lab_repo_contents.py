"""What the lab repositories and flavours declare (no root needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.lab.flavours import FLAVOURS, LAYER_FILES_BY_FLAVOUR
from orchestrator.lab.repo import sources_list
from orchestrator.lab.rpmrepo import ADVISORIES, RPMS, updateinfo_xml, yum_repo, zypp_repo


def test_apt_sources_pin_the_lab_key():
    text = sources_list("127.20.3.1", 8080)
    assert "trusted=yes" not in text
    assert text.splitlines() == [
        "deb [signed-by=/etc/apt/keyrings/orchestrator-lab.gpg] http://127.20.3.1:8080/debian "
        f"{suite} main" for suite in ("bookworm", "bookworm-security")]


def test_rpm_repositories_check_signatures():
    dnf = dict(line.split("=", 1) for line in yum_repo("127.20.3.1", 80).splitlines()[1:])
    assert (dnf["baseurl"], dnf["gpgcheck"]) == ("http://127.20.3.1/rpm/", "1")
    zyp = dict(line.split("=", 1) for line in zypp_repo("127.20.3.1", 80).splitlines()[1:])
    assert (zyp["gpgcheck"], zyp["repo_gpgcheck"], zyp["pkg_gpgcheck"]) == ("1", "1", "1")


def test_updateinfo_describes_each_advisory():
    root = ET.fromstring(updateinfo_xml())
    got = {u.findtext("id"): (u.get("type"), u.findtext("severity"),
                              u.find("issued").get("date"),
                              u.find("pkglist/collection/package").get("name"),
                              u.find("pkglist/collection/package/reboot_suggested") is not None)
           for u in root.iter("update")}
    assert got == {
        "ACME-SA-2026-0001": ("security", "Important", "2026-01-12 00:00:00", "acme-tls", False),
        "ACME-BA-2026-0002": ("bugfix", None, "2026-02-02 00:00:00", "acme-agent", False),
        "ACME-EA-2026-0003": ("enhancement", None, "2026-02-16 00:00:00", "acme-kernel", True)}
    # every advisory names a package the repository really has
    assert {(a.pkg.name, a.pkg.version) for a in ADVISORIES} <= {(r.name, r.version) for r in RPMS}


def test_rpm_flavours_do_not_look_like_debian():
    for flavour in ("rpm", "zypper"):
        files = LAYER_FILES_BY_FLAVOUR[flavour]
        # Ansible calls a host whose os-release mentions Debian "Debian" and forces apt
        assert "Debian" not in files["etc/os-release"][0]
        assert files["etc/os-release"] == files["usr/lib/os-release"]
        assert files["etc/rpm/macros"][0] == "%_dbpath /var/lib/rpm\n"
    octets = [o for f in FLAVOURS.values() for o in (f.host_octet, f.bmc_octet)]
    assert len(set(octets)) == len(octets) and not {2, 3} & set(octets)  # Windows, repository
