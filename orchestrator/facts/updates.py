"""Pending updates: `updates.pending` (sh: apt, dnf, zypper) and `win.updates.pending`
(PowerShell: the Windows Update Agent), each a fixed command plus a pure parser.

The sh command refreshes the package metadata first (`apt-get update`, `dnf makecache`,
`zypper refresh`) unless the one argument `norefresh` is given; a refresh that fails makes the
fact an error with the package manager's own one-line reason, never an empty list. The command
is fixed: no policy value reaches the shell. Every sub-command's stdout comes back as lines
`@<tag> <text>`, its stderr as `@<tag>-err <text>` and its exit status as `@<tag>-rc N`, so the
parser knows which tool said what and that each one ran to the end.

Package names, versions and advisory texts come from the host and are kept as data.
`PendingUpdate` lives here, where the parsers make it; `orchestrator.patching.model` re-exports
it (the patching layer sits above facts, so facts may not import it).
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from orchestrator.facts.base import Fact, FactArgError, FactParseError, Output, register

CLASSIFICATIONS = ("security", "bugfix", "enhancement", "other")
SEVERITIES = ("critical", "high", "medium", "low")
# MSRC Critical/Important/Moderate/Low, dnf and zypper severities (any case), and the plain
# words; "none"/"unspecified"/"" mean no severity.
SEVERITY_WORDS = {
    "critical": "critical",
    "important": "high",
    "high": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
}
_NO_SEVERITY = {"", "none", "unspecified", "unknown", "n/a"}


@dataclass(frozen=True)
class PendingUpdate:
    """One update a host is missing. Windows: name is the KB ("KB5035857"), available its title."""

    name: str
    current: str | None  # installed version; None: newly installed (a dependency) or Windows
    available: str
    classification: str  # security | bugfix | enhancement | other
    severity: str | None  # critical | high | medium | low | None
    released: date | None  # dnf advisory date, zypper issue date, Windows deployment date
    source: str  # apt | dnf | zypper | windows
    advisory: str | None = None  # advisory/patch id (RHSA-..., SUSE-...) or KB number
    reboot_suggested: bool = False
    origin: str = ""  # apt origin text (Label:Suite), dnf repo id, zypper repo alias
    arch: str | None = None


@dataclass(frozen=True)
class PendingUpdates:
    manager: str  # apt | dnf | zypper | windows
    refreshed: bool  # the metadata was refreshed before listing
    updates: tuple[PendingUpdate, ...] = ()


def normalise_severity(text: object) -> str | None:
    """critical | high | medium | low, or None for no/unknown severity. Raises on other words."""
    if text is None:
        return None
    word = str(text).strip().lower()
    if word in _NO_SEVERITY:
        return None
    if word in SEVERITY_WORDS:
        return SEVERITY_WORDS[word]
    raise FactParseError(f"unknown severity {str(text)[:40]!r}")


def _rank(classification: str, severity: str | None) -> tuple[int, int]:
    """Higher is more important: security > bugfix > enhancement > other, then severity."""
    sev = SEVERITIES.index(severity) if severity else len(SEVERITIES)
    return (-CLASSIFICATIONS.index(classification), -sev)


# -- the command ---------------------------------------------------------------------------
def _check(args: tuple[str, ...]) -> None:
    if args not in ((), ("norefresh",)):
        raise FactArgError("the only argument is 'norefresh'")


UPDATES_SH = r"""R=__REFRESH__
ids=" $(sed -n 's/^ID=//p; s/^ID_LIKE=//p' /etc/os-release 2>/dev/null |
  tr -d "\"'" | tr '\n' ' ') "
case $ids in
  *" suse "*|*" sles "*|*" opensuse"*) order='zypper dnf apt-get' ;;
  *" rhel "*|*" fedora "*|*" centos "*) order='dnf zypper apt-get' ;;
  *) order='apt-get dnf zypper' ;;
