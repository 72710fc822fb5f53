"""Windows facts: PowerShell that prints JSON (ConvertTo-Json). Every policy value is a
single-quoted PowerShell literal (powershell_quote), so nothing in it is expanded or run."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.facts.base import Fact, FactArgError, FactParseError, Output, no_control, register
from orchestrator.facts.values import Hotfix, PendingReboot, RegistryValue, WinService
from orchestrator.quoting import powershell_quote as pq

STATUS = {
    1: "Stopped",
    2: "StartPending",
    3: "StopPending",
    4: "Running",
    5: "ContinuePending",
    6: "PausePending",
    7: "Paused",
}
START = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}
REG_HIVES = ("HKLM:\\", "HKCU:\\", "HKCR:\\", "HKU:\\", "HKCC:\\", "Registry::")


def _json(out: Output) -> Any:
    if out.rc != 0:
        raise FactParseError(f"PowerShell failed: {out.first_error()}")
    text = out.stdout.strip().lstrip("\ufeff")
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactParseError(f"not JSON: {exc.msg} at line {exc.lineno}") from None


def _list(data: Any) -> list[Any]:
    """ConvertTo-Json prints one object, not a one-element array, and nothing for none."""
    if data is None:
        return []
    if isinstance(data, dict) and "value" in data and isinstance(data["value"], list):
        return data["value"]  # PS 5.1 array wrapper {"value": [...], "Count": n}
    return data if isinstance(data, list) else [data]


def _enum(value: Any, table: dict[int, str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return table.get(value, str(value))
    return str(value)


def _date(value: Any) -> str | None:
    """InstalledOn as 'yyyy-MM-dd', '/Date(ms)/' or PS 5.1's {"value": "/Date(ms)/", ...}."""
    if isinstance(value, dict):
        value = value.get("value") or value.get("DateTime")
    if value in (None, ""):
        return None
    text = str(value)
    m = re.search(r"/Date\((-?\d+)", text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC).date().isoformat()
    m = re.match(r"^(\d{4}-\d{2}-\d{2})", text)
    if m:
        return m.group(1)
    m = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})", text)  # en-US M/d/yyyy
    if m:
        return f"{m.group(3)}-{int(m.group(1)):02d}-{int(m.group(2)):02d}"
    raise FactParseError(f"cannot read date {text[:40]!r}")


# -- services -----------------------------------------------------------------------------
def _names(args: tuple[str, ...]) -> None:
    if not args:
        raise FactArgError("expected at least one service name")
    for a in args:
        no_control(a, "service name")


def services_cmd(args: tuple[str, ...]) -> str:
    """Names Get-Service does not find are left out (and reported as missing by the parser);
    PowerShell 5.1 prints Status and StartType as numbers, 7 as numbers too."""
    names = ",".join(pq(a) for a in args)
    return (
        f"Get-Service -Name {names} -ErrorAction SilentlyContinue | "
        "Select-Object Name, Status, StartType | ConvertTo-Json -Compress"
    )


def parse_services(out: Output, args: tuple[str, ...]) -> dict[str, WinService]:
    result: dict[str, WinService] = {}
    for item in _list(_json(out)):
        if not isinstance(item, dict) or "Name" not in item:
            raise FactParseError("service entry without Name")
        status = _enum(item.get("Status"), STATUS)
        result[str(item["Name"])] = WinService(
            str(item["Name"]), status is not None, status, _enum(item.get("StartType"), START)
        )
    if not args:
        return result
    by_lower = {k.lower(): v for k, v in result.items()}
    # a name Get-Service did not list does not exist; a wildcard's extra matches are dropped
    return {
        name: replace(by_lower[name.lower()], name=name)
        if name.lower() in by_lower else WinService(name, False)
        for name in args
    }


# -- hotfixes -----------------------------------------------------------------------------
def hotfixes_cmd(args: tuple[str, ...]) -> str:
    """InstalledOn is a DateTime: "/Date(ms)/" (or PS 5.1's {"value": ..., "DateTime": ...})."""
    return (
        "Get-HotFix | Select-Object HotFixID, Description, InstalledOn | ConvertTo-Json -Compress"
    )


def parse_hotfixes(out: Output, args: tuple[str, ...]) -> dict[str, Hotfix]:
    result: dict[str, Hotfix] = {}
    for item in _list(_json(out)):
        if not isinstance(item, dict) or not item.get("HotFixID"):
            raise FactParseError("hotfix entry without HotFixID")
        kb = str(item["HotFixID"]).strip().upper()
        result[kb] = Hotfix(kb, item.get("Description"), _date(item.get("InstalledOn")))
    return result


