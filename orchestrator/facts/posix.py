"""POSIX facts (run by /bin/sh): every policy value passes through shlex.quote().

Commands stay within POSIX sh, GNU coreutils/busybox and /proc, so hosts without systemd work.
"""

from __future__ import annotations

import re
import shlex

from orchestrator.facts.base import (
    Fact,
    FactArgError,
    FactParseError,
    Output,
    abs_path,
    no_control,
    register,
    safe_name,
)
from orchestrator.facts.values import (
    DiskUsage,
    FileContains,
    FileHash,
    FileStat,
    Memory,
    OsInfo,
    Packages,
    PendingReboot,
    ServiceState,
    Sysctl,
)

q = shlex.quote


def _one_path(args: tuple[str, ...]) -> None:
    if len(args) != 1:
        raise FactArgError("expected exactly one path")
    abs_path(args[0])


# -- packages -----------------------------------------------------------------------------
def packages_cmd(args: tuple[str, ...]) -> str:
    return (
        "if command -v dpkg-query >/dev/null 2>&1; then echo '@format dpkg'; "
        "dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\t${Status}\\n'; "
        "elif command -v rpm >/dev/null 2>&1; then echo '@format rpm'; "
        "rpm -qa --queryformat '%{NAME}\\t%{EPOCH}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'; "
        "else echo '@format none'; fi"
    )


DPKG_INSTALLED = {"installed", "triggers-awaited", "triggers-pending"}
DPKG_GONE = {"not-installed", "config-files"}


