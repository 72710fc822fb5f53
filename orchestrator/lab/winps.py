"""A small PowerShell/cmd interpreter over a recorded Windows host state (stdlib only).

Not Windows: it understands the statements listed below, separated by `;` or new lines, each
optionally piped into `ConvertTo-Json` (other pipeline stages such as Select-Object, Out-String,
Format-List are ignored). Objects are emitted with string enum values (Status "Running",
StartType "Automatic"); a single object is emitted unwrapped, like PowerShell does.

  hostname | $env:COMPUTERNAME | whoami | Write-Output/echo TEXT | exit N
  Get-Service [[-Name] A,B]            Start-Service/Stop-Service [-Name] A
  Set-Service [-Name] A -StartupType T Get-HotFix [[-Id] KB1,KB2]
  Get-ItemProperty [-Path] KEY [[-Name] N]     Get-ItemPropertyValue [-Path] KEY [-Name] N
  Set-ItemProperty [-Path] KEY [-Name] N -Value V    Test-Path KEY
  Get-CimInstance Win32_OperatingSystem | Win32_LogicalDisk     Restart-Computer [-Force]
  a script naming Microsoft.Update.Session (the Windows Update searcher), as a whole: the pending
  updates (Title, KBArticleIDs, MsrcSeverity, Categories, LastDeploymentChangeTime, RebootRequired)
Unknown commands fail like PowerShell: "X : The term 'X' is not recognized ..." and exit code 1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
from datetime import UTC, datetime

REBOOT_KEY = ("HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
              "\\RebootRequired")


class PSError(Exception):
    pass


def run_command(state_path: str, command: str, args: list[str]) -> tuple[bytes, bytes, int]:
    """Run one WinRM command line; returns (stdout, stderr, exit code)."""
    line = " ".join([command, *args]).strip()
    low = line.lower()
    with open(state_path) as fh:
        state = json.load(fh)
    before = json.dumps(state, sort_keys=True)
    m = re.match(r"^powershell(?:\.exe)?\b(.*)$", line, re.I | re.S)
    if m:
        rest = m.group(1)
        enc = re.search(r"-(?:e|ec|enc|encodedcommand)\s+(\S+)", rest, re.I)
        if enc:
            script = base64.b64decode(enc.group(1)).decode("utf-16-le")
        else:
            cmd = re.search(r"-(?:c|command)\s+(.*)$", rest, re.I | re.S)
            script = cmd.group(1) if cmd else ""
        out, err, code = run_script(state, script)
    elif low in ("hostname", "hostname.exe"):
        out, err, code = state["hostname"] + "\n", "", 0
    elif low == "whoami":
        out, err, code = "lab\\administrator\n", "", 0
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


def _split(text: str, sep: str) -> list[str]:
    """Split on sep characters outside quotes and braces."""
    parts, cur, quote, depth = [], [], "", 0
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in "({":
            depth += 1
            cur.append(ch)
        elif ch in ")}":
            depth -= 1
            cur.append(ch)
        elif ch in sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def run_script(state: dict, script: str) -> tuple[str, str, int]:
    if "microsoft.update.session" in script.lower():  # the whole script is an update search
        return _render(_pending_updates(state), "convertto-json" in script.lower()), "", 0
    out: list[str] = []
    for stmt in _split(script, ";\n"):
        if stmt.startswith("#"):
            continue
        stages = _split(stmt, "|")
        as_json = any(s.lower().startswith("convertto-json") for s in stages[1:])
        try:
            m = re.match(r"^exit\s+(\d+)$", stages[0], re.I)
            if m:
                return "".join(out), "", int(m.group(1))
            value = _cmdlet(state, stages[0])
        except PSError as exc:
            return "".join(out), str(exc) + "\r\n", 1
        out.append(_render(value, as_json))
    return "".join(out), "", 0


def _render(value, as_json: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if as_json:
        return json.dumps(value, indent=2) + "\n"
    if isinstance(value, bool):
        return ("True" if value else "False") + "\n"
    if isinstance(value, (str, int, float)):
        return f"{value}\n"
    rows = value if isinstance(value, list) else [value]
    text = []
    for row in rows:
        text += [f"{k} : {v}" for k, v in row.items()] + [""]
    return "\n".join(text) + "\n"


def _params(tokens: list[str]) -> tuple[list[str], dict[str, str]]:
    pos, named, i = [], {}, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and len(tok) > 1 and not tok[1:].isdigit():
            key = tok[1:].lower()
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                named[key] = tokens[i + 1]
                i += 2
            else:
                named[key] = "true"
                i += 1
        else:
            pos.append(tok)
            i += 1
    return pos, named


def _arg(pos: list[str], named: dict[str, str], key: str, index: int = 0) -> str | None:
    if key in named:
        return named[key]
    return pos[index] if len(pos) > index else None


def _names(value: str | None) -> list[str]:
    return [v.strip().strip("'\"") for v in value.split(",") if v.strip()] if value else []


def _cmdlet(state: dict, text: str):  # noqa: C901 - a dispatch table reads best as one function
    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split, lex.escape, lex.commenters = True, "", ""
    try:
        tokens = list(lex)
    except ValueError as exc:
        raise PSError(f"ParserError: {exc}") from exc
    if not tokens:
        return None
    cmd, (pos, named) = tokens[0].lower(), _params(tokens[1:])
    services = state["services"]
    if cmd in ("hostname", "$env:computername"):
        return state["hostname"]
    if cmd == "whoami":
        return "lab\\administrator"
    if cmd in ("write-output", "echo", "write-host"):
        return " ".join(pos)
    if cmd == "get-service":
        wanted = _names(_arg(pos, named, "name"))
        rows = []
        for name in wanted or sorted(services):
            svc = _lookup(services, name)
            if svc is None:
                raise PSError(f"Get-Service : Cannot find any service with service name '{name}'.")
            rows.append({"Name": svc[0], **svc[1]})
        return rows
    if cmd in ("start-service", "stop-service", "restart-service"):
        for name in _names(_arg(pos, named, "name")):
            svc = _lookup(services, name)
            if svc is None:
                raise PSError(f"{tokens[0]} : Cannot find any service with service name '{name}'.")
            if cmd != "stop-service" and svc[1]["StartType"] == "Disabled":
                raise PSError(f"{tokens[0]} : Service '{name}' cannot be started because it is "
                              "disabled.")
            svc[1]["Status"] = "Stopped" if cmd == "stop-service" else "Running"
        return None
    if cmd == "set-service":
        svc = _lookup(services, _arg(pos, named, "name") or "")
        if svc is None:
            raise PSError("Set-Service : Cannot find the service.")
        if "startuptype" in named:
            svc[1]["StartType"] = named["startuptype"]
        if "status" in named:
            svc[1]["Status"] = named["status"]
        return None
    if cmd == "get-hotfix":
        wanted = {n.upper() for n in _names(_arg(pos, named, "id"))}
        rows = [h for h in state["hotfixes"] if not wanted or h["HotFixID"].upper() in wanted]
        missing = wanted - {h["HotFixID"].upper() for h in rows}
        if missing:
            raise PSError(f"Get-HotFix : Cannot find the requested hotfix '{sorted(missing)[0]}'.")
        return rows
    if cmd in ("get-itemproperty", "get-itempropertyvalue", "set-itemproperty"):
        path = _arg(pos, named, "path") or ""
        key = _reg_key(state, path)
        if key is None:
            raise PSError(f"{tokens[0]} : Cannot find path '{path}' because it does not exist.")
        name = _arg(pos, named, "name", 1)
        if cmd == "set-itemproperty":
            value = named.get("value", pos[2] if len(pos) > 2 else "")
            key[name] = int(value) if re.fullmatch(r"-?\d+", value) else value
            return None
        if name is None:
            return dict(key)
        if name not in key:
            raise PSError(f"{tokens[0]} : Property {name} does not exist at path {path}.")
        return key[name] if cmd == "get-itempropertyvalue" else {name: key[name]}
    if cmd == "test-path":
        path = _arg(pos, named, "path") or ""
        if path.lower() == REBOOT_KEY.lower():
            return bool(state.get("reboot_pending"))
        return _reg_key(state, path) is not None
    if cmd in ("get-ciminstance", "get-wmiobject"):
        cls = (_arg(pos, named, "classname") or _arg(pos, named, "class") or "").lower()
        if cls == "win32_operatingsystem":
            os_ = state["os"]
            return {"Caption": os_["caption"], "Version": os_["version"],
                    "BuildNumber": os_["build"], "CSName": state["hostname"],
                    "LastBootUpTime": state.get("last_boot", "2024-01-01T00:00:00Z")}
        if cls == "win32_logicaldisk":
            return [{"DeviceID": dev, "Size": d["SizeGB"] * 2**30, "FreeSpace": d["FreeGB"] * 2**30}
                    for dev, d in state["disks"].items()]
        raise PSError(f"{tokens[0]} : Invalid class \"{cls}\"")
    if cmd == "restart-computer":
        state["reboot_pending"] = False
        state["last_boot"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return None
    raise PSError(f"{tokens[0]} : The term '{tokens[0]}' is not recognized as the name of a "
                  "cmdlet, function, script file, or operable program.")


def _lookup(services: dict, name: str):
    for key, val in services.items():
        if key.lower() == name.lower():
            return key, val
    return None


def _reg_key(state: dict, path: str) -> dict | None:
    path = path.replace("HKEY_LOCAL_MACHINE", "HKLM:").replace("Registry::", "")
    for key, values in state["registry"].items():
        if key.lower() == path.lower():
            return values
    return None


def _pending_updates(state: dict) -> list[dict]:
    return [{"Title": u["Title"], "KBArticleIDs": [u["KB"].removeprefix("KB")],
             "MsrcSeverity": u.get("MsrcSeverity"), "Categories": [u.get("Classification")],
             "LastDeploymentChangeTime": u.get("Released"),
             "RebootRequired": u.get("RebootRequired", False)}
            for u in state.get("pending_updates", [])]