esac
m=
for c in $order; do if command -v "$c" >/dev/null 2>&1; then m=$c; break; fi; done
_e=$(mktemp 2>/dev/null) || _e=
run() {
  _t=$1; shift
  if [ -n "$_e" ]; then _o=$("$@" 2>"$_e"); _r=$?; else _o=$("$@" 2>&1); _r=$?; fi
  printf '%s\n' "$_o" | sed "s/^/@$_t /"
  if [ -n "$_e" ]; then sed "s/^/@$_t-err /" "$_e"; fi
  echo "@$_t-rc $_r"
}
case $m in
apt-get)
  echo '@manager apt'
  if [ "$R" = 1 ]; then run refresh apt-get -q update; fi
  run list apt-get -s -o Debug::NoLocking=1 --ignore-hold dist-upgrade ;;
dnf)
  echo '@manager dnf'
  s='--setopt=*.skip_if_unavailable=False'
  if [ "$R" = 1 ]; then run refresh dnf -q "$s" makecache; fi
  run avail dnf -q -C "$s" repoquery --upgrades --latest-limit 1 \
    --qf '%{name}\t%{epoch}\t%{version}-%{release}\t%{arch}\t%{repoid}'
  run inst rpm -qa --qf '%{NAME}\t%{EPOCH}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n'
  run adv dnf -q -v -C "$s" updateinfo list --updates ;;
zypper)
  echo '@manager zypper'
  if [ "$R" = 1 ]; then run refresh zypper -n refresh; fi
  run updates zypper -n --no-refresh --xmlout list-updates
  run patches zypper -n --no-refresh --xmlout list-patches
  names=$(printf '%s\n' "$_o" | grep -o '<update kind="patch" name="[^"]*"' |
    sed 's/.* name="//; s/"$//')
  if [ -n "$names" ]; then
    _ifs=$IFS; IFS='
'; set -f; set -- $names; set +f; IFS=$_ifs
    run info zypper -n --no-refresh --xmlout info -t patch -- "$@"
  fi ;;