def parse_packages(out: Output, args: tuple[str, ...]) -> Packages:
    lines = out.stdout.splitlines()
    if not lines or not lines[0].startswith("@format "):
        raise FactParseError("package list has no @format header")
    manager = lines[0].split()[1]
    if manager == "none":
        raise FactParseError("neither dpkg-query nor rpm found on the host")
    if out.rc != 0:
        raise FactParseError(f"{manager} query failed: {out.first_error()}")
    installed: dict[str, list[str]] = {}
    broken: dict[str, str] = {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if manager == "dpkg":
            if len(parts) != 4:
                raise FactParseError(f"line {n}: expected 4 tab-separated fields from dpkg-query")
            name, version, _arch, status = parts
            state = status.split()[-1] if status.split() else ""
            if state in DPKG_INSTALLED:
                installed.setdefault(name, []).append(version)
            elif state not in DPKG_GONE:
                broken[name] = state
        elif manager == "rpm":
            if len(parts) != 4:
                raise FactParseError(f"line {n}: expected 4 tab-separated fields from rpm")
            name, epoch, vr, _arch = parts
            version = vr if epoch in ("(none)", "", "0") else f"{epoch}:{vr}"
            installed.setdefault(name, []).append(version)
        else:
            raise FactParseError(f"unknown package format {manager!r}")
    return Packages(manager, {k: tuple(v) for k, v in installed.items()}, broken)


# -- services -----------------------------------------------------------------------------
def _service_check(args: tuple[str, ...]) -> None:
    if len(args) != 1:
        raise FactArgError("expected exactly one service name")
    safe_name(args[0], "service name")


# services whose process name is not the service name (nor name + "d"); "ssh" alone would also
# match an ssh client process, so the daemon name is the only one accepted.
KNOWN_DAEMONS = {
    "ssh": ("sshd",),
    "openssh-server": ("sshd",),
    "apache2": ("apache2",),
    "httpd": ("httpd",),
    "postgresql": ("postgres",),
    "mysql": ("mysqld",),
    "mariadb": ("mariadbd", "mysqld"),
    "ntp": ("ntpd",),
    "chrony": ("chronyd",),
    "syslog": ("rsyslogd", "syslogd"),
}


def process_names(service: str) -> list[str]:
    """Process names that mean `service` is running on a host without systemd: the name and the
    usual daemon form (ssh -> sshd, chrony -> chronyd), cut to the kernel's 15-char comm."""
    base = service.removesuffix(".service")
    if base in KNOWN_DAEMONS:
        return list(KNOWN_DAEMONS[base])
    names = [base, base + "d"] if not base.endswith("d") else [base]
    return list(dict.fromkeys(n[:15] for n in names))


def service_cmd(args: tuple[str, ...]) -> str:
    name = args[0].removesuffix(".service")
    n = q(name)
    pattern = "|".join(q(p) for p in process_names(name))
    return (
        f"n={n}\n"
        "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n"
        "  echo manager=systemd\n"
        '  echo "active=$(systemctl is-active -- "$n" 2>/dev/null)"\n'
        '  echo "enabled=$(systemctl is-enabled -- "$n" 2>/dev/null)"\n'
        "else\n"
        "  echo manager=sysv\n"
        "  found=\n"
        "  for f in /proc/[0-9]*/comm; do\n"
        '    { read -r c < "$f"; } 2>/dev/null || continue\n'
        f"    case $c in {pattern}) found=$c; break;; esac\n"
        "  done\n"
        '  echo "process=$found"\n'
        '  if [ -z "$found" ] && [ -x "/etc/init.d/$n" ]; then\n'
        '    "/etc/init.d/$n" status >/dev/null 2>&1; echo "initscript=$?"\n'
        "  fi\n"
        '  if ls /etc/rc[2345].d/S[0-9][0-9]"$n" >/dev/null 2>&1 || '
        'ls /etc/runlevels/*/"$n" >/dev/null 2>&1; then echo enabled=yes\n'
        '  elif [ -e "/etc/init.d/$n" ]; then echo enabled=no\n'
        "  else echo enabled=; fi\n"
        "fi"
    )


SYSTEMD_ENABLED = {"enabled", "enabled-runtime", "alias", "static", "indirect", "generated"}
SYSTEMD_DISABLED = {"disabled", "masked", "masked-runtime", "linked", "linked-runtime"}


def parse_service(out: Output, args: tuple[str, ...]) -> ServiceState:
    kv: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            kv[k.strip()] = v.strip()
    manager = kv.get("manager")
    name = args[0]
    if manager == "systemd":
        if "active" not in kv or "enabled" not in kv:
            raise FactParseError("systemctl output incomplete")
        en = kv["enabled"]
        enabled = True if en in SYSTEMD_ENABLED else False if en in SYSTEMD_DISABLED else None
        return ServiceState(name, "systemd", kv["active"] == "active", enabled, kv["active"], en)
    if manager == "sysv":
        if "process" not in kv or "enabled" not in kv:
            raise FactParseError("service probe output incomplete")
        process = kv["process"] or None
        init_rc = kv.get("initscript")
        running = process is not None or init_rc == "0"
        detail = (
            f"process {process}"
            if process
            else f"init script status exit {init_rc}"
            if init_rc is not None
            else "no such process"
        )
        en = kv["enabled"]
        enabled = True if en == "yes" else False if en == "no" else None
        en_detail = {"yes": "rc.d start link", "no": "init script without start link"}.get(
            en, "no init script"
        )
        return ServiceState(name, "sysv", running, enabled, detail, en_detail, process)
    raise FactParseError("service probe printed no manager= line")


# -- files --------------------------------------------------------------------------------
def stat_cmd(args: tuple[str, ...]) -> str:
    p = q(args[0])
    return (
        f"if [ -e {p} ] || [ -L {p} ]; then stat -c '%U|%G|%a|%F|%s|%u|%g' -- {p}; "
        "else echo @absent; fi"
    )


def parse_stat(out: Output, args: tuple[str, ...]) -> FileStat:
    text = out.stdout.strip()
    if text == "@absent":
        return FileStat(args[0], False)
    if out.rc != 0:
        raise FactParseError(f"stat failed: {out.first_error()}")
    parts = text.split("|")
    if len(parts) != 7 or not re.fullmatch(r"[0-7]{1,4}", parts[2]):
        raise FactParseError(f"unexpected stat output {text[:80]!r}")
    owner, group, mode, ftype, size, uid, gid = parts
    try:
        return FileStat(
            args[0], True, owner, group, mode.zfill(4), ftype, int(size), int(uid), int(gid)
        )
    except ValueError:
        raise FactParseError(f"unexpected stat output {text[:80]!r}") from None


def _contains_check(args: tuple[str, ...]) -> None:
    if len(args) < 2:
        raise FactArgError("expected a path and at least one string")
    abs_path(args[0])
    for s in args[1:]:
        no_control(s, "search string")


def contains_cmd(args: tuple[str, ...]) -> str:
    p = q(args[0])
    greps = "; ".join(f'grep -F -q -e {q(s)} -- {p}; echo "{i} $?"' for i, s in enumerate(args[1:]))
    return (
        f"if [ ! -e {p} ]; then echo @absent; elif [ ! -r {p} ]; then echo @unreadable; "
        f"else {greps}; fi"
    )


def parse_contains(out: Output, args: tuple[str, ...]) -> FileContains:
    text = out.stdout.strip()
    if text == "@absent":
        return FileContains(args[0], False, {})
    if text == "@unreadable":
        raise FactParseError(f"{args[0]} is not readable by the audit user")
    found: dict[str, bool] = {}
    strings = args[1:]
    for line in text.splitlines():
        m = re.fullmatch(r"(\d+) (\d+)", line.strip())
        if not m or int(m.group(1)) >= len(strings):
            raise FactParseError(f"unexpected grep result line {line[:60]!r}")
        i, rc = int(m.group(1)), int(m.group(2))
        if rc > 1:
            raise FactParseError(f"grep could not read {args[0]} (exit {rc})")
        found[strings[i]] = rc == 0
    if len(found) != len(set(strings)):
        raise FactParseError("grep results missing for some strings")
    return FileContains(args[0], True, found)


def sha256_cmd(args: tuple[str, ...]) -> str:
    p = q(args[0])
    return (
        f"if [ -f {p} ]; then sha256sum -- {p}; elif [ -e {p} ]; then echo @notfile; "
        "else echo @absent; fi"
    )


def parse_sha256(out: Output, args: tuple[str, ...]) -> FileHash:
    text = out.stdout.strip()
    if text == "@absent":
        return FileHash(args[0], False)
    if text == "@notfile":
        raise FactParseError(f"{args[0]} is not a regular file")
    m = re.match(r"^\\?([0-9a-fA-F]{64})\s", text + " ")
    if out.rc != 0 or not m:
        raise FactParseError(f"sha256sum failed: {out.first_error()}")
    return FileHash(args[0], True, m.group(1).lower())


# -- kernel and resources -----------------------------------------------------------------
SYSCTL_RE = re.compile(r"^[A-Za-z0-9_\-:]+([./][A-Za-z0-9_\-:]+)*$")


def sysctl_path(name: str) -> str:
    """sysctl(8) naming: dots separate levels; if the name uses '/' as separator, dots are
    part of a component (net/ipv4/conf/eth0.100/forwarding). A name that mixes both with dots
    first swaps them (net.ipv4.conf.eth0/100.forwarding -> .../eth0.100/...)."""
    if not SYSCTL_RE.fullmatch(name) or ".." in name or "//" in name:
        raise FactArgError(f"sysctl name {name!r} is not a valid key")
    if "/" in name and "." in name.split("/")[0]:
        name = name.translate(str.maketrans("./", "/."))
    elif "/" not in name:
        name = name.replace(".", "/")
    return "/proc/sys/" + name.strip("/")


def _sysctl_check(args: tuple[str, ...]) -> None:
    if len(args) != 1:
        raise FactArgError("expected exactly one sysctl name")
    sysctl_path(args[0])


def sysctl_cmd(args: tuple[str, ...]) -> str:
    p = q(sysctl_path(args[0]))
    return f"if [ -r {p} ] && [ -f {p} ]; then cat -- {p}; else echo @absent; fi"


def parse_sysctl(out: Output, args: tuple[str, ...]) -> Sysctl:
    text = out.stdout.strip()
    if text == "@absent":
        return Sysctl(args[0], False)
    if out.rc != 0:
        raise FactParseError(f"cannot read sysctl: {out.first_error()}")
    return Sysctl(args[0], True, " ".join(text.split()))


def _disk_check(args: tuple[str, ...]) -> None:
    if not args:
        raise FactArgError("expected at least one mount point")
    for a in args:
        abs_path(a)


def disk_cmd(args: tuple[str, ...]) -> str:
    parts = [
        f"echo {q('@mount ' + m)}; df -P -k -- {q(m)} 2>/dev/null || echo @absent" for m in args
    ]
    return "; ".join(parts)


DF_RE = re.compile(r"^(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(/.*)$")


def parse_disk(out: Output, args: tuple[str, ...]) -> dict[str, DiskUsage]:
    result: dict[str, DiskUsage] = {}
    current: str | None = None
    for line in out.stdout.splitlines():
        if line.startswith("@mount "):
            current = line[len("@mount ") :]
            continue
        if current is None or not line.strip() or line.startswith("Filesystem"):
            continue
        if line.strip() == "@absent":
            result[current] = DiskUsage(current, False)
            continue
        m = DF_RE.match(line)
        if not m:
            raise FactParseError(f"unexpected df line {line[:80]!r}")
        fs, size, used, avail, cap, mnt = m.groups()
        used_i, avail_i = int(used), int(avail)
        pct = round(100.0 * used_i / (used_i + avail_i), 1) if used_i + avail_i else 0.0
        result[current] = DiskUsage(
            current,
            True,
            fs,
            mnt,
            int(size),
            used_i,
            avail_i,
            pct,
            int(cap[:-1]) if cap != "-" else None,
        )
    missing = [m for m in args if m not in result]
    if missing:
        raise FactParseError(f"no df figures for {', '.join(missing)}")
    return result


def parse_meminfo(out: Output, args: tuple[str, ...]) -> Memory:
    vals: dict[str, int] = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)", line)
        if m:
            vals[m.group(1)] = int(m.group(2))
    total = vals.get("MemTotal")
    if not total:
        raise FactParseError("/proc/meminfo has no MemTotal")
    avail = vals.get("MemAvailable")
    if avail is None:  # kernels before 3.14
        avail = vals.get("MemFree", 0) + vals.get("Buffers", 0) + vals.get("Cached", 0)
    return Memory(total, avail, round(100.0 * (total - avail) / total, 1))


