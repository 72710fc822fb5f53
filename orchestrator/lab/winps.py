"""The commands of the lab's Windows emulator, run against a recorded host state (stdlib only).

A recorded-state emulator, not Windows. `powershell -EncodedCommand` / `-Command` scripts are
parsed and run by `winps_lang/` (a PowerShell subset, documented there); the commands that
touch the host are these, over `<state_dir>/<host>.json` (see winstate.py):

  hostname, whoami, $env:COMPUTERNAME
  Get-Service [[-Name] A,B (wildcards)]    Start-Service/Stop-Service/Restart-Service [-Name] A
  Set-Service [-Name] A [-StartupType T] [-Status S]
  Get-HotFix [[-Id] KB1,KB2]               (InstalledOn is a DateTime: "/Date(ms)/" in JSON)
  Get-Item [-Path|-LiteralPath] HKLM:\\KEY  (a RegistryKey: GetValueNames(), GetValue(name
                                            [, default[, options]]), GetValueKind(name),
                                            Name, Property, ValueCount)
  Get-ItemProperty KEY [[-Name] N]         Get-ItemPropertyValue KEY [-Name] N
  Set-ItemProperty KEY [-Name] N [-Value] V    Test-Path KEY
  Get-CimInstance/Get-WmiObject Win32_OperatingSystem | Win32_LogicalDisk
  Files and ACLs under the drive roots (Test-Path, Get-Item, New-Item, Set-Content,
  Get-Content, Remove-Item, Move-Item, Get-Acl, Set-Acl: winfs.py) and the Task Scheduler
  (the ScheduledTasks cmdlets: wintasks.py; a started task runs its -EncodedCommand script a
  little later, as SYSTEM)
  Restart-Computer [-Force]                (the endpoint answers nothing for the state's
                                            `reboot_seconds`, default 2, then LastBootUpTime
                                            is the time it came back)
  New-Object -ComObject Microsoft.Update.Session   (the Windows Update Agent: searcher, search
                                            result, updates, downloader, installer;
                                            Microsoft.Update.UpdateColl; see winupdate.py;
                                            other ProgIDs fail as unregistered classes,
                                            -TypeName as unknown; Download() and Install()
                                            are refused to the WinRM session with
                                            E_ACCESSDENIED, as on Windows, and work as SYSTEM)

Registry values in the state are ints (DWord, QWord above 32 bits), strings (String), lists of
strings (MultiString) or {"kind": K, "value": V}. Some keys are derived from the state: the
Windows Update RebootRequired key exists while `reboot_pending` is true, and ComputerName /
ActiveComputerName hold the hostname unless the state records them. cmd lines: hostname,
whoami, echo, exit N. Unknown commands fail like Windows ("... is not recognized ...", exit 1).

Command lines are cmd.exe's (WinRS runs every command through it): one longer than 8,191
characters fails as on Windows, before anything runs ("The command line is too long.", exit 1).
The WinRM transport's stdin bootstrap (STDIN_BOOTSTRAP, the same text as in
orchestrator/transports/winrm.py: `powershell -EncodedCommand` of it) is recognised as a whole:
it reads the script from stdin (base64 of UTF-8, line breaks ignored, as
[Convert]::FromBase64String does), runs it, and exits N after `exit N`, 1 with the message on
stderr when a terminating error (or a parse error) escapes the script, otherwise 0.
`wants_stdin()` tells the WinRM endpoint to hold such a command until its stdin ends.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

try:  # imported as orchestrator.lab.winps (tests) or as a sibling script (winrm_server.py)
    from . import winfs, wintasks, winupdate
    from . import winps_lang as L
except ImportError:  # pragma: no cover - the lab server's own import path
    import winfs  # type: ignore[no-redef]
    import winps_lang as L  # type: ignore[no-redef]
    import wintasks  # type: ignore[no-redef]
    import winupdate  # type: ignore[no-redef]

PSError = L.PSError
REBOOT_KEY = ("HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
              "\\RebootRequired")
COMPUTER_NAME = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\ComputerName"
SESSION_MANAGER = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
MAX_COMMAND_LINE = 8191  # cmd.exe
TOO_LONG = "The command line is too long.\r\n"
STDIN_BOOTSTRAP = (
    "try { & ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String((@($input) -join ''))))) } "
    "catch { [Console]::Error.WriteLine($_.Exception.Message); exit 1 }; exit 0"
)
DEFAULT_REBOOT_SECONDS = 2.0
BOOT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
BAD_BASE64 = ('Exception calling "FromBase64String" with "1" argument(s): "The input is not a '
              "valid Base-64 string as it contains a non-base 64 character, more than two padding "
              'characters, or an illegal character among the padding characters. "')


COM_CLASSES = {"microsoft.update.session": winupdate.session,
               "microsoft.update.updatecoll": lambda state, remote: winupdate.UpdateCollection()}
"""`New-Object -ComObject` ProgIDs (lower-case) -> a factory taking the host state and whether
the session is a remote (WinRM, network logon) one."""


def _line(command: str, args: list[str]) -> str:
    """The command line WinRS hands to cmd.exe: the command and its arguments, space-separated."""
    return " ".join([command, *args])


def _powershell_script(line: str) -> str | None:
    """The script of a `powershell[.exe] ... -EncodedCommand B64 | -Command TEXT` line."""
    m = re.match(r"^\s*powershell(?:\.exe)?\b(.*)$", line, re.I | re.S)
    if not m:
        return None
    rest = m.group(1)
    enc = re.search(r"-(?:e|ec|enc|encodedcommand)\s+(\S+)", rest, re.I)
    if enc:
        return base64.b64decode(enc.group(1)).decode("utf-16-le")
    cmd = re.search(r"-(?:c|command)\s+(.*)$", rest, re.I | re.S)
    return cmd.group(1) if cmd else ""


def wants_stdin(command: str, args: list[str]) -> bool:
    """True for the stdin bootstrap: it runs only once its stdin has ended."""
    line = _line(command, args)
    return len(line) <= MAX_COMMAND_LINE and _powershell_script(line) == STDIN_BOOTSTRAP


def run_command(state_path: str, command: str, args: list[str],
                stdin: bytes | None = None, *, system: bool = False) -> tuple[bytes, bytes, int]:
    """Run one WinRM command line (with the stdin it was sent); (stdout, stderr, exit code).
    Scheduled tasks whose time has come run first. `system`: run it as SYSTEM on the host (as
    a scheduled task would), not in the administrator's WinRM session (golden cases only)."""
    line = _line(command, args)
    if len(line) > MAX_COMMAND_LINE:
        return b"", TOO_LONG.encode(), 1
    line = line.strip()
    low = line.lower()
    with open(state_path) as fh:
        state = json.load(fh)
    before = json.dumps(state, sort_keys=True)
    _scheduler(state).advance()
    script = _powershell_script(line)
    if script == STDIN_BOOTSTRAP:
        out, err, code = _run_bootstrap(state, stdin or b"")
    elif script is not None:
        out, err, code = run_script(state, script, system=system)
    elif low in ("hostname", "hostname.exe"):
        out, err, code = state["hostname"] + "\n", "", 0
    elif low == "whoami":
        out, err, code = ("nt authority\\system" if system else "lab\\administrator") + "\n", "", 0
    elif low.startswith("echo "):
        out, err, code = line[5:] + "\n", "", 0
    elif low.startswith("exit "):
        out, err, code = "", "", int(line.split()[1])
    else:
        name = line.split()[0] if line else ""
        out, err, code = "", (f"'{name}' is not recognized as an internal or external command,\r\n"
                              "operable program or batch file.\r\n"), 1
    if json.dumps(state, sort_keys=True) != before:
        tmp = state_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh, indent=2)
        os.replace(tmp, state_path)
    return out.encode(), err.encode(), code


