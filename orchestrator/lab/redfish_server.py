"""The lab's BMCs: sushy-emulator's fake driver plus firmware inventory, updates, tasks and resets.

Run as `python redfish_server.py CONFIG.json`. One process serves every BMC, each on its own
loopback address over HTTPS (certificate from the lab CA) with HTTP basic auth. Each BMC shows
one system and one manager, both with Id = the host name (`bmc_system_id`); power is sushy's fake
driver (state in `<state_dir>/fakedriver.sqlite`).

Firmware, per BMC in `<state_dir>`: `firmware-<host>.json` (the inventory, {component: {Name,
Version}}; tests may edit it), `firmware-<host>.pending.json` (versions waiting for a reset) and
`tasks-<host>.json` (the update tasks).

SimpleUpdate (as a real BMC): checks the request (400 when malformed), answers 202 with a Task and
`Location: /redfish/v1/TaskService/TaskMonitors/<id>`, then in the background downloads the
ImageURI (http, or https verified against the lab CA) and runs the image (firmware_images.py):
the task monitor answers 202 while the task runs and 200 when it is Completed or in Exception.
An image whose component needs a reset completes with a `Base.1.16.0.ResetRequired` message
(the reset action URI and ResetType) and its version shows after that reset. Manager.Reset closes
the BMC's listening socket for a few seconds; ComputerSystem.Reset that boots the system
activates pending system firmware when the system is On again.

The lab drives the BMCs through a Unix socket (`<state_dir>/control.sock`, one JSON line per
request): down, up, power, status, set_firmware, restore (orchestrator.lab.fleet.Lab).
"""

from __future__ import annotations

import copy
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid as uuidlib
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from firmware_images import (  # noqa: E402  (stdlib-only sibling module)
    DEFAULT_FIRMWARE,
    MAX_IMAGE_BYTES,
    RESET_SECONDS,
    ImageError,
    make_image,
    parse_image,
)

FW = "/redfish/v1/UpdateService/FirmwareInventory"
TASKS = "/redfish/v1/TaskService/Tasks"
MONITORS = "/redfish/v1/TaskService/TaskMonitors"
SIMPLE_UPDATE = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
TASK_TYPE = "#Task.v1_4_3.Task"
DOWNLOAD_TIMEOUT = 5.0  # seconds without an answer before a download fails
POWER_SECONDS = 1.0  # a system powering on or restarting is On again after this long
CLIENT_TIMEOUT = 30.0  # an idle or silent client connection is closed after this long
MAX_TASKS = 200  # tasks kept per BMC (the oldest finished ones go first)
ACTIVE = ("New", "Running")
RESET_TYPES = {"system": "ForceRestart", "manager": "GracefulRestart"}
TASK_STATUS = {"New": "OK", "Running": "OK", "Completed": "OK", "Exception": "Critical",
               "Cancelled": "Warning"}


# ---- small helpers ---------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _read_json(path: str, default):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return copy.deepcopy(default)