def reboot_cmd(args: tuple[str, ...]) -> str:
    return (
        "[ -f /var/run/reboot-required ] && echo '@reason reboot-required'; "
        "[ -f /var/run/reboot-required.pkgs ] && sed 's/^/@pkg /' /var/run/reboot-required.pkgs; "
        "[ -f /run/reboot-needed ] && echo '@reason reboot-needed'; "
        "if command -v needs-restarting >/dev/null 2>&1; then needs-restarting -r >/dev/null 2>&1;"
        ' echo "@needs-restarting $?"; fi; true'
    )


def parse_reboot(out: Output, args: tuple[str, ...]) -> PendingReboot:
    reasons: list[str] = []
    pkgs: list[str] = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("@reason "):
            reasons.append(
                {
                    "reboot-required": "/var/run/reboot-required exists",
                    "reboot-needed": "/run/reboot-needed exists",
                }.get(line[8:], line[8:])
            )
        elif line.startswith("@pkg "):
            if line[5:] and line[5:] not in pkgs:
                pkgs.append(line[5:])
        elif line.startswith("@needs-restarting "):
            code = line.split()[1]
            if code == "1":
                reasons.append("needs-restarting -r: reboot required")
            elif code not in ("0",):
                raise FactParseError(f"needs-restarting -r failed with exit {code}")
        elif line:
            raise FactParseError(f"unexpected line {line[:60]!r}")
    return PendingReboot(bool(reasons), tuple(reasons), tuple(pkgs))


