"""The file system of the lab's Windows emulator (stdlib only): a few folders and files kept in
the host's recorded state, with their owners and ACLs, and the commands that use them.

A recorded-state emulator, not NTFS. `state["files"]` maps an absolute path ("C:\\ProgramData")
to {"type": "dir" | "file", "sddl": its security descriptor, "content": text (files),
"reparse": true and "target": a path (a symbolic link or junction)}. The drive roots always
exist; `C:\\ProgramData` is there by default with Windows' own ACL (Users may create folders
and files in it, CREATOR OWNER gets full control of what it creates). Access is not checked:
the lab's sessions are Administrator's and SYSTEM's, who may do all of this anyway.

Commands (paths absolute, as `-LiteralPath` or `-Path`; no wildcards, no relative paths):
  Test-Path P [-PathType Leaf|Container]     Get-Item P [-Force] (FullName, Name, Attributes:
                                             [IO.FileAttributes] with ReparsePoint, Length)
  New-Item P -ItemType Directory|File [-Force] [-Value V]
  Set-Content P [-Value] V (or pipeline input) [-Encoding E] [-Force]: each item a line (CRLF)
  Get-Content P [-Raw]: the lines, or (-Raw) the whole text; a link is followed
  Remove-Item P1,P2 [-Force] [-Recurse]      Move-Item P -Destination D [-Force] (the item
                                             keeps its own security descriptor, as a rename)
  Get-Acl P: Owner, Group, Access, Sddl; GetOwner(type), GetGroup(type),
             GetAccessRules(explicit, inherited, type) (type [Security.Principal.
             SecurityIdentifier] or [Security.Principal.NTAccount]: rules with
             FileSystemRights, AccessControlType, IdentityReference (.Value), IsInherited),
             GetSecurityDescriptorSddlForm(sections), SetSecurityDescriptorSddlForm(sddl)
  Set-Acl P -AclObject A
A new item gets the creator as owner (BUILTIN\\Administrators for the administrator's session,
SYSTEM for SYSTEM) and the ACEs its parent passes on (OI to files, CI to folders; CREATOR
OWNER becomes the owner). SDDL: O:, G:, D: with P/AI flags and (A|D;flags;rights;;;sid) ACEs,
rights as FA FR FW FX GA GR GW GX, the single-right codes or 0x hex, SIDs as SY BA BU WD AU CO
or S-1-... .
"""

from __future__ import annotations

import re
from typing import Any

try:  # imported as orchestrator.lab.winfs (tests) or as a sibling script (winrm_server.py)
    from . import winps_lang as L
    from .winps_lang.values import FileAttributes
except ImportError:  # pragma: no cover - the lab server's own import path
    import winps_lang as L  # type: ignore[no-redef]
    from winps_lang.values import FileAttributes  # type: ignore[no-redef]

PSError = L.PSError
SYSTEM, ADMINS, USERS = "S-1-5-18", "S-1-5-32-544", "S-1-5-32-545"
ALIASES = {"SY": SYSTEM, "BA": ADMINS, "BU": USERS, "WD": "S-1-1-0", "AU": "S-1-5-11",
           "CO": "S-1-3-0", "OW": "S-1-3-4"}
NAMES = {SYSTEM: "NT AUTHORITY\\SYSTEM", ADMINS: "BUILTIN\\Administrators",
         USERS: "BUILTIN\\Users", "S-1-1-0": "Everyone",
         "S-1-5-11": "NT AUTHORITY\\Authenticated Users", "S-1-3-0": "CREATOR OWNER",
         "S-1-3-4": "OWNER RIGHTS"}
RIGHTS = {"FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0, "GA": 0x10000000,
          "GR": 0x80000000, "GW": 0x40000000, "GX": 0x20000000, "SD": 0x10000, "RC": 0x20000,
          "WD": 0x40000, "WO": 0x80000, "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10,
          "WP": 0x20, "DT": 0x40, "LO": 0x80, "CR": 0x100}
PROGRAMDATA_SDDL = ("O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICIIO;GA;;;CO)"
                    "(A;OICI;0x1200a9;;;BU)(A;CI;0x116;;;BU)")
DRIVE_SDDL = "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
DIRECTORY, ARCHIVE, REPARSE = 16, 32, 1024


def default_files(drive: str = "C:") -> dict[str, dict]:
    return {f"{drive}\\ProgramData": {"type": "dir", "sddl": PROGRAMDATA_SDDL}}


# ------------------------------------------------------------------------------ SDDL
_SDDL = re.compile(r"^O:(S-[\d-]+|[A-Z]{2})G:(S-[\d-]+|[A-Z]{2})D:([A-Z]*)((?:\([^()]*\))*)$")