def _write_json(path: str, data) -> None:
    tmp = f"{path}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def redact(uri: str) -> str:
    """The URI without user:password (task messages and files never hold credentials)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "(unparsable URI)"
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, ""))


def _message(mid: str, text: str, args: list, severity: str = "OK") -> dict:
    return {"MessageId": mid, "Message": text, "MessageArgs": args, "Severity": severity,
            "MessageSeverity": severity}


def _reset_required(uri: str, reset_type: str) -> dict:
    return {**_message("Base.1.16.0.ResetRequired",
                       "In order to complete the operation, a component reset is required with "
                       f"the Reset action URI '{uri}' and ResetType '{reset_type}'.",
                       [uri, reset_type], "Warning"),
            "Resolution": "Perform the required Reset action on the specified component."}


class TransferError(Exception):
    """The image could not be downloaded (the message says why, without credentials)."""


def download(uri: str, ca: str | None) -> bytes:
    """The image at uri (http, or https verified against the lab CA), at most MAX_IMAGE_BYTES."""
    import requests

    started = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False  # a BMC does not use this machine's proxy settings
            session.max_redirects = 3
            with session.get(uri, timeout=DOWNLOAD_TIMEOUT, verify=ca or True,
                             stream=True) as resp:
                if resp.status_code != 200:
                    raise TransferError(f"HTTP {resp.status_code} {resp.reason or ''}".strip())
                data = bytearray()
                for chunk in resp.iter_content(16384):
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise TransferError(f"larger than {MAX_IMAGE_BYTES // 1024} KiB, "
                                            "not a lab firmware image")
                    if time.monotonic() - started > 2 * DOWNLOAD_TIMEOUT:
                        raise TransferError("too slow")
                return bytes(data)
    except requests.exceptions.SSLError:
        raise TransferError("the server's TLS certificate is not trusted (the BMC trusts the "
                            "lab CA)") from None
    except requests.exceptions.Timeout:
        raise TransferError(f"no answer within {DOWNLOAD_TIMEOUT:g} s") from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        why = ("connection refused" if "refused" in text.lower() else
               "host not found" if "resolve" in text.lower() or "not known" in text else
               "connection failed")
        raise TransferError(why) from None
    except requests.exceptions.RequestException as exc:
        raise TransferError(type(exc).__name__) from None


# ---- one BMC ---------------------------------------------------------------------------------
class Bmc:
    """State of one BMC. `lock` guards its files and tasks and is only held briefly; nothing
    holds it while downloading or waiting."""

    def __init__(self, cfg: dict, state_dir: str, ca: str | None) -> None:
        self.name: str = cfg["system_id"]
        self.uuid: str = cfg["uuid"]
        self.address: str = cfg["address"]
        self.port: int = int(cfg["port"])
        self.ca = ca
        self.state_dir = state_dir
        self.lock = threading.RLock()
        self.listen_lock = threading.Lock()
        self.server = None
        self.wsgi = None
        self.ssl_context = None
        self.forced_down = False  # Lab.bmc_down
        self.resetting = False  # during a Manager.Reset
        tasks = _read_json(self._path("tasks"), [])
        self.tasks: dict[str, dict] = {t["Id"]: t for t in tasks if isinstance(t, dict)}
        self.next_id = 1 + max((int(t) for t in self.tasks if t.isdigit()), default=0)
        self._interrupt("the BMC restarted during the update")

    # -- files
    def _path(self, kind: str) -> str:
        names = {"fw": f"firmware-{self.name}.json", "tasks": f"tasks-{self.name}.json",
                 "pending": f"firmware-{self.name}.pending.json"}
        return os.path.join(self.state_dir, names[kind])

    def load_fw(self) -> dict:
        with self.lock:
            fw = _read_json(self._path("fw"), None)
            if fw is None:
                fw = copy.deepcopy(DEFAULT_FIRMWARE)
                _write_json(self._path("fw"), fw)
            return fw

    def save_fw(self, fw: dict) -> None:
        _write_json(self._path("fw"), fw)

    def load_pending(self) -> dict:
        return _read_json(self._path("pending"), {})

    def save_pending(self, pending: dict) -> None:
        _write_json(self._path("pending"), pending)

    def save_tasks(self) -> None:
        tasks = sorted(self.tasks.values(), key=lambda t: int(t["Id"]))
        while len(tasks) > MAX_TASKS:
            old = next((t for t in tasks if t["state"] not in ACTIVE), tasks[0])
            tasks.remove(old)
            self.tasks.pop(old["Id"], None)
        _write_json(self._path("tasks"), tasks)

    # -- listening
    @property
    def unavailable(self) -> bool:
        return self.forced_down or self.resetting

    def sync_listener(self) -> None:
        """Listen when the BMC is available, close the listening socket when it is not."""
        from werkzeug.serving import make_server

        with self.listen_lock:
            if not self.unavailable and self.server is None:
                for attempt in range(50):
                    try:
                        srv = make_server(self.address, self.port, self.wsgi, threaded=True,
                                          ssl_context=self.ssl_context)
                        break
                    except OSError:
                        if attempt == 49:
                            raise
                        time.sleep(0.1)
                self.server = srv
                threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                 daemon=True).start()
            elif self.unavailable and self.server is not None:
                srv, self.server = self.server, None
                srv.shutdown()
                srv.server_close()

    # -- tasks
    def _interrupt(self, why: str) -> None:
        with self.lock:
            changed = False
            for task in self.tasks.values():
                if task["state"] in ACTIVE:
                    self._end(task, "Exception", "Update.1.0.ApplyFailed",
                              f"Installation of image '{task['image']}' failed: {why}; the "
                              "installed version is unchanged.")
                    changed = True
            if changed:
                self.save_tasks()

    def _end(self, task: dict, state: str, mid: str | None = None, text: str = "") -> None:
        task["percent"] = 100 if state == "Completed" else self._percent(task)
        task["state"] = state
        task["ended"] = time.time()
        if mid:
            task["error"] = _message(mid, text, [task["image"], ", ".join(task["components"]
                                                                          or ["UpdateService"])],
                                     "Critical" if state == "Exception" else "Warning")

    def start_update(self, uri: str, components: list[str] | None) -> dict:
        with self.lock:
            tid = str(self.next_id)
            self.next_id += 1
            task = {"Id": tid, "image": redact(uri), "components": components or [],
                    "version": None, "state": "New", "created": time.time(), "flashing": None,
                    "ended": None, "seconds": None, "fault": None, "reset": None,
                    "awaiting": [], "percent": 0, "error": None}
            self.tasks[tid] = task
            self.save_tasks()
            body = self.render(task)
        threading.Thread(target=self._run, args=(tid, uri), daemon=True,
                         name=f"update-{self.name}-{tid}").start()
        return body

    def _fail(self, tid: str, mid: str, text: str) -> None:
        with self.lock:
            task = self.tasks.get(tid)
            if task and task["state"] in ACTIVE:
                self._end(task, "Exception", mid, text)
                self.save_tasks()

    def _run(self, tid: str, uri: str) -> None:
        with self.lock:
            task = self.tasks[tid]
            if task["state"] != "New":
                return
            task["state"] = "Running"
            image_name = task["image"]
        try:
            raw = download(uri, self.ca)
        except TransferError as exc:
            return self._fail(tid, "Update.1.0.TransferFailed",
                              f"Transfer of image '{image_name}' failed: {exc}.")
        try:
            image = parse_image(raw)
        except ImageError as exc:
            return self._fail(tid, "Update.1.0.VerificationFailed",
                              f"Verification of image '{image_name}' failed: {exc}.")
        with self.lock:
            if task["state"] != "Running":
                return None
            components = task["components"] or [image["component"]]
            missing = [c for c in components if c not in self.load_fw()]
            if missing:
                task["components"] = components
                self._end(task, "Exception", "Update.1.0.VerificationFailed",
                          f"Verification of image '{image_name}' failed: this BMC has no "
                          f"component {', '.join(missing)}.")
                self.save_tasks()
                return None
            task.update(components=components, version=image["version"],
                        seconds=image["seconds"], fault=image["fault"], reset=image["reset"],
                        reset_seconds=image["reset_seconds"], flashing=time.time())
            self.save_tasks()
        if image["fault"] == "hang":
            return None  # Running for ever (until cancelled or the BMC resets)
        half = image["fault"] == "fail-halfway"
        time.sleep(image["seconds"] / 2 if half else image["seconds"])
        with self.lock:
            if task["state"] != "Running":
                return None
            if half:
                self._end(task, "Exception", "Update.1.0.ApplyFailed",
                          f"Installation of image '{image_name}' on "
                          f"'{', '.join(components)}' failed at 50 %: the component rejected "
                          "the image; the installed version is unchanged.")
            else:
                self._complete(task)
            self.save_tasks()
        return None

    def _complete(self, task: dict) -> None:
        fw, pending = self.load_fw(), self.load_pending()
        for comp in task["components"]:
            if task["reset"]:
                pending[comp] = {"Version": task["version"], "reset": task["reset"],
                                 "task": task["Id"], "reset_seconds": task["reset_seconds"],
                                 "no_change": task["fault"] == "no-change"}
            else:
                pending.pop(comp, None)
                if task["fault"] != "no-change":
                    fw[comp]["Version"] = task["version"]
        task["awaiting"] = [task["reset"]] if task["reset"] else []
        self.save_fw(fw)
        self.save_pending(pending)
        self._end(task, "Completed")

    def cancel(self, tid: str) -> None:
        with self.lock:
            task = self.tasks[tid]
            if task["state"] in ACTIVE:
                self._end(task, "Cancelled", "TaskEvent.1.0.TaskCancelled",
                          f"The task with Id '{tid}' has been cancelled.")
                self.save_tasks()

    def apply_pending(self, kind: str) -> None:
        """A reset of `kind` (system | manager) activates the versions waiting for it."""
        with self.lock:
            pending = self.load_pending()
            due = {c: p for c, p in pending.items() if p.get("reset") == kind}
            if not due:
                return
            fw = self.load_fw()
            for comp, entry in due.items():
                if not entry.get("no_change") and comp in fw:
                    fw[comp]["Version"] = entry["Version"]
                del pending[comp]
                task = self.tasks.get(str(entry.get("task")))
                if task and kind in task["awaiting"]:
                    task["awaiting"].remove(kind)
                    task["activated"] = time.time()
            self.save_fw(fw)
            self.save_pending(pending)
            self.save_tasks()

    def reset_seconds(self) -> float:
        due = [p.get("reset_seconds", RESET_SECONDS) for p in self.load_pending().values()
               if p.get("reset") == "manager"]
        return max(due, default=RESET_SECONDS)

    def begin_reset(self) -> None:
        """Manager.Reset: unreachable now, back after reset_seconds with manager firmware
        activated; updates that were running are interrupted."""
        with self.lock:
            if self.resetting:
                return
            self.resetting = True
            seconds = self.reset_seconds()
        self._interrupt("interrupted by a reset of the BMC")
        threading.Thread(target=self._reset, args=(seconds,), daemon=True).start()

    def _reset(self, seconds: float) -> None:
        t0 = time.monotonic()
        self.sync_listener()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        self.apply_pending("manager")
        with self.lock:
            self.resetting = False
        self.sync_listener()

    # -- rendering
    def _percent(self, task: dict) -> int:
        if task["state"] not in ACTIVE:
            return task.get("percent", 0)
        if not task.get("flashing"):
            return 0
        cap = 50 if task["fault"] in ("fail-halfway", "hang") else 99
        if not task["seconds"]:
            return cap
        return min(cap, int(100 * (time.time() - task["flashing"]) / task["seconds"]))

    def render(self, task: dict) -> dict:
        tid, image, state = task["Id"], task["image"], task["state"]
        comps = ", ".join(task["components"]) or "UpdateService"
        if state in ACTIVE and not task.get("flashing"):
            msgs = [_message("Update.1.0.TransferringToComponent",
                             f"Image '{image}' is being transferred to '{comps}'.", [image, comps])]
        elif state in ACTIVE:
            msgs = [_message("Update.1.0.InstallingOnComponent",
                             f"Image '{image}' is being installed on '{comps}'.", [image, comps])]
        elif state == "Completed" and task["awaiting"]:
            msgs = [_message("Update.1.0.AwaitToActivate",
                             f"Awaiting for an action to proceed with activating image '{image}' "
                             f"on '{comps}'.", [image, comps], "Warning")]
            for kind in task["awaiting"]:
                msgs.append(_reset_required(self.reset_uri(kind), RESET_TYPES[kind]))
        elif state == "Completed":
            msgs = [_message("Update.1.0.UpdateSuccessful",
                             f"Device '{comps}' successfully updated with image '{image}'.",
                             [comps, image])]
        else:
            msgs = [task["error"]] if task.get("error") else []
        body = {"@odata.type": TASK_TYPE, "@odata.id": f"{TASKS}/{tid}", "Id": tid,
                "Name": f"Firmware update {tid}", "TaskState": state,
                "TaskStatus": TASK_STATUS.get(state, "Warning"),
                "PercentComplete": self._percent(task), "StartTime": _iso(task["created"]),
                "TaskMonitor": f"{MONITORS}/{tid}", "Messages": msgs,
                "Payload": {"HttpOperation": "POST", "TargetUri": SIMPLE_UPDATE}}
        if task.get("ended"):
            body["EndTime"] = _iso(task["ended"])
        return body

    def reset_uri(self, kind: str) -> str:
        if kind == "system":
            return f"/redfish/v1/Systems/{self.name}/Actions/ComputerSystem.Reset"
        return f"/redfish/v1/Managers/{self.name}/Actions/Manager.Reset"


# ---- the application -------------------------------------------------------------------------
class Server:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.state_dir = cfg["state_dir"]
        self.bmcs = {b["system_id"]: Bmc(b, self.state_dir, cfg.get("ca")) for b in cfg["bmcs"]}
        self.app_lock = threading.Lock()  # sushy's app and fake driver: one request at a time
        self.app = None

    def bmc(self) -> Bmc:
        import flask

        return self.bmcs[flask.request.environ["lab.bmc"]]

    def setup_app(self) -> None:  # noqa: C901 - the views read best next to each other
        import flask
        from sushy_tools import error as sushy_error
        from sushy_tools.emulator import main as emu
        from sushy_tools.emulator.resources.systems import fakedriver

        server = self
        cfg = self.cfg
        systems = [
            {"uuid": b["uuid"], "name": b["system_id"], "power_state": "On",
             "external_notifier": False, "nics": [{"mac": b["mac"], "ip": b["host_address"]}]}
            for b in cfg["bmcs"]
        ]

        class LabSystems(fakedriver.FakeDriver):
            """sushy's fake driver with Id = name, quick power transitions and firmware hooks."""

            def _lookup(self, identity: str) -> dict:
                uuid = self._by_name.get(identity, identity)
                try:
                    return self._systems[uuid]
                except KeyError:
                    raise sushy_error.NotFound(f"System {identity} was not found") from None

            def _get(self, identity: str) -> dict:
                system = self._lookup(identity)
                if identity != system["name"]:
                    raise sushy_error.AliasAccessError(system["name"])
                return self._update_if_needed(system)

            def uuid(self, identity: str) -> str:
                return self._lookup(identity)["uuid"]

            def name(self, identity: str) -> str:
                return self._lookup(identity)["name"]

            @property
            def systems(self) -> list[str]:
                return [s["name"] for s in self._systems.values()]

            def get_versions(self, identity: str) -> dict:
                bmc = server.bmcs.get(self._lookup(identity)["name"])
                bios = bmc.load_fw().get("BIOS") if bmc else None
                return {"BiosVersion": bios["Version"]} if bios else {}

            def set_power_state(self, identity: str, state: str) -> None:
                system = self._get(identity)
                current = system["power_state"]
                if state in ("On", "ForceOn"):
                    if current == "On" and not system.get("pending_power"):
                        return
                    target, boots = "On", current != "On"
                elif state == "ForceOff":
                    self._update(system, power_state="Off", pending_power=None)
                    return
                elif state == "GracefulShutdown":
                    if current == "Off":
                        return
                    target, boots = "Off", False
                elif state in ("ForceRestart", "GracefulRestart", "PowerCycle"):
                    system["power_state"] = "Off"
                    target, boots = "On", True
                elif state == "Nmi":
                    return
                else:
                    raise sushy_error.BadRequest(f"ResetType {state} is not supported")
                self._update(system, pending_power={"power_state": target,
                                                    "apply_time": time.time() + POWER_SECONDS})
                if boots and system["name"] in server.bmcs:
                    threading.Timer(POWER_SECONDS, server.bmcs[system["name"]].apply_pending,
                                    ("system",)).start()

        fakedriver.FakeDriver = LabSystems  # what sushy's app instantiates
        app = emu.app
        app.configure(extra_config={
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": systems,
            "SUSHY_EMULATOR_STATE_DIR": self.state_dir,
            "SUSHY_EMULATOR_AUTH_FILE": cfg["htpasswd"],
        })
        self.app = app

        def fail(status: int, text: str, mid: str = "Base.1.16.0.GeneralError"):
            return flask.jsonify({"error": {"code": mid, "message": text,
                                            "@Message.ExtendedInfo": [
                                                _message(mid, text, [], "Critical")]}}), status

        @app.before_request
        def own_resources_only():
            ident = (flask.request.view_args or {}).get("identity")
            path = flask.request.path
            if ident is None or not path.startswith(("/redfish/v1/Systems/",
                                                     "/redfish/v1/Managers/")):
                return None
            bmc = server.bmc()
            if ident == bmc.name:
                return None
            if ident == bmc.uuid:
                return flask.redirect(path.replace(f"/{ident}", f"/{bmc.name}", 1), 307)
            return fail(404, f"{path}: no such resource on this BMC",
                        "Base.1.16.0.ResourceMissingAtURI")

        root_view = app.view_functions["root_resource"]

        def root():
            data = json.loads(root_view().get_data())
            data["UUID"] = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, server.bmc().uuid))
            data["Tasks"] = {"@odata.id": "/redfish/v1/TaskService"}
            return flask.jsonify(data)

        def system_collection():
            name = server.bmc().name
            return flask.jsonify({
                "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                "@odata.id": "/redfish/v1/Systems", "Name": "Computer System Collection",
                "Members@odata.count": 1,
                "Members": [{"@odata.id": f"/redfish/v1/Systems/{name}"}]})

        def manager_collection():
            name = server.bmc().name
            return flask.jsonify({
                "@odata.type": "#ManagerCollection.ManagerCollection",
                "@odata.id": "/redfish/v1/Managers", "Name": "Manager Collection",
                "Members@odata.count": 1,
                "Members": [{"@odata.id": f"/redfish/v1/Managers/{name}"}]})

        manager_view = app.view_functions["manager_resource"]

        def manager(identity: str):
            if flask.request.method != "GET":
                return manager_view(identity)
            bmc = server.bmc()
            fw = bmc.load_fw().get("BMC", {})
            return flask.jsonify({
                "@odata.type": "#Manager.v1_10_0.Manager",
                "@odata.id": f"/redfish/v1/Managers/{bmc.name}", "Id": bmc.name,
                "Name": f"{bmc.name} BMC", "UUID": bmc.uuid, "ManagerType": "BMC",
                "Model": "Lab BMC", "FirmwareVersion": fw.get("Version", ""),
                "PowerState": "On", "Status": {"State": "Enabled", "Health": "OK"},
                "Links": {"ManagerForServers": [{"@odata.id": f"/redfish/v1/Systems/{bmc.name}"}]},
                "Actions": {"#Manager.Reset": {
                    "target": bmc.reset_uri("manager"),
                    "ResetType@Redfish.AllowableValues": ["GracefulRestart", "ForceRestart"]}},
            })

        def manager_reset(identity: str):
            body = flask.request.get_json(silent=True)
            reset_type = body.get("ResetType") if isinstance(body, dict) else None
            if reset_type not in ("GracefulRestart", "ForceRestart"):
                return fail(400, "ResetType must be GracefulRestart or ForceRestart",
                            "Base.1.16.0.ActionParameterValueNotInList")
            bmc = server.bmc()
            app.logger.info("Manager.Reset (%s) of %s", reset_type, bmc.name)
            resp = flask.Response(status=204)
            resp.call_on_close(bmc.begin_reset)  # once the answer is out
            return resp

        def update_service():
            return flask.jsonify({
                "@odata.type": "#UpdateService.v1_11_0.UpdateService",
                "@odata.id": "/redfish/v1/UpdateService", "Id": "UpdateService",
                "Name": "Update Service", "ServiceEnabled": True,
                "Status": {"State": "Enabled", "Health": "OK"},
                "FirmwareInventory": {"@odata.id": FW},
                "Actions": {"#UpdateService.SimpleUpdate": {
                    "target": SIMPLE_UPDATE,
                    "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"]}},
            })

        def fw_collection():
            fw = server.bmc().load_fw()
            return flask.jsonify({
                "@odata.type": "#SoftwareInventoryCollection.SoftwareInventoryCollection",
                "@odata.id": FW, "Name": "Firmware Inventory",
                "Members@odata.count": len(fw),
                "Members": [{"@odata.id": f"{FW}/{key}"} for key in fw],
            })

        def fw_item(ident: str):
            fw = server.bmc().load_fw()
            if ident not in fw:
                return fail(404, f"{FW}/{ident}: no such component",
                            "Base.1.16.0.ResourceMissingAtURI")
            item = fw[ident]
            return flask.jsonify({
                "@odata.type": "#SoftwareInventory.v1_3_0.SoftwareInventory",
                "@odata.id": f"{FW}/{ident}", "Id": ident, "Name": item["Name"],
                "Version": item["Version"], "SoftwareId": ident, "Updateable": True,
                "Status": {"State": "Enabled", "Health": "OK"},
            })

        def simple_update():
            bmc = server.bmc()
            body = flask.request.get_json(silent=True)
            if not isinstance(body, dict):
                return fail(400, "the request body must be a JSON object",
                            "Base.1.16.0.MalformedJSON")
            uri, proto = body.get("ImageURI"), body.get("TransferProtocol")
            if not isinstance(uri, str) or not uri.strip():
                return fail(400, "ImageURI is required", "Base.1.16.0.ActionParameterMissing")
            if proto is not None and proto not in ("HTTP", "HTTPS"):
                return fail(400, f"TransferProtocol {proto} is not supported (HTTP, HTTPS)",
                            "Base.1.16.0.ActionParameterNotSupported")
            uri = uri.strip()
            if "://" not in uri and proto:
                uri = f"{proto.lower()}://{uri}"
            try:
                parts = urlsplit(uri)
            except ValueError:
                parts = urlsplit("")
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                return fail(400, "ImageURI must be an http:// or https:// URL",
                            "Base.1.16.0.ActionParameterValueFormatError")
            targets = body.get("Targets") or []
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                return fail(400, "Targets must be a list of FirmwareInventory URIs",
                            "Base.1.16.0.ActionParameterValueTypeError")
            fw = bmc.load_fw()
            components: list[str] = []
            for target in targets:
                path = urlsplit(target).path.rstrip("/")
                ident = path.rsplit("/", 1)[-1]
                if path != f"{FW}/{ident}" or ident not in fw:
                    return fail(400, f"Target {target} is not in {FW}",
                                "Base.1.16.0.ActionParameterValueNotInList")
                if ident not in components:
                    components.append(ident)
            task = bmc.start_update(uri, components)
            app.logger.info("SimpleUpdate on %s: task %s, image %s, targets %s", bmc.name,
                            task["Id"], redact(uri), components or "(from the image)")
            monitor = f"{MONITORS}/{task['Id']}"
            return flask.jsonify(task), 202, {"Location": monitor}

        def task_service():
            return flask.jsonify({
                "@odata.type": "#TaskService.v1_1_5.TaskService",
                "@odata.id": "/redfish/v1/TaskService", "Id": "TaskService",
                "Name": "Task Service", "ServiceEnabled": True,
                "DateTime": _iso(time.time()), "CompletedTaskOverWritePolicy": "Oldest",
                "Status": {"State": "Enabled", "Health": "OK"},
                "Tasks": {"@odata.id": TASKS}})

        def task_collection():
            bmc = server.bmc()
            with bmc.lock:
                ids = sorted(bmc.tasks, key=int)
            return flask.jsonify({
                "@odata.type": "#TaskCollection.TaskCollection", "@odata.id": TASKS,
                "Name": "Task Collection", "Members@odata.count": len(ids),
                "Members": [{"@odata.id": f"{TASKS}/{i}"} for i in ids]})

        def task_view(ident: str, monitor: bool = False):
            bmc = server.bmc()
            with bmc.lock:
                if ident not in bmc.tasks:
                    return fail(404, f"no task {ident} on this BMC",
                                "Base.1.16.0.ResourceMissingAtURI")
                if flask.request.method == "DELETE":
                    bmc.cancel(ident)
                body = bmc.render(bmc.tasks[ident])
            if monitor and body["TaskState"] in ACTIVE:
                return flask.jsonify(body), 202, {"Location": f"{MONITORS}/{ident}",
                                                  "Retry-After": "1"}
            return flask.jsonify(body), 200

        views = {"root_resource": root, "system_collection_resource": system_collection,
                 "manager_collection_resource": manager_collection, "manager_resource": manager,
                 "UpdateService.update_service_resource": update_service,
                 "UpdateService.update_service_simple_update": simple_update,
                 "simple_task_service": task_service,
                 "simple_task": lambda: task_view("42")}
        app.view_functions.update(views)
        app.add_url_rule("/redfish/v1/Managers/<identity>/Actions/Manager.Reset",
                         "lab_manager_reset", manager_reset, methods=["POST"])
        app.add_url_rule(FW, "lab_fw_collection", fw_collection, methods=["GET"])
        app.add_url_rule(FW + "/<ident>", "lab_fw_item", fw_item, methods=["GET"])
        app.add_url_rule(TASKS, "lab_tasks", task_collection, methods=["GET"])
        app.add_url_rule(TASKS + "/<ident>", "lab_task", task_view, methods=["GET", "DELETE"])
        app.add_url_rule(MONITORS + "/<ident>", "lab_task_monitor",
                         lambda ident: task_view(ident, monitor=True), methods=["GET", "DELETE"])
        _ = app.systems, app.managers  # create sushy's drivers before threads use them

    def wsgi_for(self, bmc: Bmc):
        def wsgi(environ, start_response):
            if bmc.unavailable:  # a resetting or downed BMC drops kept-alive connections too
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                start_response("503 Service Unavailable",
                               [("Connection", "close"), ("Content-Length", "0")])
                return [b""]
            environ["lab.bmc"] = bmc.name
            with self.app_lock:
                return self.app(environ, start_response)
        return wsgi

    # -- control (the Lab, over a Unix socket)
    def set_power(self, bmc: Bmc, state: str) -> None:
        if state not in ("On", "Off"):
            raise ValueError("power state must be On or Off")
        with self.app_lock:
            drv = self.app.systems
            system = drv._get(bmc.name)
            was = system["power_state"]
            drv._update(system, power_state=state, pending_power=None)
        if state == "On" and was != "On":
            bmc.apply_pending("system")

    def power_state(self, bmc: Bmc) -> str:
        with self.app_lock:
            return self.app.systems.get_power_state(bmc.name)

    def control(self, req: dict) -> object:
        op = req.get("op")
        bmc = self.bmcs.get(req.get("bmc"))
        if bmc is None:
            raise ValueError(f"no BMC {req.get('bmc')!r}")
        if op in ("down", "up"):
            bmc.forced_down = op == "down"
            bmc.sync_listener()
            return None
        if op == "power":
            return self.set_power(bmc, req.get("state"))
        if op == "status":
            return {"power": self.power_state(bmc), "up": not bmc.unavailable,
                    "resetting": bmc.resetting}
        if op == "set_firmware":
            comp, version = str(req["component"]), str(req["version"])
            make_image(comp, version)  # ImageError (a ValueError) when either is not valid
            with bmc.lock:
                fw = bmc.load_fw()
                fw.setdefault(comp, {"Name": req.get("name") or comp})["Version"] = version
                bmc.save_fw(fw)
            return None
        if op == "restore":
            deadline = time.monotonic() + 60
            while bmc.resetting and time.monotonic() < deadline:
                time.sleep(0.05)
            with bmc.lock:
                for tid, task in bmc.tasks.items():
                    if task["state"] in ACTIVE:
                        bmc.cancel(tid)
                bmc.tasks.clear()
                bmc.save_tasks()
                bmc.save_fw(copy.deepcopy(DEFAULT_FIRMWARE))
                bmc.save_pending({})
            self.set_power(bmc, "On")
            bmc.forced_down = False
            bmc.sync_listener()
            return None
        raise ValueError(f"unknown operation {op!r}")

    def serve_control(self, path: str) -> None:
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    req = json.loads(self.rfile.readline(65536) or b"{}")
                    reply = {"ok": True, "result": server.control(req)}
                except (KeyError, ValueError, TypeError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                except Exception as exc:  # noqa: BLE001 - the lab says what broke
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write((json.dumps(reply) + "\n").encode())

        class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o177)
        try:
            srv = ControlServer(path, Handler)
        finally:
            os.umask(old)
        threading.Thread(target=srv.serve_forever, daemon=True).start()


def main() -> int:
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    os.environ["SUSHY_EMULATOR_STATE_DIR"] = cfg["state_dir"]
    try:
        import flask  # noqa: F401
        import sushy_tools  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as exc:
        print(f"redfish: {exc}; run pip install 'orchestrator[lab]'", file=sys.stderr)
        return 1
    # Bounds every socket, among them the TLS handshake a BMC's accept loop performs: a client
    # that connects and says nothing cannot stall a BMC (or `Lab.bmc_down`) for long.
    socket.setdefaulttimeout(CLIENT_TIMEOUT)
    server = Server(cfg)
    server.setup_app()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    for bmc in server.bmcs.values():
        bmc.load_fw()
        bmc.wsgi, bmc.ssl_context = server.wsgi_for(bmc), ctx
        bmc.sync_listener()
    if cfg.get("control"):
        server.serve_control(cfg["control"])
    print("redfish: serving", len(server.bmcs), "BMCs", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