*) echo '@manager none' ;;
esac
if [ -n "$_e" ]; then rm -f "$_e"; fi
true"""


def updates_cmd(args: tuple[str, ...]) -> str:
    return UPDATES_SH.replace("__REFRESH__", "0" if "norefresh" in args else "1")


# -- sections ------------------------------------------------------------------------------
@dataclass
class _Section:
    out: list[str]
    err: list[str]
    rc: int | None = None

    def first_error(self, prefer: tuple[str, ...] = ()) -> str:
        lines = [x.strip() for x in self.err + self.out if x.strip()]
        for p in prefer:
            for x in lines:
                if x.startswith(p):
                    return x
        return lines[0] if lines else f"exit status {self.rc}"


_TAG = re.compile(r"^@([a-z]+)(-err|-rc)?(?: (.*))?$")


def _sections(stdout: str) -> tuple[str, dict[str, _Section]]:
    manager = ""
    secs: dict[str, _Section] = {}
    # split on "\n" alone: str.splitlines() would also break at U+2028 and friends, which a
    # package description may hold
    for n, line in enumerate(stdout.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        m = _TAG.match(line)
        if not m:
            raise FactParseError(f"line {n}: unexpected output {line[:60]!r}")
        tag, kind, text = m.group(1), m.group(2), m.group(3) or ""
        if tag == "manager" and kind is None:
            manager = text.strip()
            continue
        sec = secs.setdefault(tag, _Section([], []))
        if kind is None:
            sec.out.append(text)
        elif kind == "-err":
            sec.err.append(text)
        elif sec.rc is None and re.fullmatch(r"\d{1,3}", text.strip()):
            sec.rc = int(text)
        else:
            raise FactParseError(f"line {n}: bad exit status line {line[:60]!r}")
    return manager, secs


def _need(secs: dict[str, _Section], tag: str, what: str) -> _Section:
    sec = secs.get(tag)
    if sec is None or sec.rc is None:
        raise FactParseError(f"{what}: output missing or cut short")
    if sec.rc != 0:
        raise FactParseError(f"{what} failed (exit {sec.rc}): {sec.first_error(('Error', 'E:'))}")
    return sec


def parse_updates(out: Output, args: tuple[str, ...]) -> PendingUpdates:
    if out.rc != 0:
        raise FactParseError(f"update listing failed: {out.first_error()}")
    manager, secs = _sections(out.stdout)
    refresh = "norefresh" not in args
    if manager == "none":
        raise FactParseError("none of apt-get, dnf or zypper found on the host")
    if manager not in ("apt", "dnf", "zypper"):
        raise FactParseError("update listing printed no @manager line")
    if refresh:
        _check_refresh(manager, secs.get("refresh"))
    elif "refresh" in secs:
        raise FactParseError("refreshed although told not to")
    parse = {"apt": _parse_apt, "dnf": _parse_dnf, "zypper": _parse_zypper}[manager]
    updates = sorted(parse(secs), key=lambda u: (u.name, u.arch or ""))
    return PendingUpdates(manager, refresh, tuple(updates))


_APT_REFRESH_FAIL = re.compile(
    r"^(E: |Err:|W: Failed to fetch|W: GPG error|W: Some index files failed)"
)
_APT_GENERIC = ("E: Some index files failed", "W: Some index files failed")


def _check_refresh(manager: str, sec: _Section | None) -> None:
    tool = {"apt": "apt-get update", "dnf": "dnf makecache", "zypper": "zypper refresh"}[manager]
    if sec is None or sec.rc is None:
        raise FactParseError(f"{tool}: output missing or cut short")
    lines = [x.strip() for x in sec.out + sec.err if x.strip()]
    if manager == "apt":
        bad = [x for x in lines if _APT_REFRESH_FAIL.match(x)]
        if sec.rc == 0 and not bad:
            return
        specific = [x for x in bad if x.startswith(("E:", "W:")) and not x.startswith(_APT_GENERIC)]
        reason = (specific or bad or lines or [f"exit status {sec.rc}"])[0]
    elif sec.rc == 0:
        return
    elif manager == "dnf":
        reason = next((x for x in lines if x.startswith("Error:")), None) or (
            lines[0] if lines else f"exit status {sec.rc}"
        )
    else:
        first = next((x for x in lines if not x.startswith(("Retrieving", "Building"))), "")
        detail = next((x for x in lines if x.startswith("Error message:")), "")
        reason = " ".join(x for x in (first, detail) if x) or f"exit status {sec.rc}"
    raise FactParseError(f"{tool} failed (exit {sec.rc}): {reason}")


# -- apt -----------------------------------------------------------------------------------
# pkgSimulate::Describe: "Inst name [current] (candidate Label:Version/Suite, ... [arch])"
_APT_INST = re.compile(r"^Inst (\S+)(?: \[(\S+)\])? \((\S+) (.+) \[([^\]\s]+)\]\)(?: \[.*\])?$")
_APT_SUMMARY = re.compile(
    r"^(\d+) upgraded, (\d+) newly installed, (?:(\d+) downgraded, )?(?:(\d+) reinstalled, )?"
    r"(\d+) to remove and (\d+) not upgraded\.$"
)


def _parse_apt(secs: dict[str, _Section]) -> list[PendingUpdate]:
    sec = _need(secs, "list", "apt-get -s dist-upgrade")
    updates: list[PendingUpdate] = []
    expected: int | None = None
    for line in sec.out:
        if line.startswith("Inst "):
            m = _APT_INST.match(line)
            if not m:
                raise FactParseError(f"unexpected apt-get line {line[:80]!r}")
            name, current, available, origin, arch = m.groups()
            security = "security" in origin.lower()
            updates.append(
                PendingUpdate(
                    name=name,
                    current=current,
                    available=available,
                    classification="security" if security else "other",
                    severity=None,
                    released=None,
                    source="apt",
                    origin=origin,
                    arch=arch,
                )
            )
        elif (s := _APT_SUMMARY.match(line.strip())) is not None:
            expected = sum(int(g or 0) for g in s.groups()[:4])
    if expected is None:
        raise FactParseError("apt-get -s printed no summary line (N upgraded, ...)")
    if expected != len(updates):
        raise FactParseError(
            f"apt-get -s announced {expected} packages but listed {len(updates)}"
        )
    return updates


# -- dnf -----------------------------------------------------------------------------------
_ADV = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}$")
_ADV_LABEL = {"bugfix": "bugfix", "enhancement": "enhancement", "newpackage": "enhancement"}


def _looks_like_row(line: str) -> bool:
    words = line.split()
    return len(words) >= 2 and (words[1] in _ADV_LABEL or words[1] in ("security", "unknown")
                                or words[1].endswith("/Sec."))


def _evr(epoch: str, vr: str) -> str:
    return vr if epoch in ("", "0", "(none)") else f"{epoch}:{vr}"


def _split_nevra(nevra: str) -> tuple[str, str]:
    """'name-[epoch:]version-release.arch' -> (name, arch)."""
    nevr, dot, arch = nevra.rpartition(".")
    parts = nevr.rsplit("-", 2)
    if not dot or len(parts) != 3 or not all(parts):
        raise FactParseError(f"cannot read package {nevra[:80]!r} in dnf updateinfo")
    return parts[0], arch


def _parse_dnf(secs: dict[str, _Section]) -> list[PendingUpdate]:
    avail = _need(secs, "avail", "dnf repoquery --upgrades")
    inst = _need(secs, "inst", "rpm -qa")
    adv = _need(secs, "adv", "dnf updateinfo list")
    installed: dict[tuple[str, str], str] = {}
    by_name: dict[str, str] = {}
    if not any(x.strip() for x in inst.out):
        raise FactParseError(f"rpm -qa listed no installed packages: {inst.first_error()}")
    for line in inst.out:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise FactParseError(f"unexpected rpm -qa line {line[:80]!r}")
        name, epoch, vr, arch = parts
        evr = _evr(epoch, vr)
        for table, key in ((installed, (name, arch)), (by_name, name)):
            old = table.get(key)  # type: ignore[arg-type]
            if old is None or evr_compare(evr, old) > 0:
                table[key] = evr  # type: ignore[index]
    advisories: dict[tuple[str, str], list[tuple[str, str, str | None, date | None]]] = {}
    for line in adv.out:
        if not line.strip():
            continue
        m = _ADV.match(line.strip())
        if not m:
            # dnf -v and its plugins talk ("DNF version: 4.14.0", "Loaded plugins: ...",
            # "Excludes from versionlock plugin were not applied"): a line is an advisory row
            # gone wrong, an error, when its second word is an advisory type
            if not _looks_like_row(line):
                continue
            raise FactParseError(f"unexpected dnf updateinfo line {line[:80]!r}")
        adv_id, label, nevra, day = m.groups()
        if label.endswith("/Sec."):
            cls, sev = "security", normalise_severity(label[: -len("/Sec.")])
        else:
            cls, sev = _ADV_LABEL.get(label, "other"), None
        try:
            released: date | None = date.fromisoformat(day)
        except ValueError:
            raise FactParseError(f"bad advisory date {day!r} in dnf updateinfo") from None
        if released.year < 1980:  # libdnf prints the epoch (local time) for a date it cannot read
            released = None
        advisories.setdefault(_split_nevra(nevra), []).append((adv_id, cls, sev, released))
    updates = []
    for line in avail.out:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 5 or not parts[0]:
            raise FactParseError(f"unexpected dnf repoquery line {line[:80]!r}")
        name, epoch, vr, arch, repo = parts
        found = advisories.get((name, arch), [])
        best = max(found, key=lambda a: _rank(a[1], a[2]), default=None)
        updates.append(
            PendingUpdate(
                name=name,
                current=installed.get((name, arch)) or by_name.get(name),
                available=_evr(epoch, vr),
                classification=best[1] if best else "other",
                severity=best[2] if best else None,
                released=best[3] if best else None,
                source="dnf",
                advisory=best[0] if best else None,
                origin=repo,
                arch=arch,
            )
        )
    return updates


def evr_compare(a: str, b: str) -> int:
    """rpm's ordering of '[epoch:]version-release' strings: -1, 0 or 1."""

    def split(evr: str) -> tuple[int, str, str]:
        epoch, _, vr = evr.rpartition(":") if ":" in evr else ("0", "", evr)
        version, _, release = vr.partition("-")
        return (int(epoch) if epoch.isdigit() else 0), version, release

    ea, va, ra = split(a)
    eb, vb, rb = split(b)
    if ea != eb:
        return 1 if ea > eb else -1
    return rpmvercmp(va, vb) or rpmvercmp(ra, rb)