def _run_bootstrap(state: dict, stdin: bytes) -> tuple[str, str, int]:
    """STDIN_BOOTSTRAP: decode stdin, run it; exit N / 1 on an escaping error / else 0."""
    text = re.sub(rb"[ \t\r\n]", b"", stdin)
    try:
        script = base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    except ValueError:
        return "", BAD_BASE64 + "\r\n", 1
    return run_script(state, script, bootstrap=True)


def run_script(state: dict, script: str, *, bootstrap: bool = False,
               system: bool = False) -> tuple[str, str, int]:
    """Run a script as `powershell -Command` does, or (bootstrap) as STDIN_BOOTSTRAP runs it;
    in the administrator's WinRM session, or (`system`) as SYSTEM on the host itself."""
    drive = state.get("system_drive", "C:")
    interp = L.Interp(_commands(state, system),
                      {"COMPUTERNAME": state["hostname"],
                       "USERNAME": f"{state['hostname']}$" if system else "Administrator",
                       "SystemDrive": drive, "ProgramData": f"{drive}\\ProgramData",
                       "SystemRoot": f"{drive}\\Windows"})
    try:
        return _run_caught(interp, script) if bootstrap else interp.run(script)
    except Exception as exc:  # noqa: BLE001 - an emulator bug must not take the endpoint down
        return "", f"winps internal error: {type(exc).__name__}: {exc}\r\n", 1