def _sid(text: str) -> str:
    if text in ALIASES:
        return ALIASES[text]
    if re.fullmatch(r"S-1(-\d+)+", text):
        return text
    raise PSError(f"The SDDL form of a security descriptor object is invalid: SID '{text}' is "
                  "not emulated (orchestrator/lab/winfs.py)")


def _rights(text: str) -> int:
    if re.fullmatch(r"0x[0-9A-Fa-f]+", text):
        return int(text, 16)
    codes = re.findall(r"..", text)
    if not text or len(text) % 2 or any(c not in RIGHTS for c in codes):
        raise PSError("The SDDL form of a security descriptor object is invalid.")
    total = 0
    for c in codes:
        total |= RIGHTS[c]
    return total


def parse_sddl(sddl: str) -> dict[str, Any]:
    """{"owner", "group": SIDs, "flags": "PAI", "aces": [(type, flags, rights, sid)]}."""
    m = _SDDL.match(sddl.strip())
    if not m:
        raise PSError("The SDDL form of a security descriptor object is invalid.")
    aces = []
    for ace in re.findall(r"\(([^()]*)\)", m.group(4)):
        parts = ace.split(";")
        if len(parts) != 6 or parts[0] not in ("A", "D") or parts[3] or parts[4]:
            raise PSError("The SDDL form of a security descriptor object is invalid.")
        flags = re.findall(r"..", parts[1])
        if any(f not in ("OI", "CI", "IO", "NP", "ID") for f in flags):
            raise PSError("The SDDL form of a security descriptor object is invalid.")
        aces.append((parts[0], "".join(flags), _rights(parts[2]), _sid(parts[5])))
    return {"owner": _sid(m.group(1)), "group": _sid(m.group(2)), "flags": m.group(3),
            "aces": aces}


def _alias(sid: str) -> str:
    return next((a for a, s in ALIASES.items() if s == sid), sid)


def render_sddl(sd: dict[str, Any]) -> str:
    aces = "".join(f"({t};{f};0x{r:x};;;{_alias(s)})" for t, f, r, s in sd["aces"])
    return f"O:{_alias(sd['owner'])}G:{_alias(sd['group'])}D:{sd['flags']}{aces}"


def inherited_sddl(parent_sddl: str, owner: str, folder: bool) -> str:
    """The security descriptor of a new item: `owner`, and what its parent passes on."""
    parent = parse_sddl(parent_sddl)
    aces = []
    for kind, flags, rights, sid in parent["aces"]:
        pairs = re.findall(r"..", flags)
        if ("CI" if folder else "OI") not in pairs:
            continue
        sid = owner if sid == ALIASES["CO"] else sid
        keep = [p for p in pairs if p in ("OI", "CI")] if folder and "NP" not in pairs else []
        aces.append((kind, "".join(keep) + "ID", rights, sid))
    return render_sddl({"owner": owner, "group": SYSTEM, "flags": "AI", "aces": aces})


# ------------------------------------------------------------------------------ objects
class IdentityReference:
    def __init__(self, value: str) -> None:
        self.value = value

    def ps_member(self, name: str) -> Any:
        return self.value if name == "value" else None

    def __str__(self) -> str:
        return self.value


def _identity(sid: str, kind: Any) -> IdentityReference:
    name = kind.name.removeprefix("system.") if isinstance(kind, L.values.PSType) else ""
    if name == "security.principal.securityidentifier":
        return IdentityReference(sid)
    if name == "security.principal.ntaccount":
        return IdentityReference(NAMES.get(sid, sid))
    raise PSError('Cannot convert argument "targetType": only [Security.Principal.'
                  "SecurityIdentifier] and [Security.Principal.NTAccount] are emulated.")