_DIGITS = frozenset("0123456789")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmvercmp(): digit and letter runs compared in turn, '~' sorts before anything
    (even the end), '^' after the end but before anything else."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < len(b) and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ta, tb = a[i : i + 1], b[j : j + 1]
        if ta == "~" or tb == "~":
            if ta != "~":
                return 1
            if tb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ta == "^" or tb == "^":
            if not ta:
                return -1
            if not tb:
                return 1
            if ta != "^":
                return 1
            if tb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not ta or not tb:
            break
        kind = _DIGITS if ta in _DIGITS else _ALNUM - _DIGITS
        si, sj = i, j
        while i < len(a) and a[i] in kind:
            i += 1
        while j < len(b) and b[j] in kind:
            j += 1
        sa, sb = a[si:i], b[sj:j]
        if not sb:  # different kinds: a number is newer than letters
            return 1 if kind is _DIGITS else -1
        if kind is _DIGITS:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


# -- zypper --------------------------------------------------------------------------------
def _xml(sec: _Section, what: str) -> ET.Element:
    text = "\n".join(sec.out).strip()
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FactParseError(f"{what}: XML with a DOCTYPE or ENTITY is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise FactParseError(f"{what}: not XML ({exc})") from None
    for msg in root.iter("message"):
        if msg.get("type") == "error":
            raise FactParseError(f"{what}: {' '.join((msg.text or '').split())[:200]}")
    status = root.find("update-status")
    if status is None or status.find("update-list") is None:
        raise FactParseError(f"{what}: no <update-status><update-list> in the XML")
    return status.find("update-list")  # type: ignore[return-value]


def _zypper_date(el: ET.Element) -> date | None:
    issued = el.find("issue-date")
    raw = issued.get("time_t", "") if issued is not None else ""
    if not raw.isdigit() or int(raw) == 0:
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC).date()
    except (OverflowError, ValueError, OSError):
        raise FactParseError(f"zypper patch issue date {raw[:20]!r} is out of range") from None