# -- registry -----------------------------------------------------------------------------
def _registry_check(args: tuple[str, ...]) -> None:
    if len(args) != 2:
        raise FactArgError("expected a registry key and a value name")
    key, name = args
    no_control(key, "registry key")
    no_control(name, "registry value name")
    if not key.startswith(REG_HIVES):
        raise FactArgError(f"registry key {key!r} must start with HKLM:\\ (or another hive)")


def registry_cmd(args: tuple[str, ...]) -> str:
    """Get-Item gives the RegistryKey: its value kind, and the value without expanding
    %VARIABLES% in REG_EXPAND_SZ."""
    key, name = args
    name = "" if name == "(default)" else name
    k, n = pq(key), pq(name)
    return (
        f"$k = Get-Item -LiteralPath {k} -ErrorAction SilentlyContinue\n"
        "if ($null -eq $k) { '{\"keyExists\":false,\"exists\":false}' }\n"
        f"elseif ($k.GetValueNames() -contains {n}) {{\n"
        "  [pscustomobject]@{\n"
        "    keyExists = $true\n"
        "    exists = $true\n"
        f"    kind = $k.GetValueKind({n}).ToString()\n"
        f"    value = $k.GetValue({n}, $null, 'DoNotExpandEnvironmentNames')\n"
        "  } | ConvertTo-Json -Compress -Depth 3\n"
        "}\n"
        "else { '{\"keyExists\":true,\"exists\":false}' }"
    )


def parse_registry(out: Output, args: tuple[str, ...]) -> RegistryValue:
    data = _json(out)
    if not isinstance(data, dict) or "exists" not in data:
        raise FactParseError("registry probe printed no exists field")
    value = data.get("value")
    if isinstance(value, dict) and "value" in value:  # PS 5.1 array wrapper
        value = value["value"]
    return RegistryValue(
        args[0], args[1], bool(data.get("keyExists")), bool(data["exists"]), data.get("kind"), value
    )


# -- pending reboot -----------------------------------------------------------------------
REBOOT_CMD = """\
$cn = 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\ComputerName'
[pscustomobject]@{
  componentBasedServicing = Test-Path -LiteralPath \
'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending'
  windowsUpdate = Test-Path -LiteralPath \
'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired'
  pendingFileRename = $null -ne (Get-ItemProperty -LiteralPath \
'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager' \
-Name PendingFileRenameOperations -ErrorAction SilentlyContinue)
  computerRename = (Get-ItemPropertyValue -LiteralPath "$cn\\ActiveComputerName" \
-Name ComputerName) -ne (Get-ItemPropertyValue -LiteralPath "$cn\\ComputerName" -Name ComputerName)
} | ConvertTo-Json -Compress"""
REBOOT_REASONS = {
    "componentBasedServicing": "Component Based Servicing\\RebootPending exists",
    "windowsUpdate": "WindowsUpdate\\Auto Update\\RebootRequired exists",
    "pendingFileRename": "Session Manager has PendingFileRenameOperations",
    "computerRename": "computer rename pending",
}


def parse_win_reboot(out: Output, args: tuple[str, ...]) -> PendingReboot:
    data = _json(out)
    if not isinstance(data, dict) or not set(REBOOT_REASONS) <= set(data):
        raise FactParseError("pending-reboot probe output incomplete")
    reasons = tuple(text for key, text in REBOOT_REASONS.items() if data[key] is True)
    return PendingReboot(bool(reasons), reasons)


def _no_args(args: tuple[str, ...]) -> None:
    if args:
        raise FactArgError("this fact takes no arguments")


register(
    Fact(
        "win.services",
        "powershell",
        services_cmd,
        parse_services,
        _names,
        "Get-Service status and start type per name",
    ),
    Fact(
        "win.hotfixes",
        "powershell",
        hotfixes_cmd,
        parse_hotfixes,
        _no_args,
        "Get-HotFix: installed KBs",
    ),
    Fact(
        "win.registry",
        "powershell",
        registry_cmd,
        parse_registry,
        _registry_check,
        "one registry value (Get-Item, GetValue without expanding)",
    ),
    Fact(
        "win.reboot.pending",
        "powershell",
        lambda a: REBOOT_CMD,
        parse_win_reboot,
        _no_args,
        "CBS, Windows Update, PendingFileRenameOperations, computer rename",
    ),
)
