"""The Windows Update Agent of the lab's Windows emulator (stdlib only): the COM objects behind
`New-Object -ComObject Microsoft.Update.Session`, over a host's recorded state (winstate.py).

A recorded-state emulator, not the agent. Members (names as on Windows, any case):

  UpdateSession    ClientApplicationID (settable), ReadOnly; CreateUpdateSearcher(),
                   CreateUpdateDownloader(), CreateUpdateInstaller()
  UpdateSearcher   Online, ServerSelection, ServiceID, IncludePotentiallySupersededUpdates,
                   ClientApplicationID (settable); Search(criteria)
  SearchResult     ResultCode (2 = succeeded), Updates, Warnings
  Update           Title, Description, Type (1 software, 2 driver), Identity (UpdateID,
                   RevisionNumber), KBArticleIDs (numbers without "KB"), MsrcSeverity,
                   SecurityBulletinIDs, Categories (Name, Type: the classification
                   "UpdateClassification" and the "Product"), LastDeploymentChangeTime (a
                   DateTime), IsHidden (settable: recorded in the state, as Windows keeps it),
                   IsInstalled, IsDownloaded, IsMandatory, RebootRequired, InstallationBehavior
                   (RebootBehavior 0 NeverReboots, 1 AlwaysRequiresReboot, 2 CanRequestReboot;
                   CanRequestUserInput, Impact, RequiresNetworkConnectivity), SupportUrl
                   EulaAccepted, AcceptEula()
  collections      Count, Item(i), enumeration; `New-Object -ComObject
                   Microsoft.Update.UpdateColl` also Add(update), Clear()
  UpdateDownloader Updates, ClientApplicationID, IsForced, Priority (settable); Download()
  UpdateInstaller  the same and ForceQuiet, AllowSourcePrompts; Install()
  results          ResultCode (2 succeeded, 3 succeeded with errors, 4 failed), HResult,
                   RebootRequired (install), GetUpdateResult(i) (ResultCode, HResult as the
                   signed Int32 .NET shows, RebootRequired)

Search criteria: `Name=value` / `Name!=value` terms joined by `and`, and-groups (optionally in
parentheses) joined by `or`, over IsInstalled, IsHidden, IsPresent, IsAssigned, BrowseOnly,
RebootRequired (0 or 1) and Type ('Software' or 'Driver'). Anything else is
WU_E_INVALID_CRITERIA (0x80240032), as the agent answers; the real criteria this emulator does not
model (UpdateID, CategoryIDs, DeploymentAction, ...) fail with a message saying so. The updates
searched are the state's `pending_updates` (none installed: installed ones are the `hotfixes`,
for Get-HotFix). Online and ServerSelection are kept but change nothing: the lab has no update
service to reach.

Failures, as Windows gives them: `update_search_error` in the state (an HRESULT such as
"0x8024402C") makes every Search throw it; a Disabled `wuauserv` makes Search throw 0x80070422;
`update_search_result_code` (0..5) replaces the ResultCode of a search that returns.
Remote sessions: as on Windows, Download() and Install() called from a WinRM session (a network
logon) throw E_ACCESSDENIED (0x80070005) and change nothing; searching works. They work only
in a script run on the host itself: in the emulator, a scheduled task's script, which runs as
SYSTEM (wintasks.py).
Download and install (an empty collection throws WU_E_NO_UPDATE 0x80240024): an update's
`DownloadError` / `InstallError` HRESULT ("0x80240022") fails it with that code; an installed
update leaves `pending_updates` for `hotfixes` (Get-HotFix) and, unless its RebootBehavior is
NeverReboots (or its `RebootAfterInstall` is false), sets `reboot_pending` (the RebootRequired
key) until Restart-Computer.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

try:  # imported as orchestrator.lab.winupdate (tests) or as a sibling script (winrm_server.py)
    from .winps_lang import PSDate, PSError
    from .winps_lang.com import ComCollection, ComError, ComObject, Method, as_bool, as_int, as_str
except ImportError:  # pragma: no cover - the lab server's own import path
    from winps_lang import PSDate, PSError  # type: ignore[no-redef]
    from winps_lang.com import (  # type: ignore[no-redef]
        ComCollection,
        ComError,
        ComObject,
        Method,
        as_bool,
        as_int,
        as_str,
    )

WU_E_INVALID_CRITERIA = 0x80240032
ERROR_SERVICE_DISABLED = 0x80070422
SERVICE_DISABLED_TEXT = ("The service cannot be started, either because it is disabled or "
                         "because it has no enabled devices associated with it.")
REBOOT_BEHAVIOR = {"neverreboots": 0, "alwaysrequiresreboot": 1, "canrequestreboot": 2}
UPDATE_TYPE = {"software": 1, "driver": 2}
SUCCEEDED = 2  # OperationResultCode orcSucceeded


def _not_emulated(iface: str, name: str) -> Any:
    def fail(*args: Any) -> Any:
        raise PSError(f"{iface}.{name} is not emulated by the lab's Windows Update emulator "
                      "(orchestrator/lab/winupdate.py)")
    return fail


def session(state: dict, remote: bool = False) -> UpdateSession:
    """`New-Object -ComObject Microsoft.Update.Session`, in a remote (WinRM) session or not."""
    return UpdateSession(state, remote)


class UpdateSession(ComObject):
    writable = {"clientapplicationid": as_str}

    def __init__(self, state: dict, remote: bool = False) -> None:
        self.state, self.client, self.remote = state, "", remote

    def ps_properties(self) -> dict[str, Any]:
        return {"ClientApplicationID": self.client, "ReadOnly": False}

    def store(self, name: str, value: Any) -> None:
        self.client = value

    def methods(self) -> dict[str, Method]:
        out: dict[str, Method] = {
            "createupdatesearcher": ("CreateUpdateSearcher", (0,),
                                     lambda: UpdateSearcher(self.state, self.client)),
            "createupdatedownloader": ("CreateUpdateDownloader", (0,),
                                       lambda: UpdateDownloader(self.state, self.client,
                                                                self.remote)),
            "createupdateinstaller": ("CreateUpdateInstaller", (0,),
                                      lambda: UpdateInstaller(self.state, self.client,
                                                              self.remote))}
        for name in ("CreateUpdateServiceManager", "CreateUpdateSystemInfo", "QueryHistory"):
            out[name.lower()] = (name, (0, 1, 2), _not_emulated("IUpdateSession", name))
        return out


class UpdateSearcher(ComObject):
    writable = {"online": as_bool, "serverselection": as_int, "serviceid": as_str,
                "includepotentiallysupersededupdates": as_bool, "clientapplicationid": as_str,
                "canautomaticallyupgradeservice": as_bool}

    def __init__(self, state: dict, client: str) -> None:
        self.state = state
        self.values: dict[str, Any] = {
            "CanAutomaticallyUpgradeService": False, "ClientApplicationID": client,
            "IncludePotentiallySupersededUpdates": False, "Online": True, "ServerSelection": 0,
            "ServiceID": "00000000-0000-0000-0000-000000000000"}

    def ps_properties(self) -> dict[str, Any]:
        return dict(self.values)

    def store(self, name: str, value: Any) -> None:
        real = next(k for k in self.values if k.lower() == name)
        self.values[real] = value

    def methods(self) -> dict[str, Method]:
        out: dict[str, Method] = {"search": ("Search", (1,), self.search)}
        for name, counts in (("BeginSearch", (3,)), ("GetTotalHistoryCount", (0,)),
                             ("QueryHistory", (2,))):
            out[name.lower()] = (name, counts, _not_emulated("IUpdateSearcher", name))
        return out

    def search(self, criteria: Any) -> SearchResult:
        if not isinstance(criteria, str):
            raise ComError(WU_E_INVALID_CRITERIA)
        groups = parse_criteria(criteria)
        hresult = self.state.get("update_search_error")
        if hresult:
            raise ComError(_hresult(hresult))
        svc = next((v for k, v in self.state.get("services", {}).items()
                    if k.lower() == "wuauserv"), None)
        if svc is not None and svc.get("StartType") == "Disabled":
            raise ComError(ERROR_SERVICE_DISABLED, SERVICE_DISABLED_TEXT)
        found = [Update(u) for u in self.state.get("pending_updates", [])]
        found = [u for u in found if any(all(u.matches(*t) for t in g) for g in groups)]
        code = self.state.get("update_search_result_code", SUCCEEDED)
        if not isinstance(code, int) or not 0 <= code <= 5:
            raise ValueError(f"update_search_result_code {code!r}: an OperationResultCode 0..5")
        return SearchResult(code, ComCollection(found))


def _hresult(value: Any) -> int:
    """An HRESULT from the state: "0x8024402C" or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 0xFFFFFFFF
    if isinstance(value, str) and re.fullmatch(r"0x[0-9A-Fa-f]{1,8}", value):
        return int(value, 16)
    raise ValueError(f"update_search_error {value!r}: an HRESULT such as '0x8024402C'")