_PATCH_STATUS = {"needed", "optional"}


def _patch_links(sec: _Section | None) -> dict[str, list[str]]:
    """patch name -> package names (its Conflicts: `pkg < version`), from `zypper info -t patch`.
    The details come as the text of <message type="info"> elements."""
    links: dict[str, list[str]] = {}
    if sec is None:
        return links
    text = "\n".join(sec.out)
    for body in re.findall(r'<message type="info">(.*?)</message>', text, re.S):
        lines = html.unescape(body).splitlines()
        name = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("Name ")), None)
        if not name:
            continue
        pkgs: list[str] = []
        for k, line in enumerate(lines):
            if not line.startswith("Conflicts "):
                continue
            value = line.split(":", 1)[1].strip()
            count = re.fullmatch(r"\[(\d+)\]", value)
            items = lines[k + 1 : k + 1 + int(count.group(1))] if count else [value]
            # "pkg[.arch] < version"; a "srcpackage:name" entry matches no binary package
            pkgs += [item.strip().split(" ", 1)[0] for item in items if item.strip()]
        links[name] = pkgs
    return links


_ARCH_SUFFIX = re.compile(r"\.(noarch|x86_64|i[3-6]86|aarch64|ppc64le|ppc64|s390x|src|armv7hl)$")


def _parse_zypper(secs: dict[str, _Section]) -> list[PendingUpdate]:
    pkg_list = _xml(_need(secs, "updates", "zypper list-updates"), "zypper list-updates")
    patch_list = _xml(_need(secs, "patches", "zypper list-patches"), "zypper list-patches")
    patches = [
        p
        for p in patch_list.findall("update")
        if p.get("kind") == "patch" and p.get("status") in _PATCH_STATUS
    ]
    info = secs.get("info")
    if patches and (info is None or info.rc is None):
        raise FactParseError("zypper info -t patch: output missing or cut short")
    links = _patch_links(info)
    by_pkg: dict[str, list[tuple[str, str, str | None, date | None, bool]]] = {}
    for p in patches:
        name = p.get("name") or ""
        cat = (p.get("category") or "").lower()
        cls = {"security": "security", "recommended": "bugfix", "bugfix": "bugfix",
               "optional": "enhancement", "feature": "enhancement",
               "enhancement": "enhancement"}.get(cat, "other")
        entry = (name, cls, normalise_severity(p.get("severity")), _zypper_date(p),
                 p.get("restart") == "true" or p.get("interactive") == "reboot")
        for pkg in links.get(name, []):
            by_pkg.setdefault(_ARCH_SUFFIX.sub("", pkg), []).append(entry)
    updates = []
    for u in pkg_list.findall("update"):
        if u.get("kind") != "package":
            continue
        name, edition = u.get("name"), u.get("edition")
        if not name or not edition:
            raise FactParseError("zypper list-updates: an update without name or edition")
        found = by_pkg.get(name, [])
        best = max(found, key=lambda e: _rank(e[1], e[2]), default=None)
        src = u.find("source")
        updates.append(
            PendingUpdate(
                name=name,
                current=u.get("edition-old") or None,
                available=edition,
                classification=best[1] if best else "other",
                severity=best[2] if best else None,
                released=best[3] if best else None,
                source="zypper",
                advisory=best[0] if best else None,
                reboot_suggested=any(e[4] for e in found),
                origin=(src.get("alias") or "") if src is not None else "",
                arch=u.get("arch"),
            )
        )
    return updates