def _scheduler(state: dict) -> wintasks.Scheduler:
    """The host's Task Scheduler; its tasks run their scripts as SYSTEM."""
    return wintasks.Scheduler(state, lambda script: run_script(state, script, system=True)[2])


def _run_caught(interp: L.Interp, script: str) -> tuple[str, str, int]:
    """`try { & ([ScriptBlock]::Create($script)) } catch { message to stderr; exit 1 }; exit 0`."""
    try:
        body = L.Parser(script).script()
    except PSError as exc:  # [ScriptBlock]::Create throws; the bootstrap's catch reports it
        return "", f'Exception calling "Create" with "1" argument(s): "{exc.message}"\r\n', 1
    code = 0
    try:
        for st in body:
            interp.failed = False
            for obj in interp.exec_stmt(st):
                interp.out.append(L.format_default(obj))
    except L.values.ExitScript as exc:  # `exit` is flow control: catch does not see it
        code = exc.code
    except L.values.Return:
        code = 0
    except PSError as exc:
        interp.err.append(exc.message + "\r\n")
        code = 1
    return "".join(interp.out), "".join(interp.err), code


def _boot_time(state: dict) -> datetime:
    """Win32_OperatingSystem.LastBootUpTime: the state's `last_boot` (UTC, as recorded)."""
    text = str(state.get("last_boot") or "2024-01-01T00:00:00Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def unavailable(state_path: str, now: float | None = None) -> bool:
    """True while the host is restarting (Restart-Computer set `down_until`, epoch seconds):
    its WinRM endpoint then answers nothing."""
    try:
        with open(state_path) as fh:
            until = json.load(fh).get("down_until")
    except (OSError, ValueError):
        return False
    return isinstance(until, (int, float)) and (time.time() if now is None else now) < until


# ------------------------------------------------------------------------------ registry
def _kind(value: Any) -> tuple[str, Any]:
    if isinstance(value, dict) and "kind" in value:
        return str(value["kind"]), value.get("value")
    if isinstance(value, bool):
        return "DWord", int(value)
    if isinstance(value, int):
        return ("QWord" if value >= 2**32 else "DWord"), value
    if isinstance(value, list):
        return ("MultiString" if all(isinstance(v, str) for v in value) else "Binary"), value
    return "String", value


def _norm(path: str) -> str:
    p = re.sub(r"^(Microsoft\.PowerShell\.Core\\)?Registry::", "", path, flags=re.I)
    p = re.sub(r"^HKEY_LOCAL_MACHINE(\\|$)", r"HKLM:\1", p, flags=re.I)
    p = re.sub(r"^HKLM(\\|$)", r"HKLM:\1", p, flags=re.I)
    return p.rstrip("\\").lower()


def _registry(state: dict) -> dict[str, dict]:
    """Every key: the recorded ones plus those derived from the state."""
    reg = {_norm(k): v for k, v in state.get("registry", {}).items()}
    derived = {
        f"{COMPUTER_NAME}\\ActiveComputerName": {"ComputerName": state["hostname"]},
        f"{COMPUTER_NAME}\\ComputerName": {"ComputerName": state["hostname"]},
        SESSION_MANAGER: {},
    }
    if state.get("reboot_pending"):
        derived[REBOOT_KEY] = {}
    for key, values in derived.items():
        reg.setdefault(_norm(key), values)
    return reg


class RegistryKey:
    def __init__(self, path: str, values: dict) -> None:
        self.path, self.values = path, values

    def _find(self, name: str) -> str | None:
        name = "" if name == "(default)" else name
        return next((k for k in self.values if k.lower() == name.lower()), None)

    def ps_member(self, name: str) -> Any:
        if name == "name":
            return re.sub(r"^HKLM:", "HKEY_LOCAL_MACHINE", self.path, flags=re.I)
        if name == "property":
            return list(self.values)
        if name == "valuecount":
            return len(self.values)
        if name == "pspath":
            return "Microsoft.PowerShell.Core\\Registry::" + self.ps_member("name")
        return None

    def ps_call(self, name: str, args: list) -> Any:
        if name == "getvaluenames":
            return list(self.values)
        if name in ("getvalue", "getvaluekind") and args:
            key = self._find(L.to_string(args[0]))
            if name == "getvaluekind":
                if key is None:
                    raise PSError('Exception calling "GetValueKind" with "1" argument(s): "The '
                                  'specified registry key does not exist."')
                return _kind(self.values[key])[0]
            if key is None:
                return args[1] if len(args) > 1 else None
            return _kind(self.values[key])[1]
        raise PSError(f"Method invocation failed because [Microsoft.Win32.RegistryKey] does not "
                      f"contain a method named '{name}'.")

    def __str__(self) -> str:
        return self.ps_member("name")


# ------------------------------------------------------------------------------ commands
def _names(value: Any) -> list[str]:
    return [L.to_string(v) for v in L.enumerate_(value)]


def _find_service(services: dict, name: str) -> tuple[str, dict] | None:
    for key, val in services.items():
        if key.lower() == name.lower():
            return key, val
    return None


def _service_obj(name: str, svc: dict) -> L.PSObject:
    return L.PSObject(Name=name, DisplayName=svc.get("DisplayName", name),
                      Status=svc["Status"], StartType=svc["StartType"])


def _hotfix_obj(h: dict) -> L.PSObject:
    when = h.get("InstalledOn")
    date = L.PSDate(datetime.strptime(when, "%Y-%m-%d")) if when else None
    return L.PSObject(HotFixID=h["HotFixID"], Description=h.get("Description"),
                      InstalledOn=date)


def _commands(state: dict, system: bool = False) -> dict[str, L.Command]:  # noqa: C901
    """The command table, for the administrator's WinRM session or (`system`) SYSTEM."""
    services = state["services"]
    fs = winfs.FileSystem(state, winfs.SYSTEM if system else winfs.ADMINS)
    fs_commands = fs.commands()

    def get_service(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        rows = []
        for name in _names(b.get("name", 0)) or sorted(services, key=str.lower):
            if any(c in name for c in "*?["):
                rows += [_service_obj(k, v) for k, v in sorted(services.items())
                         if fnmatch.fnmatchcase(k.lower(), name.lower())]
                continue
            svc = _find_service(services, name)
            if svc is None:
                ip.error(f"Cannot find any service with service name '{name}'.", "Get-Service", ea)
            else:
                rows.append(_service_obj(*svc))
        return rows

    def change_service(cmd: str):
        def run(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
            for name in _names(b.get("name", 0)):
                svc = _find_service(services, name)
                if svc is None:
                    ip.error(f"Cannot find any service with service name '{name}'.", cmd, ea)
                elif cmd != "Stop-Service" and svc[1]["StartType"] == "Disabled":
                    ip.error(f"Service '{svc[0]}' cannot be started because it is disabled.",
                             cmd, ea)
                else:
                    svc[1]["Status"] = "Stopped" if cmd == "Stop-Service" else "Running"
            return []
        return run

    def set_service(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        name = L.to_string(b.get("name", 0))
        svc = _find_service(services, name)
        if svc is None:
            ip.error(f"Service {name} was not found on computer '.'.", "Set-Service", ea)
            return []
        if "startuptype" in b.named:
            svc[1]["StartType"] = L.to_string(b.named["startuptype"])
        if "status" in b.named:
            svc[1]["Status"] = L.to_string(b.named["status"])
        return []

    def get_hotfix(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        wanted = [n.upper() for n in _names(b.get("id", 0))]
        rows = [h for h in state["hotfixes"] if not wanted or h["HotFixID"].upper() in wanted]
        for kb in wanted:
            if kb not in {h["HotFixID"].upper() for h in rows}:
                ip.error(f"Cannot find the requested hotfix '{kb}'.", "Get-HotFix", ea)
        return [_hotfix_obj(h) for h in rows]

    def key_of(ip: L.Interp, b: L.Bound, cmd: str, ea: str | None) -> RegistryKey | None:
        path = L.to_string(b.get("literalpath") or b.get("path", 0))
        values = _registry(state).get(_norm(path))
        if values is None:
            ip.error(f"Cannot find path '{path}' because it does not exist.", cmd, ea)
            return None
        return RegistryKey(path, values)

    def get_item(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        if winfs.is_file_path(L.to_string(b.get("literalpath") or b.get("path", 0))):
            return fs.get_item(ip, b, data, ea)
        key = key_of(ip, b, "Get-Item", ea)
        return [key] if key else []

    def get_item_property(cmd: str):
        def run(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
            key = key_of(ip, b, cmd, ea)
            if key is None:
                return []
            names = _names(b.get("name", 1))
            if not names and cmd == "Get-ItemProperty":
                return [L.PSObject((k, _kind(v)[1]) for k, v in key.values.items())]
            out = L.PSObject()
            for name in names:
                real = key._find(name)
                if real is None:
                    ip.error(f"Property {name} does not exist at path "
                             f"{key.ps_member('name')}.", cmd, ea)
                    continue
                out[real] = _kind(key.values[real])[1]
            if cmd == "Get-ItemPropertyValue":
                return list(out.values())
            return [out] if out else []
        return run

    def set_item_property(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = L.to_string(b.get("literalpath") or b.get("path", 0))
        reg = state.setdefault("registry", {})
        real = next((k for k in reg if _norm(k) == _norm(path)), None)
        if real is None:
            ip.error(f"Cannot find path '{path}' because it does not exist.",
                     "Set-ItemProperty", ea)
            return []
        name = L.to_string(b.get("name", 1))
        value = b.get("value", 2)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        existing = next((k for k in reg[real] if k.lower() == name.lower()), name)
        reg[real][existing] = value
        return []

    def test_path(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = L.to_string(b.get("literalpath") or b.get("path", 0))
        if winfs.is_file_path(path):
            return fs.test_path(ip, b, data, ea)
        return [_norm(path) in _registry(state)]

    def cim(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        cls = L.to_string(b.get("classname") or b.get("class", 0)).lower()
        if cls == "win32_operatingsystem":
            os_ = state["os"]
            return [L.PSObject(Caption=os_["caption"], Version=os_["version"],
                               BuildNumber=os_["build"], CSName=state["hostname"],
                               LastBootUpTime=L.PSDate(_boot_time(state)))]
        if cls == "win32_logicaldisk":
            return [L.PSObject(DeviceID=dev, Size=d["SizeGB"] * 2**30,
                               FreeSpace=d["FreeGB"] * 2**30)
                    for dev, d in state["disks"].items()]
        raise PSError(f'Invalid class "{cls}"', "Get-CimInstance")

    def new_object(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        if "comobject" not in b.named:
            name = L.to_string(b.get("typename", 0))
            raise PSError(f"Cannot find type [{name}]: verify that the assembly containing this "
                          "type is loaded.", "New-Object")
        factory = COM_CLASSES.get(L.to_string(b.named["comobject"]).lower())
        if factory is None:
            raise PSError("Retrieving the COM class factory for component with CLSID "
                          "{00000000-0000-0000-0000-000000000000} failed due to the following "
                          "error: 80040154 Class not registered (Exception from HRESULT: "
                          "0x80040154 (REGDB_E_CLASSNOTREG)).", "New-Object")
        return [factory(state, not system)]

    def restart(ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        # the endpoint answers nothing for `reboot_seconds` (winrm_server.py reads down_until)
        # and comes back with a new boot time; updates installed waiting for this restart
        # (RebootRequired) are installed now
        now = time.time()
        back = now + float(state.get("reboot_seconds", DEFAULT_REBOOT_SECONDS))
        state["down_until"] = back
        state["last_boot"] = datetime.fromtimestamp(back, UTC).strftime(BOOT_FORMAT)
        state["reboot_pending"] = False
        done = [u for u in state.get("pending_updates", []) if u.get("RebootRequired")]
        state["pending_updates"] = [u for u in state.get("pending_updates", [])
                                    if not u.get("RebootRequired")]
        have = {str(h.get("HotFixID", "")).upper() for h in state.get("hotfixes", [])}
        state.setdefault("hotfixes", []).extend(
            {"HotFixID": u["KB"], "Description": "Update",
             "InstalledOn": datetime.now().strftime("%Y-%m-%d")}
            for u in done if u.get("KB") and u["KB"].upper() not in have)
        return []

    return {
        **fs_commands,
        **_scheduler(state).commands(),
        "hostname": lambda ip, b, d, ea: [state["hostname"]],
        "whoami": lambda ip, b, d, ea: ["nt authority\\system" if system
                                        else "lab\\administrator"],
        "get-service": get_service,
        "start-service": change_service("Start-Service"),
        "stop-service": change_service("Stop-Service"),
        "restart-service": change_service("Restart-Service"),
        "set-service": set_service,
        "get-hotfix": get_hotfix,
        "get-item": get_item,
        "get-itemproperty": get_item_property("Get-ItemProperty"),
        "get-itempropertyvalue": get_item_property("Get-ItemPropertyValue"),
        "set-itemproperty": set_item_property,
        "test-path": test_path,
        "get-ciminstance": cim, "get-wmiobject": cim,
        "restart-computer": restart,
        "new-object": new_object,
    }