class SearchResult(ComObject):
    def __init__(self, code: int, updates: ComCollection) -> None:
        self.code, self.updates = code, updates

    def ps_properties(self) -> dict[str, Any]:
        return {"ResultCode": self.code, "Updates": self.updates, "Warnings": ComCollection()}


# -------------------------------------------------------------------------- search criteria
_CRITERIA_TOKEN = re.compile(r"\s*(?:(\()|(\))|(!=|=)|'([^']*)'|(-?\d+)|([A-Za-z]+))")
_FLAGS = ("isinstalled", "ishidden", "ispresent", "isassigned", "browseonly", "rebootrequired")
_NOT_MODELLED = ("updateid", "revisionnumber", "categoryids", "deploymentaction",
                 "autoselectonwebsites", "isinstalledorhidden")


def parse_criteria(text: str) -> list[list[tuple[str, str, Any]]]:
    """`a=1 and b=0 or (c=1)` -> [[(name, op, value), ...], ...] (or-groups of and-terms)."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while text[pos:].strip():
        m = _CRITERIA_TOKEN.match(text, pos)
        if not m:
            raise ComError(WU_E_INVALID_CRITERIA)
        pos = m.end()
        kinds = ("(", ")", "op", "str", "int", "word")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        value = m.group(kinds.index(kind) + 1)
        tokens.append((kind, int(value) if kind == "int" else value))
    i = 0

    def take(*kinds: str) -> Any:
        nonlocal i
        if i < len(tokens) and tokens[i][0] in kinds:
            i += 1
            return tokens[i - 1][1]
        raise ComError(WU_E_INVALID_CRITERIA)

    def word(w: str) -> bool:
        nonlocal i
        if i < len(tokens) and tokens[i][0] == "word" and tokens[i][1].lower() == w:
            i += 1
            return True
        return False

    groups: list[list[tuple[str, str, Any]]] = []
    while True:
        paren = i < len(tokens) and tokens[i][0] == "("
        i += paren
        group = [_term(take("word"), take("op"), take("str", "int"))]
        while word("and"):
            group.append(_term(take("word"), take("op"), take("str", "int")))
        if paren:
            take(")")
        groups.append(group)
        if not word("or"):
            break
    if i != len(tokens):
        raise ComError(WU_E_INVALID_CRITERIA)
    return groups


def _term(name: str, op: str, value: Any) -> tuple[str, str, Any]:
    key = name.lower()
    if key in _FLAGS:
        if value not in (0, 1) or isinstance(value, str):
            raise ComError(WU_E_INVALID_CRITERIA)
        return key, op, bool(value)
    if key == "type":
        if not isinstance(value, str) or value.lower() not in UPDATE_TYPE:
            raise ComError(WU_E_INVALID_CRITERIA)
        return key, op, UPDATE_TYPE[value.lower()]
    if key in _NOT_MODELLED:
        raise PSError(f"the search criterion {name} is not emulated by the lab's Windows Update "
                      "emulator (orchestrator/lab/winupdate.py)")
    raise ComError(WU_E_INVALID_CRITERIA)


# -------------------------------------------------------------------------- updates
class Category(ComObject):
    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind

    def ps_properties(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": self.kind, "Description": self.name}


class InstallationBehavior(ComObject):
    def __init__(self, reboot: int) -> None:
        self.reboot = reboot

    def ps_properties(self) -> dict[str, Any]:
        return {"CanRequestUserInput": False, "Impact": 0, "RebootBehavior": self.reboot,
                "RequiresNetworkConnectivity": False}


class Identity(ComObject):
    def __init__(self, update_id: str, revision: int) -> None:
        self.update_id, self.revision = update_id, revision

    def ps_properties(self) -> dict[str, Any]:
        return {"RevisionNumber": self.revision, "UpdateID": self.update_id}


def _update_type(rec: dict) -> int:
    kind = str(rec.get("Type", "Software")).lower()
    if kind not in UPDATE_TYPE:
        raise ValueError(f"update Type {rec.get('Type')!r}: Software or Driver")
    return UPDATE_TYPE[kind]


def _reboot_behavior(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2):
        return value
    if isinstance(value, str) and value.lower() in REBOOT_BEHAVIOR:
        return REBOOT_BEHAVIOR[value.lower()]
    raise ValueError(f"RebootBehavior {value!r}: NeverReboots, AlwaysRequiresReboot or "
                     "CanRequestReboot")


class Update(ComObject):
    """One recorded update (a dict of the state's `pending_updates`, kept by reference so that
    setting IsHidden changes the state)."""

    writable = {"ishidden": as_bool}

    def __init__(self, rec: dict) -> None:
        self.rec = rec

    def ps_properties(self) -> dict[str, Any]:
        r = self.rec
        kb = str(r.get("KB", ""))
        released = r.get("Released")
        cats = [Category(r["Product"], "Product")] if r.get("Product") else []
        if r.get("Classification"):
            cats.append(Category(r["Classification"], "UpdateClassification"))
        update_id = r.get("UpdateID") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"lab-wu:{kb}"))
        return {
            "Title": r["Title"],
            "Description": r.get("Description", r["Title"]),
            "Type": _update_type(r),
            "Identity": Identity(update_id, int(r.get("RevisionNumber", 200))),
            "KBArticleIDs": ComCollection([kb.upper().removeprefix("KB")] if kb else []),
            "MsrcSeverity": r.get("MsrcSeverity"),
            "SecurityBulletinIDs": ComCollection(),
            "Categories": ComCollection(cats),
            "LastDeploymentChangeTime": PSDate(datetime.strptime(released, "%Y-%m-%d"))
            if released else None,
            "IsHidden": bool(r.get("Hidden", False)),
            "IsInstalled": False,
            "IsDownloaded": bool(r.get("Downloaded", False)),
            "IsMandatory": False,
            "RebootRequired": bool(r.get("RebootRequired", False)),
            "InstallationBehavior": InstallationBehavior(
                _reboot_behavior(r.get("RebootBehavior", "NeverReboots"))),
            "SupportUrl": r.get("SupportUrl", f"https://support.microsoft.com/help/{kb[2:]}"
                                if kb else ""),
            "EulaAccepted": bool(r.get("EulaAccepted", True)),
        }

    def methods(self) -> dict[str, Method]:
        return {"accepteula": ("AcceptEula", (0,), self.accept_eula)}

    def accept_eula(self) -> None:
        self.rec["EulaAccepted"] = True

    def store(self, name: str, value: Any) -> None:
        self.rec["Hidden"] = value

    def matches(self, key: str, op: str, value: Any) -> bool:
        r = self.rec
        actual: Any = {
            "isinstalled": False, "ispresent": False, "isassigned": True, "browseonly": False,
            "ishidden": bool(r.get("Hidden", False)),
            "rebootrequired": bool(r.get("RebootRequired", False)),
            "type": _update_type(r),
        }[key]
        return (actual == value) == (op == "=")


# -------------------------------------------------------------------------- download, install
WU_E_NO_UPDATE = 0x80240024  # the collection given to Download/Install is empty
E_ACCESSDENIED = 0x80070005  # Download/Install called from a remote (network logon) session
SUCCEEDED_WITH_ERRORS, FAILED = 3, 4


class UpdateCollection(ComCollection):
    """`New-Object -ComObject Microsoft.Update.UpdateColl`: Add(update) (returns the index),
    Clear(), Item(i), Count."""

    def ps_call(self, name: str, args: list) -> Any:
        if name == "add" and len(args) == 1:
            if not isinstance(args[0], Update):
                raise PSError('Exception calling "Add" with "1" argument(s): "Specified cast is '
                              'not valid."')
            self.append(args[0])
            return len(self) - 1
        if name == "clear" and not args:
            self.clear()
            return None
        return super().ps_call(name, args)


def _updates(value: Any) -> UpdateCollection:
    if not isinstance(value, ComCollection) or not all(isinstance(u, Update) for u in value):
        raise PSError("Specified cast is not valid.")
    return UpdateCollection(value)


def _overall(codes: list[int]) -> int:
    ok = [c == SUCCEEDED for c in codes]
    return SUCCEEDED if all(ok) else SUCCEEDED_WITH_ERRORS if any(ok) else FAILED


class OperationResult(ComObject):
    """IDownloadResult / IInstallationResult: ResultCode, HResult, RebootRequired (install
    only), GetUpdateResult(index) -> the per-update result of the same kind."""

    def __init__(self, per_update: list[tuple[int, int, bool]], install: bool) -> None:
        self.per_update, self.install = per_update, install

    def ps_properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {"HResult": 0,
                               "ResultCode": _overall([c for c, _, _ in self.per_update])}
        if self.install:
            out["RebootRequired"] = any(r for _, _, r in self.per_update)
        return out

    def methods(self) -> dict[str, Method]:
        return {"getupdateresult": ("GetUpdateResult", (1,), self.get_update_result)}

    def get_update_result(self, index: Any) -> UpdateResult:
        i = as_int(index)
        if not 0 <= i < len(self.per_update):
            raise ComError(0x80070057)  # E_INVALIDARG
        code, hresult, reboot = self.per_update[i]
        return UpdateResult(code, hresult, reboot if self.install else None)


class UpdateResult(ComObject):
    def __init__(self, code: int, hresult: int, reboot: bool | None) -> None:
        self.code, self.hresult, self.reboot = code, hresult, reboot

    def ps_properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {"HResult": self.hresult, "ResultCode": self.code}
        if self.reboot is not None:
            out["RebootRequired"] = self.reboot
        return out


def _signed(hresult: int) -> int:
    """An HRESULT as .NET shows it in an Int32 property (0x80240022 -> -2145124318)."""
    return hresult - 2**32 if hresult >= 2**31 else hresult


class _Operation(ComObject):
    """What the downloader and the installer share: settable Updates and options."""

    writable = {"updates": _updates, "clientapplicationid": as_str, "isforced": as_bool,
                "priority": as_int, "forcequiet": as_bool, "allowsourceprompts": as_bool}

    def __init__(self, state: dict, client: str, remote: bool = False) -> None:
        self.state, self.remote = state, remote
        self.values: dict[str, Any] = {"ClientApplicationID": client, "IsForced": False,
                                       "Priority": 2, "Updates": UpdateCollection()}

    def ps_properties(self) -> dict[str, Any]:
        return dict(self.values)

    def store(self, name: str, value: Any) -> None:
        real = next((k for k in self.values if k.lower() == name), name)
        self.values[real] = value

    def _todo(self) -> list[Update]:
        if self.remote:  # the agent refuses these to a network logon (WinRM)
            raise ComError(E_ACCESSDENIED, "Access is denied.")
        updates = self.values["Updates"]
        if not updates:
            raise ComError(WU_E_NO_UPDATE)
        return list(updates)


class UpdateDownloader(_Operation):
    """Download(): each update's `DownloadError` HRESULT in the state fails it; the others are
    marked downloaded."""

    def methods(self) -> dict[str, Method]:
        out: dict[str, Method] = {"download": ("Download", (0,), self.download)}
        for name in ("BeginDownload", "EndDownload"):
            out[name.lower()] = (name, (1, 2, 3), _not_emulated("IUpdateDownloader", name))
        return out

    def download(self) -> OperationResult:
        results = []
        for u in self._todo():
            error = u.rec.get("DownloadError")
            if error:
                results.append((FAILED, _signed(_hresult(error)), False))
            else:
                u.rec["Downloaded"] = True
                results.append((SUCCEEDED, 0, False))
        return OperationResult(results, install=False)


class UpdateInstaller(_Operation):
    """Install(): an update whose state has `InstallError` (an HRESULT) fails with it and stays
    pending; the others leave `pending_updates` for the `hotfixes` (Get-HotFix, installed
    today) and, unless their RebootBehavior is NeverReboots (or `RebootAfterInstall` says
    otherwise), need a restart: the installation result's RebootRequired and the host's
    RebootRequired key (`reboot_pending`), until Restart-Computer."""

    def __init__(self, state: dict, client: str, remote: bool = False) -> None:
        super().__init__(state, client, remote)
        self.values.update(ForceQuiet=False, AllowSourcePrompts=True, IsBusy=False,
                           RebootRequiredBeforeInstallation=False)

    def methods(self) -> dict[str, Method]:
        out: dict[str, Method] = {"install": ("Install", (0,), self.install)}
        for name in ("BeginInstall", "EndInstall", "Uninstall", "RunWizard"):
            out[name.lower()] = (name, (0, 1, 2, 3), _not_emulated("IUpdateInstaller", name))
        return out

    def install(self) -> OperationResult:
        results = []
        for u in self._todo():
            rec = u.rec
            error = rec.get("InstallError")
            if error:
                results.append((FAILED, _signed(_hresult(error)), False))
                continue
            behaviour = _reboot_behavior(rec.get("RebootBehavior", "NeverReboots"))
            reboot = bool(rec.get("RebootAfterInstall", behaviour != 0))
            pending = self.state.setdefault("pending_updates", [])
            if any(p is rec for p in pending):
                pending.remove(rec)
            kb = str(rec.get("KB", "")).upper()
            hotfixes = self.state.setdefault("hotfixes", [])
            if kb and kb not in {str(h.get("HotFixID", "")).upper() for h in hotfixes}:
                security = rec.get("Classification") == "Security Updates"
                hotfixes.append({"HotFixID": kb,
                                 "Description": "Security Update" if security else "Update",
                                 "InstalledOn": datetime.now().strftime("%Y-%m-%d")})
            if reboot:
                self.state["reboot_pending"] = True
            results.append((SUCCEEDED, 0, reboot))
        return OperationResult(results, install=True)