class Acl:
    """What Get-Acl gives (a FileSecurity / DirectorySecurity), over an SDDL string."""

    def __init__(self, path: str, sddl: str) -> None:
        self.path, self.sddl = path, sddl

    def _rules(self, kind: Any = None) -> list[L.PSObject]:
        rules = []
        for t, flags, rights, sid in parse_sddl(self.sddl)["aces"]:
            pairs = re.findall(r"..", flags)
            inherit = [n for p, n in (("CI", "ContainerInherit"), ("OI", "ObjectInherit"))
                       if p in pairs]
            prop = [n for p, n in (("NP", "NoPropagateInherit"), ("IO", "InheritOnly"))
                    if p in pairs]
            ident = _identity(sid, kind) if kind is not None else \
                IdentityReference(NAMES.get(sid, sid))
            rules.append(L.PSObject(FileSystemRights=rights,
                                    AccessControlType="Allow" if t == "A" else "Deny",
                                    IdentityReference=ident, IsInherited="ID" in pairs,
                                    InheritanceFlags=", ".join(inherit) or "None",
                                    PropagationFlags=", ".join(prop) or "None"))
        return rules

    def ps_member(self, name: str) -> Any:
        sd = parse_sddl(self.sddl)
        values = {"owner": NAMES.get(sd["owner"], sd["owner"]),
                  "group": NAMES.get(sd["group"], sd["group"]), "access": self._rules(),
                  "sddl": self.sddl, "path": f"Microsoft.PowerShell.Core\\FileSystem::{self.path}",
                  "arerulesprotected": "P" in sd["flags"]}
        return values.get(name)

    def ps_call(self, name: str, args: list) -> Any:
        sd = parse_sddl(self.sddl)
        if name in ("getowner", "getgroup") and len(args) == 1:
            return _identity(sd["owner" if name == "getowner" else "group"], args[0])
        if name == "getaccessrules" and len(args) == 3:
            explicit, inherited = L.truthy(args[0]), L.truthy(args[1])
            return [r for r in self._rules(args[2])
                    if (inherited if r["IsInherited"] else explicit)]
        if name == "getsecuritydescriptorsddlform" and len(args) == 1:
            return self.sddl
        if name == "setsecuritydescriptorsddlform" and len(args) in (1, 2):
            text = L.to_string(args[0])
            parse_sddl(text)
            self.sddl = text
            return None
        raise PSError(f"Method invocation failed because [System.Security.AccessControl."
                      f"FileSystemSecurity] does not contain a method named '{name}' (or it is "
                      "not emulated).")

    def __str__(self) -> str:
        return "System.Security.AccessControl.FileSecurity"


class Item:
    """What Get-Item / New-Item give for a file or a folder."""

    def __init__(self, path: str, entry: dict) -> None:
        self.path, self.entry = path, entry

    def ps_member(self, name: str) -> Any:
        folder = self.entry["type"] == "dir"
        attrs = (DIRECTORY if folder else ARCHIVE) | (REPARSE if self.entry.get("reparse") else 0)
        values = {"fullname": self.path, "name": self.path.rstrip("\\").rsplit("\\", 1)[-1],
                  "attributes": FileAttributes(attrs), "psiscontainer": folder,
                  "length": None if folder else len(self.entry.get("content", "").encode()),
                  "linktype": "SymbolicLink" if self.entry.get("reparse") else None}
        return values.get(name)

    def __str__(self) -> str:
        return self.path


# ------------------------------------------------------------------------------ commands
def _norm(path: str) -> str:
    return path.replace("/", "\\").rstrip("\\").lower()


def is_file_path(path: str) -> bool:
    return re.match(r"^[A-Za-z]:(\\|/|$)", path) is not None


