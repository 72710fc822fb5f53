"""Windows facts: PowerShell that prints JSON (ConvertTo-Json). Every policy value is a
single-quoted PowerShell literal (powershell_quote), so nothing in it is expanded or run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from orchestrator.facts.base import Fact, FactArgError, FactParseError, Output, no_control, register
from orchestrator.facts.values import Hotfix, PendingReboot, RegistryValue, WinService
from orchestrator.transports.base import powershell_quote as pq

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
    names = ",".join(pq(a) for a in args)
    return (
        f"$r = foreach ($x in @({names})) {{ "
        "$s = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($x)) "
        "-ErrorAction SilentlyContinue | Select-Object -First 1; "
        "if ($s) { [pscustomobject]@{Name=$x; Status=[string]$s.Status; "
        "StartType=[string]$s.StartType} } "
        "else { [pscustomobject]@{Name=$x; Status=$null; StartType=$null} } }; "
        "ConvertTo-Json -Compress -InputObject @($r)"
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
    for name in args:  # a name Get-Service did not list does not exist
        result.setdefault(name, WinService(name, False))
    return {k: v for k, v in result.items() if k in args} if args else result


# -- hotfixes -----------------------------------------------------------------------------
def hotfixes_cmd(args: tuple[str, ...]) -> str:
    return (
        "$h = Get-HotFix | Select-Object HotFixID, Description, "
        "@{n='InstalledOn';e={ if ($_.InstalledOn) { $_.InstalledOn.ToString('yyyy-MM-dd') } }}; "
        "ConvertTo-Json -Compress -InputObject @($h)"
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
    key, name = args
    name = "" if name == "(default)" else name
    k, n = pq(key), pq(name)
    return (
        f"$k = Get-Item -LiteralPath {k} -ErrorAction SilentlyContinue; "
        'if ($null -eq $k) { \'{"keyExists":false,"exists":false}\' } '
        f"elseif ($k.GetValueNames() -contains {n}) {{ "
        "ConvertTo-Json -Compress -Depth 3 -InputObject ([ordered]@{keyExists=$true; exists=$true; "
        f"kind=$k.GetValueKind({n}).ToString(); "
        f"value=$k.GetValue({n}, $null, 'DoNotExpandEnvironmentNames')}}) }} "
        'else { \'{"keyExists":true,"exists":false}\' }'
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
REBOOT_CMD = (
    "$sm = 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager'; "
    "$cn = 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\ComputerName'; "
    "$r = [ordered]@{"
    "componentBasedServicing = Test-Path -LiteralPath "
    "'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\"
    "Component Based Servicing\\RebootPending'; "
    "windowsUpdate = Test-Path -LiteralPath "
    "'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\"
    "WindowsUpdate\\Auto Update\\RebootRequired'; "
    "pendingFileRename = $null -ne (Get-ItemProperty -LiteralPath $sm "
    "-Name PendingFileRenameOperations -ErrorAction SilentlyContinue); "
    'computerRename = (Get-ItemProperty -LiteralPath "$cn\\ActiveComputerName").ComputerName '
    '-ne (Get-ItemProperty -LiteralPath "$cn\\ComputerName").ComputerName}; '
    "ConvertTo-Json -Compress -InputObject $r"
)
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