def os_cmd(args: tuple[str, ...]) -> str:
    return "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release; echo @uname; uname -srm"


FAMILIES = (
    ("debian", {"debian", "ubuntu"}),
    ("rhel", {"rhel", "centos", "fedora", "rocky", "almalinux", "ol"}),
    ("suse", {"suse", "sles", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "sled"}),
    ("alpine", {"alpine"}),
)


def parse_os(out: Output, args: tuple[str, ...]) -> OsInfo:
    release, _, uname = out.stdout.partition("@uname")
    kv: dict[str, str] = {}
    for line in release.splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            v = m.group(2).strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            kv[m.group(1)] = v
    if "ID" not in kv:
        raise FactParseError("no ID= in /etc/os-release")
    like = tuple(kv.get("ID_LIKE", "").split())
    ids = {kv["ID"], *like}
    family = next((f for f, names in FAMILIES if ids & names), kv["ID"])
    u = uname.split()
    return OsInfo(
        id=kv["ID"],
        family=family,
        version_id=kv.get("VERSION_ID"),
        pretty_name=kv.get("PRETTY_NAME"),
        id_like=like,
        kernel=" ".join(u[:2]) if len(u) >= 2 else None,
        arch=u[2] if len(u) >= 3 else None,
    )


def _no_args(args: tuple[str, ...]) -> None:
    if args:
        raise FactArgError("this fact takes no arguments")


register(
    Fact(
        "packages",
        "sh",
        packages_cmd,
        parse_packages,
        _no_args,
        "installed packages (dpkg-query or rpm)",
    ),
    Fact(
        "service",
        "sh",
        service_cmd,
        parse_service,
        _service_check,
        "running/enabled: systemctl, else process name, init script and rc.d links",
    ),
    Fact("file.stat", "sh", stat_cmd, parse_stat, _one_path, "owner, group, mode, type (lstat)"),
    Fact(
        "file.contains",
        "sh",
        contains_cmd,
        parse_contains,
        _contains_check,
        "each string found with grep -F (any line)",
    ),
    Fact("file.sha256", "sh", sha256_cmd, parse_sha256, _one_path, "sha256 of a regular file"),
    Fact("sysctl", "sh", sysctl_cmd, parse_sysctl, _sysctl_check, "value read from /proc/sys"),
    Fact(
        "disk.usage",
        "sh",
        disk_cmd,
        parse_disk,
        _disk_check,
        "df -P -k per path (the filesystem holding it)",
    ),
    Fact(
        "memory",
        "sh",
        lambda a: "cat /proc/meminfo",
        parse_meminfo,
        _no_args,
        "used percent from MemTotal and MemAvailable",
    ),
    Fact(
        "reboot.pending",
        "sh",
        reboot_cmd,
        parse_reboot,
        _no_args,
        "/var/run/reboot-required, /run/reboot-needed, needs-restarting -r",
    ),
    Fact("os", "sh", os_cmd, parse_os, _no_args, "/etc/os-release and uname"),
)