class FileSystem:
    """The state's files and the commands over them (`commands()`), for one identity."""

    def __init__(self, state: dict, owner: str) -> None:
        self.state, self.owner = state, owner
        self.drive = str(state.get("system_drive", "C:"))

    @property
    def files(self) -> dict[str, dict]:
        if "files" not in self.state:
            self.state["files"] = default_files(self.drive)
        return self.state["files"]

    def _path(self, b: L.Bound, cmd: str) -> str:
        path = L.to_string(b.get("literalpath") or b.get("path", 0))
        if not is_file_path(path):
            raise PSError(f"the path '{path}' is not emulated: absolute paths only "
                          "(orchestrator/lab/winfs.py)", cmd)
        return path.replace("/", "\\").rstrip("\\") or path

    def find(self, path: str) -> tuple[str, dict] | None:
        key = _norm(path)
        if re.fullmatch(r"[a-z]:", key):
            return path[:2].upper() + "\\", {"type": "dir", "sddl": DRIVE_SDDL}
        for real, entry in self.files.items():
            if _norm(real) == key:
                return real, entry
        return None

    def _parent(self, path: str) -> tuple[str, dict] | None:
        parent = path.rstrip("\\").rsplit("\\", 1)[0]
        found = self.find(parent)
        return found if found and found[1]["type"] == "dir" else None

    def _create(self, path: str, kind: str, cmd: str) -> dict:
        parent = self._parent(path)
        if parent is None:
            raise PSError(f"Could not find a part of the path '{path}'.", cmd)
        entry: dict[str, Any] = {"type": kind, "sddl": inherited_sddl(parent[1]["sddl"],
                                                                      self.owner, kind == "dir")}
        if kind == "file":
            entry["content"] = ""
        self.files[path] = entry
        return entry

    def _children(self, path: str) -> list[str]:
        prefix = _norm(path) + "\\"
        return [k for k in self.files if _norm(k).startswith(prefix)]

    def commands(self) -> dict[str, L.Command]:
        return {"test-path": self.test_path, "get-item": self.get_item,
                "new-item": self.new_item, "set-content": self.set_content,
                "get-content": self.get_content, "remove-item": self.remove_item,
                "move-item": self.move_item, "get-acl": self.get_acl, "set-acl": self.set_acl}

    def test_path(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        found = self.find(self._path(b, "Test-Path"))
        kind = L.to_string(b.named.get("pathtype", "Any")).lower()
        if found is None:
            return [False]
        return [kind == "any" or (kind == "container") == (found[1]["type"] == "dir")]

    def get_item(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Get-Item")
        found = self.find(path)
        if found is None:
            ip.error(f"Cannot find path '{path}' because it does not exist.", "Get-Item", ea)
            return []
        return [Item(*found)]

    def new_item(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "New-Item")
        kind = L.to_string(b.named.get("itemtype", "File")).lower()
        if kind not in ("directory", "file"):
            raise PSError(f"the item type '{kind}' is not emulated (orchestrator/lab/winfs.py)",
                          "New-Item")
        found = self.find(path)
        if found is not None:
            if kind == "directory" and found[1]["type"] == "dir" and b.named.get("force"):
                return [Item(*found)]
            ip.error(f"An item with the specified name {path} already exists.", "New-Item", ea)
            return []
        entry = self._create(path, "dir" if kind == "directory" else "file", "New-Item")
        if kind == "file" and "value" in b.named:
            entry["content"] = L.to_string(b.named["value"])
        return [Item(path, entry)]

    def set_content(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Set-Content")
        values = L.enumerate_(b.get("value", 1)) if ("value" in b.named or len(b.pos) > 1) \
            else data
        found = self.find(path)
        if found is not None and found[1]["type"] == "dir":
            ip.error(f"Access to the path '{path}' is denied.", "Set-Content", ea)
            return []
        entry = found[1] if found is not None else self._create(path, "file", "Set-Content")
        entry["content"] = "".join(L.to_string(v) + "\r\n" for v in values)
        return []

    def _read(self, path: str, depth: int = 0) -> dict | None:
        found = self.find(path)
        if found and found[1].get("target") and depth < 8:
            return self._read(str(found[1]["target"]), depth + 1)
        return found[1] if found else None

    def get_content(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Get-Content")
        entry = self._read(path)
        if entry is None or entry["type"] != "file":
            ip.error(f"Cannot find path '{path}' because it does not exist.", "Get-Content", ea)
            return []
        text = str(entry.get("content", ""))
        if b.named.get("raw"):
            return [text]
        lines = text.replace("\r\n", "\n").split("\n")
        return lines[:-1] if lines and lines[-1] == "" else lines

    def remove_item(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        raw = b.get("literalpath") or b.get("path", 0)
        for one in L.enumerate_(raw):
            path = self._path(L.Bound(named={"literalpath": one}), "Remove-Item")
            found = self.find(path)
            if found is None:
                ip.error(f"Cannot find path '{path}' because it does not exist.",
                         "Remove-Item", ea)
                continue
            children = self._children(found[0])
            if children and not b.named.get("recurse"):
                ip.error(f"The item at {path} has children and the Recurse parameter was not "
                         "specified.", "Remove-Item", ea)
                continue
            for k in [*children, found[0]]:
                self.files.pop(k, None)
        return []

    def move_item(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Move-Item")
        dest = self._path(L.Bound(named={"literalpath": b.get("destination", 1)}), "Move-Item")
        found = self.find(path)
        if found is None:
            ip.error(f"Cannot find path '{path}' because it does not exist.", "Move-Item", ea)
            return []
        there = self.find(dest)
        if there is not None:
            if not b.named.get("force") or there[1]["type"] == "dir":
                ip.error("Cannot create a file when that file already exists.", "Move-Item", ea)
                return []
            self.files.pop(there[0])
        if self._parent(dest) is None:
            ip.error(f"Could not find a part of the path '{dest}'.", "Move-Item", ea)
            return []
        for k in self._children(found[0]):
            self.files[dest + k[len(found[0]):]] = self.files.pop(k)
        self.files[dest] = self.files.pop(found[0])
        return []

    def get_acl(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Get-Acl")
        found = self.find(path)
        if found is None:
            ip.error(f"Cannot find path '{path}' because it does not exist.", "Get-Acl", ea)
            return []
        return [Acl(found[0], str(found[1]["sddl"]))]

    def set_acl(self, ip: L.Interp, b: L.Bound, data: list, ea: str | None) -> list:
        path = self._path(b, "Set-Acl")
        acl = b.named.get("aclobject")
        if not isinstance(acl, Acl):
            raise PSError("Cannot bind parameter 'AclObject': an object from Get-Acl is needed.",
                          "Set-Acl")
        found = self.find(path)
        if found is None or found[0].endswith("\\") and len(found[0]) == 3:
            ip.error(f"Cannot find path '{path}' because it does not exist.", "Set-Acl", ea)
            return []
        found[1]["sddl"] = acl.sddl
        return []