# -- Windows -------------------------------------------------------------------------------
WIN_UPDATES_PS = """\
$s = New-Object -ComObject Microsoft.Update.Session
$q = $s.CreateUpdateSearcher()
$q.Online = __ONLINE__
$r = $q.Search('IsInstalled=0 and IsHidden=0')
[pscustomobject]@{ ResultCode = [int]$r.ResultCode; Count = [int]$r.Updates.Count } |
  ConvertTo-Json -Compress
$ic = [Globalization.CultureInfo]::InvariantCulture
foreach ($u in $r.Updates) {
  [pscustomobject]@{
    Title = [string]$u.Title
    KBArticleIDs = @($u.KBArticleIDs | ForEach-Object { [string]$_ })
    MsrcSeverity = $u.MsrcSeverity
    Categories = @($u.Categories | Where-Object { $_.Type -eq 'UpdateClassification' } |
      ForEach-Object { [string]$_.Name })
    LastDeploymentChangeTime = $u.LastDeploymentChangeTime.ToString('yyyy-MM-dd', $ic)
    RebootRequired = [bool]$u.RebootRequired
    RebootBehavior = [int]$u.InstallationBehavior.RebootBehavior
  } | ConvertTo-Json -Compress
}"""

# Windows Update classifications (Category.Type UpdateClassification), by name
_WIN_CLASS = {
    "security updates": "security",
    "critical updates": "bugfix",
    "updates": "bugfix",
    "update rollups": "bugfix",
    "service packs": "bugfix",
    "feature packs": "enhancement",
    "upgrades": "enhancement",
}


def win_updates_cmd(args: tuple[str, ...]) -> str:
    return WIN_UPDATES_PS.replace("__ONLINE__", "$false" if "norefresh" in args else "$true")


def _win_date(value: Any) -> date | None:
    if isinstance(value, dict):
        value = value.get("value") or value.get("DateTime")
    if value in (None, ""):
        return None
    text = str(value)
    m = re.search(r"/Date\((-?\d{1,15})", text)
    try:
        if m:
            return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC).date()
        m = re.match(r"^(\d{4})-(\d{2})-(\d{2})", text)
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except (OverflowError, ValueError, OSError):
        pass
    raise FactParseError(f"cannot read update date {text[:40]!r}")


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("value"), list):
        value = value["value"]  # PS 5.1 array wrapper
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _win_update(item: Any) -> PendingUpdate:
    if not isinstance(item, dict) or not item.get("Title"):
        raise FactParseError("update entry without Title")
    title = str(item["Title"])
    kbs = [k.strip().upper().removeprefix("KB") for k in _strings(item.get("KBArticleIDs"))]
    kbs = [k for k in kbs if k]
    kb = f"KB{kbs[0]}" if kbs else None
    classes = [_WIN_CLASS.get(c.strip().lower(), "other") for c in _strings(item.get("Categories"))]
    cls = min(classes, key=CLASSIFICATIONS.index, default="other")
    behaviour = item.get("RebootBehavior")
    return PendingUpdate(
        name=kb or title,
        current=None,
        available=title,
        classification=cls,
        severity=normalise_severity(item.get("MsrcSeverity")),
        released=_win_date(item.get("LastDeploymentChangeTime")),
        source="windows",
        advisory=kb,
        reboot_suggested=item.get("RebootRequired") is True or behaviour in (1, 2),
        origin="Windows Update",
    )


def parse_win_updates(out: Output, args: tuple[str, ...]) -> PendingUpdates:
    """JSON lines: a summary {"ResultCode", "Count"} then one object per update. A single JSON
    document (an array, one object, PS 5.1's {"value": [...]} wrapper) is read as the list."""
    if out.rc != 0:
        raise FactParseError(f"Windows Update search failed: {out.first_error()}")
    text = out.stdout.strip().lstrip("\ufeff")
    if not text:
        raise FactParseError("the Windows Update search printed nothing")
    try:
        items: list[Any] = [json.loads(text)]
    except json.JSONDecodeError:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise FactParseError(f"line {n}: not JSON ({exc.msg})") from None
    first = items[0]
    if isinstance(first, dict) and "ResultCode" in first:
        code, count = first.get("ResultCode"), first.get("Count")
        if code != 2:
            raise FactParseError(f"Windows Update search result code {code!r} (2 = succeeded)")
        if count != len(items) - 1:
            raise FactParseError(
                f"the search found {count!r} updates but {len(items) - 1} were printed"
            )
        entries = items[1:]
    elif len(items) == 1:
        entries = _items(first)
    else:
        raise FactParseError("JSON lines without the search summary line")
    updates = sorted((_win_update(e) for e in entries), key=lambda u: u.name)
    return PendingUpdates("windows", "norefresh" not in args, tuple(updates))


def _items(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        return data["value"]
    return data if isinstance(data, list) else [data]


register(
    Fact(
        "updates.pending",
        "sh",
        updates_cmd,
        parse_updates,
        _check,
        "pending updates (apt-get -s, dnf repoquery + updateinfo, zypper list-updates/patches)",
    ),
    Fact(
        "win.updates.pending",
        "powershell",
        win_updates_cmd,
        parse_win_updates,
        _check,
        "pending updates from the Windows Update Agent search",
    ),
)
