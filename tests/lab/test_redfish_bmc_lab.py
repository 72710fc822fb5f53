"""The lab's BMCs behave like real ones during firmware updates (redfish_server.py).

SimpleUpdate downloads the image and runs a task; resets activate what waits for them; faults
come from the image; the BMC can be unreachable; community.general's modules agree with it.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from orchestrator.lab.firmware_images import ImageError, make_image, parse_image

FW = "/redfish/v1/UpdateService/FirmwareInventory"
SIMPLE_UPDATE = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
MONITOR = re.compile(r"/redfish/v1/TaskService/TaskMonitors/(\d+)")


class Bmc:
    """Plain `requests` against one lab BMC, verified against the lab CA."""

    def __init__(self, lab, name: str, password: str | None = None) -> None:
        self.lab, self.name = lab, name
        host = next(h for h in lab.linux_hosts if h.name == name)
        self.base = f"https://{host.bmc_address}"
        self.session = requests.Session()
        self.session.auth = ("admin", password or lab.secrets["bmc_password"])
        self.ca = str(lab.ca_path)  # per request: REQUESTS_CA_BUNDLE would override session.verify

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.base + path, verify=self.ca, timeout=10, **kw)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(self.base + path, json=body, verify=self.ca, timeout=10)

    def version(self, component: str) -> str:
        return self.get(f"{FW}/{component}").json()["Version"]

    def update(self, image_url: str, targets: list[str] | None = None) -> str:
        body: dict = {"ImageURI": image_url}
        if targets:
            body["Targets"] = targets
        resp = self.post(SIMPLE_UPDATE, body)
        assert resp.status_code == 202, resp.text
        assert MONITOR.fullmatch(resp.headers["Location"])
        return resp.headers["Location"]

    def follow(self, monitor: str, timeout: float = 20) -> tuple[dict, list[tuple[int, str]]]:
        """Poll the task monitor until it answers 200; (final task, (status, state) seen)."""
        seen: list[tuple[int, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.get(monitor)
            task = resp.json()
            seen.append((resp.status_code, task["TaskState"]))
            if resp.status_code == 200:
                return task, seen
            assert resp.status_code == 202 and task["TaskState"] in ("New", "Running")
            time.sleep(0.2)
        raise AssertionError(f"task {monitor} still running after {timeout} s: {seen[-3:]}")


def _reset_required(task: dict) -> list[list]:
    return [m["MessageArgs"] for m in task["Messages"]
            if m["MessageId"] == "Base.1.16.0.ResetRequired"]


def _refused(base: str, ca: str) -> bool:
    try:
        requests.get(base + "/redfish/v1/", verify=ca, timeout=2)
    except requests.ConnectionError as exc:
        return "refused" in str(exc).lower()
    return False


@pytest.fixture
def bmc(lab_fleet):
    """A shared host's BMC, restored (default firmware, no tasks, On, up) before and after."""
    name = lab_fleet.shared_hosts[0]
    lab_fleet.restore_bmc(name)
    yield Bmc(lab_fleet, name)
    lab_fleet.restore_bmc(name)


# ---- images (no lab needed) -------------------------------------------------------------------
def test_image_format_is_checked():
    image = parse_image(make_image("BIOS", "2.19.1", seconds=1, reset="system"))
    assert image == {"component": "BIOS", "version": "2.19.1", "seconds": 1.0,
                     "reset": "system", "fault": None, "reset_seconds": 3.0}
    for raw in (b"garbage", b"[]", b'{"component": "BIOS"}',
                b'{"component": "BIOS", "version": "1", "reset": "host"}',
                b'{"component": "BIOS", "version": "1", "fault": "explode"}',
                b'{"component": "BIOS", "version": "1", "seconds": -1}',
                b'{"component": "BIOS", "version": "1", "colour": "red"}'):
        with pytest.raises(ImageError):
            parse_image(raw)


# ---- the repository serves the images ---------------------------------------------------------
def test_lab_serves_default_and_added_images(lab_fleet):
    def fetch(name: str) -> dict:
        return requests.get(lab_fleet.firmware_url(name), timeout=5).json()

    assert fetch("bios-2.19.1.bin")["reset"] == "system"
    assert fetch("bmc-7.10.30.bin")["reset"] == "manager"
    assert fetch("nic-22.41.0.bin") | {"seconds": 0} == {
        "component": "NIC", "version": "22.41.0", "seconds": 0, "reset": None, "fault": None}
    url = lab_fleet.firmware_image("raid-9.9.bin", "RAID", "9.9", seconds=1, fault="hang")
    assert url == lab_fleet.firmware_url("raid-9.9.bin")
    assert fetch("raid-9.9.bin")["fault"] == "hang"
    from orchestrator.errors import LabError

    for bad in ({"name": "../x.bin"}, {"reset": "host"}, {"fault": "boom"}):
        args = {"name": "x.bin", "component": "BIOS", "version": "1.0", **bad}
        with pytest.raises(LabError):
            lab_fleet.firmware_image(**args)


# ---- tasks ------------------------------------------------------------------------------------
def test_simple_update_returns_a_task_that_runs_then_completes(bmc, lab_fleet):
    other = Bmc(lab_fleet, lab_fleet.shared_hosts[1])
    other_before = other.version("NIC")
    url = lab_fleet.firmware_image("nic-task.bin", "NIC", "22.50.1", seconds=2)
    t0 = time.monotonic()
    resp = bmc.post(SIMPLE_UPDATE, {"ImageURI": url})
    assert resp.status_code == 202
    monitor = resp.headers["Location"]
    tid = MONITOR.fullmatch(monitor).group(1)
    assert resp.json()["@odata.type"] == "#Task.v1_4_3.Task"
    assert resp.json()["TaskState"] == "New"
    running = bmc.get(monitor)
    assert running.status_code == 202 and running.json()["TaskState"] == "Running"
    assert running.json()["PercentComplete"] < 100
    assert bmc.version("NIC") == "22.31.6"  # not before the task completes
    task, seen = bmc.follow(monitor)
    assert time.monotonic() - t0 >= 1.9
    assert seen[-1] == (200, "Completed") and (202, "Running") in seen
    assert task["TaskStatus"] == "OK" and task["PercentComplete"] == 100
    assert [m["MessageId"] for m in task["Messages"]] == ["Update.1.0.UpdateSuccessful"]
    assert bmc.version("NIC") == "22.50.1" == lab_fleet.firmware(bmc.name)["NIC"]["Version"]
    assert other.version("NIC") == other_before
    # the TaskService shows the same task; the lab keeps a record of it
    assert bmc.get("/redfish/v1/")
    assert bmc.get("/redfish/v1/TaskService").json()["Tasks"]["@odata.id"] == \
        "/redfish/v1/TaskService/Tasks"
    members = bmc.get("/redfish/v1/TaskService/Tasks").json()["Members"]
    assert {"@odata.id": f"/redfish/v1/TaskService/Tasks/{tid}"} in members
    assert bmc.get(f"/redfish/v1/TaskService/Tasks/{tid}").json()["TaskState"] == "Completed"
    [record] = lab_fleet.firmware_tasks(bmc.name)
    assert record["components"] == ["NIC"] and record["state"] == "Completed"


def test_targets_pick_the_component(bmc, lab_fleet):
    url = lab_fleet.firmware_image("any-1.2.3.bin", "NIC", "1.2.3", seconds=0)
    task, _ = bmc.follow(bmc.update(url, targets=[f"{FW}/BIOS"]))
    assert task["TaskState"] == "Completed"
    assert bmc.version("BIOS") == "1.2.3" and bmc.version("NIC") == "22.31.6"


def test_bios_version_shows_after_the_system_reset(bmc, lab_fleet):
    url = lab_fleet.firmware_image("bios-sys.bin", "BIOS", "2.19.1", seconds=1, reset="system")
    task, _ = bmc.follow(bmc.update(url))
    assert task["TaskState"] == "Completed"
    target = f"/redfish/v1/Systems/{bmc.name}/Actions/ComputerSystem.Reset"
    assert _reset_required(task) == [[target, "ForceRestart"]]
    assert bmc.version("BIOS") == "2.18.0"
    assert lab_fleet.firmware_pending(bmc.name)["BIOS"]["Version"] == "2.19.1"
    assert bmc.post(target, {"ResetType": "ForceRestart"}).status_code == 204
    system = f"/redfish/v1/Systems/{bmc.name}"
    assert bmc.get(system).json()["PowerState"] == "Off"  # restarting
    deadline = time.monotonic() + 10
    while bmc.get(system).json()["PowerState"] != "On" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.2)
    assert bmc.version("BIOS") == "2.19.1"
    assert bmc.get(system).json()["BiosVersion"] == "2.19.1"
    assert lab_fleet.firmware_pending(bmc.name) == {}
    # the reset was done: the task no longer asks for it
    assert _reset_required(bmc.get(task["TaskMonitor"]).json()) == []


def test_bmc_version_shows_after_the_manager_reset_and_the_bmc_is_away_meanwhile(bmc, lab_fleet):
    url = lab_fleet.firmware_image("bmc-mgr.bin", "BMC", "7.10.30", seconds=1, reset="manager",
                                   reset_seconds=2)
    task, _ = bmc.follow(bmc.update(url))
    target = f"/redfish/v1/Managers/{bmc.name}/Actions/Manager.Reset"
    assert _reset_required(task) == [[target, "GracefulRestart"]]
    manager = bmc.get(f"/redfish/v1/Managers/{bmc.name}").json()
    assert manager["Actions"]["#Manager.Reset"]["target"] == target
    assert manager["FirmwareVersion"] == "7.00.00" == bmc.version("BMC")
    t0 = time.monotonic()
    assert bmc.post(target, {"ResetType": "GracefulRestart"}).status_code == 204
    with pytest.raises(requests.ConnectionError):
        bmc.get("/redfish/v1/")  # the kept-alive connection is gone too
    while not _refused(bmc.base, bmc.ca):  # the listening socket closes at once
        assert time.monotonic() - t0 < 1, "the BMC still accepts connections"
        time.sleep(0.05)
    while _refused(bmc.base, bmc.ca):
        assert time.monotonic() - t0 < 10, "the BMC did not come back"
        time.sleep(0.1)
    assert 1.5 <= time.monotonic() - t0
    assert bmc.version("BMC") == "7.10.30"
    assert bmc.get(f"/redfish/v1/Managers/{bmc.name}").json()["FirmwareVersion"] == "7.10.30"
    assert lab_fleet.firmware(bmc.name)["BMC"]["Version"] == "7.10.30"


# ---- faults -----------------------------------------------------------------------------------
def test_fail_halfway_ends_in_exception_at_half(bmc, lab_fleet):
    url = lab_fleet.firmware_image("bios-bad.bin", "BIOS", "2.19.1", seconds=2,
                                   fault="fail-halfway")
    t0 = time.monotonic()
    task, _ = bmc.follow(bmc.update(url))
    assert 0.9 <= time.monotonic() - t0 < 1.9
    assert task["TaskState"] == "Exception" and task["TaskStatus"] == "Critical"
    assert task["PercentComplete"] == 50
    assert "failed at 50 %" in task["Messages"][0]["Message"]
    assert bmc.version("BIOS") == "2.18.0" and lab_fleet.firmware_pending(bmc.name) == {}


def test_no_change_completes_but_the_version_stays(bmc, lab_fleet):
    url = lab_fleet.firmware_image("nic-liar.bin", "NIC", "22.41.0", seconds=0,
                                   fault="no-change")
    task, _ = bmc.follow(bmc.update(url))
    assert task["TaskState"] == "Completed" and task["TaskStatus"] == "OK"
    assert bmc.version("NIC") == "22.31.6"


def test_hang_runs_for_ever_until_cancelled(bmc, lab_fleet):
    url = lab_fleet.firmware_image("nic-hang.bin", "NIC", "22.41.0", seconds=0.5, fault="hang")
    monitor = bmc.update(url)
    time.sleep(1.2)
    resp = bmc.get(monitor)
    assert resp.status_code == 202 and resp.json()["TaskState"] == "Running"
    assert resp.json()["PercentComplete"] == 50
    cancelled = bmc.session.delete(bmc.base + monitor, verify=bmc.ca, timeout=10)
    assert cancelled.json()["TaskState"] == "Cancelled"
    assert bmc.get(monitor).status_code == 200
    assert bmc.version("NIC") == "22.31.6"


def test_manager_reset_interrupts_a_hung_update(bmc, lab_fleet):
    url = lab_fleet.firmware_image("nic-hang.bin", "NIC", "22.41.0", seconds=0, fault="hang")
    monitor = bmc.update(url)
    target = f"/redfish/v1/Managers/{bmc.name}/Actions/Manager.Reset"
    assert bmc.post(target, {"ResetType": "ForceRestart"}).status_code == 204
    time.sleep(0.3)
    deadline = time.monotonic() + 10
    while _refused(bmc.base, bmc.ca) and time.monotonic() < deadline:
        time.sleep(0.1)
    task = Bmc(lab_fleet, bmc.name).get(monitor).json()
    assert task["TaskState"] == "Exception"
    assert "reset of the BMC" in task["Messages"][0]["Message"]
    assert lab_fleet.firmware_tasks(bmc.name)[-1]["state"] == "Exception"


def test_failed_downloads_and_bad_images_end_the_task_in_exception(bmc, lab_fleet):
    address, _ = lab_fleet.repo_address
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind((address, 0))
        refused_port = closed.getsockname()[1]
    (lab_fleet.root / "repo" / "firmware" / "junk.bin").write_text("not an image\n")
    cases = {
        lab_fleet.firmware_url("nowhere.bin"): "HTTP 404",
        f"http://{address}:{refused_port}/firmware/x.bin": "connection refused",
        lab_fleet.firmware_url("junk.bin"): "not a JSON firmware image",
        lab_fleet.firmware_image("raid-1.bin", "RAID", "1.0", seconds=0): "no component RAID",
    }
    for url, why in cases.items():
        task, _ = bmc.follow(bmc.update(url))
        assert task["TaskState"] == "Exception", url
        assert why in task["Messages"][0]["Message"], task["Messages"]
    assert lab_fleet.firmware(bmc.name) == {
        "BIOS": {"Name": "System BIOS", "Version": "2.18.0"},
        "BMC": {"Name": "BMC Firmware", "Version": "7.00.00"},
        "NIC": {"Name": "Embedded NIC", "Version": "22.31.6"}}


def test_bad_requests_are_refused_at_once(bmc, lab_fleet):
    good = lab_fleet.firmware_url("bios-2.19.1.bin")
    for body in ({}, {"ImageURI": "file:///etc/shadow"}, {"ImageURI": "ftp://x/y.bin"},
                 {"ImageURI": good, "TransferProtocol": "TFTP"},
                 {"ImageURI": good, "Targets": [f"{FW}/RAID"]},
                 {"ImageURI": good, "Targets": "BIOS"}):
        resp = bmc.post(SIMPLE_UPDATE, body)
        assert resp.status_code == 400, body
        assert resp.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].startswith("Base.")
    assert lab_fleet.firmware_tasks(bmc.name) == []


def test_image_uri_credentials_stay_out_of_tasks(bmc, lab_fleet):
    url = lab_fleet.firmware_image("nic-cred.bin", "NIC", "22.41.0", seconds=0)
    secret_url = url.replace("http://", "http://fwuser:Canary-Pw-1@")
    task, _ = bmc.follow(bmc.update(secret_url))
    assert task["TaskState"] == "Completed"
    everything = json.dumps(task) + json.dumps(lab_fleet.firmware_tasks(bmc.name))
    everything += (lab_fleet.root / "redfish" / "redfish.log").read_text()
    assert "Canary-Pw-1" not in everything and "***@" in json.dumps(task)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _https_repo(lab, ca_folder):
    """Serve lab.root/repo over HTTPS with a certificate of the CA in ca_folder."""
    from orchestrator.lab.certs import issue_server_cert

    address, _ = lab.repo_address
    cert, key = issue_server_cert(ca_folder, [address], "fw-https")
    handler = functools.partial(_Quiet, directory=str(lab.root / "repo"))
    server = ThreadingHTTPServer((address, 0), handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://{address}:{server.server_address[1]}/firmware/"


def test_https_images_are_verified_against_the_lab_ca(bmc, lab_fleet, tmp_path):
    lab_fleet.firmware_image("nic-tls.bin", "NIC", "22.41.0", seconds=0)
    trusted, trusted_url = _https_repo(lab_fleet, lab_fleet.root)
    foreign, foreign_url = _https_repo(lab_fleet, tmp_path)  # a CA of its own
    try:
        task, _ = bmc.follow(bmc.update(foreign_url + "nic-tls.bin"))
        assert task["TaskState"] == "Exception"
        assert "not trusted" in task["Messages"][0]["Message"]
        assert bmc.version("NIC") == "22.31.6"
        task, _ = bmc.follow(bmc.update(trusted_url + "nic-tls.bin"))
        assert task["TaskState"] == "Completed"
        assert bmc.version("NIC") == "22.41.0"
    finally:
        for server in (trusted, foreign):
            server.shutdown()
            server.server_close()
        for name in ("fw-https.pem", "fw-https.key"):
            (lab_fleet.root / name).unlink(missing_ok=True)


def test_reads_stay_fast_while_a_download_hangs(bmc, lab_fleet):
    """A download that gets no answer holds no lock the other requests need."""
    address, _ = lab_fleet.repo_address
    silent = socket.socket()
    silent.bind((address, 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        monitor = bmc.update(f"http://{address}:{silent.getsockname()[1]}/firmware/x.bin")
        time.sleep(0.3)
        others = [Bmc(lab_fleet, h.name) for h in lab_fleet.linux_hosts]
        t0 = time.monotonic()
        for other in others:
            assert other.get(FW + "/BIOS").status_code == 200
        assert time.monotonic() - t0 < 0.3 * len(others)
        assert bmc.get(monitor).json()["TaskState"] == "Running"
        task, _ = bmc.follow(monitor, timeout=15)
        assert "no answer within" in task["Messages"][0]["Message"]
    finally:
        silent.close()


# ---- reachability, power, credentials ---------------------------------------------------------
def test_bmc_down_refuses_connections_until_up(bmc, lab_fleet):
    other = Bmc(lab_fleet, lab_fleet.shared_hosts[1])
    assert bmc.get("/redfish/v1/").status_code == 200  # a kept-alive connection
    lab_fleet.bmc_down(bmc.name)
    assert _refused(bmc.base, bmc.ca)
    with pytest.raises(requests.ConnectionError):
        bmc.get("/redfish/v1/Systems")
    assert other.get("/redfish/v1/Systems").status_code == 200
    lab_fleet.bmc_up(bmc.name)
    assert Bmc(lab_fleet, bmc.name).get("/redfish/v1/Systems").status_code == 200


def test_power_off_and_on(bmc, lab_fleet):
    system = f"/redfish/v1/Systems/{bmc.name}"
    reset = system + "/Actions/ComputerSystem.Reset"
    assert bmc.post(reset, {"ResetType": "ForceOff"}).status_code == 204
    assert bmc.get(system).json()["PowerState"] == "Off" == lab_fleet.power_state(bmc.name)
    lab_fleet.set_power(bmc.name, "On")
    assert bmc.get(system).json()["PowerState"] == "On"
    lab_fleet.set_power(bmc.name, "Off")
    assert bmc.get(system).json()["PowerState"] == "Off"
    # a system that is Off applies pending system firmware when it is powered on
    url = lab_fleet.firmware_image("bios-off.bin", "BIOS", "2.19.1", seconds=0, reset="system")
    task, _ = bmc.follow(bmc.update(url))
    assert _reset_required(task) and bmc.version("BIOS") == "2.18.0"
    assert bmc.post(reset, {"ResetType": "On"}).status_code == 204
    deadline = time.monotonic() + 10
    while lab_fleet.power_state(bmc.name) != "On" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.2)
    assert bmc.version("BIOS") == "2.19.1"


def test_each_bmc_shows_its_own_system_and_manager(bmc, lab_fleet):
    other = lab_fleet.shared_hosts[1]
    assert bmc.get("/redfish/v1/Systems").json()["Members"] == [
        {"@odata.id": f"/redfish/v1/Systems/{bmc.name}"}]
    assert bmc.get("/redfish/v1/Managers").json()["Members"] == [
        {"@odata.id": f"/redfish/v1/Managers/{bmc.name}"}]
    assert bmc.get(f"/redfish/v1/Systems/{bmc.name}").json()["Id"] == bmc.name
    assert bmc.get(f"/redfish/v1/Systems/{other}").status_code == 404
    assert bmc.get(f"/redfish/v1/Managers/{other}").status_code == 404


def test_set_firmware_and_restore(bmc, lab_fleet):
    from orchestrator.errors import LabError
    from orchestrator.lab.firmware_images import DEFAULT_FIRMWARE

    lab_fleet.set_firmware(bmc.name, "BIOS", "2.19.1")
    lab_fleet.set_firmware(bmc.name, "RAID", "1.0")
    assert bmc.version("BIOS") == "2.19.1" and bmc.version("RAID") == "1.0"
    with pytest.raises(LabError):
        lab_fleet.set_firmware(bmc.name, "BIOS", "../1")
    lab_fleet.bmc_down(bmc.name)
    lab_fleet.set_power(bmc.name, "Off")
    lab_fleet.restore_bmc(bmc.name)
    assert lab_fleet.firmware(bmc.name) == DEFAULT_FIRMWARE
    assert lab_fleet.power_state(bmc.name) == "On"
    assert bmc.version("BIOS") == "2.18.0"


def test_wrong_password_is_refused(lab_fleet):
    wrong = Bmc(lab_fleet, lab_fleet.shared_hosts[0], password="not-the-password")
    assert wrong.get(FW).status_code == 401
    assert wrong.post(SIMPLE_UPDATE, {"ImageURI": "http://x/y"}).status_code == 401


# ---- community.general agrees ---------------------------------------------------------------
def test_community_general_modules_drive_a_full_update(bmc, lab_fleet):
    h = next(x for x in lab_fleet.linux_hosts if x.name == bmc.name)
    env = dict(lab_fleet.ansible_env(), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json")
    for name in [k for k in env if k.startswith("ANSIBLE_INVENTORY_")]:
        del env[name]  # set in-process by orchestrator.inventory.loader: no inventory here
    common = {"baseuri": h.bmc_address, "username": "admin",
              "password": lab_fleet.secrets["bmc_password"], "validate_certs": True,
              "ca_path": str(lab_fleet.ca_path), "timeout": 10}

    def run(module: str, **args) -> dict:
        proc = subprocess.run(
            ["ansible", "localhost", "-m", f"community.general.{module}",
             "-a", json.dumps({**common, **args})],
            env=env, capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip(), proc.stderr[-2000:]
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        assert proc.returncode == 0 and not result.get("failed"), result.get("msg")
        return result

    url = lab_fleet.firmware_image("bios-ansible.bin", "BIOS", "2.19.1", seconds=2,
                                   reset="system")
    started = run("redfish_command", category="Update", command="SimpleUpdate",
                  update_image_uri=url, update_targets=[f"{FW}/BIOS"])
    status = started["return_values"]["update_status"]
    assert status["status"] == "New" and MONITOR.fullmatch(status["handle"])
    handle, states = status["handle"], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = run("redfish_info", category="Update", command="GetUpdateStatus",
                     update_handle=handle)["redfish_facts"]["update_status"]
        states.append(status["status"])
        if status["status"] not in ("New", "Running"):
            break
    assert states[-1] == "Completed" and "Running" in states
    assert status["resets_requested"] == [
        {"uri": f"/redfish/v1/Systems/{h.bmc_system_id}/Actions/ComputerSystem.Reset",
         "type": "ForceRestart"}]
    inventory = run("redfish_info", category="Update", command="GetFirmwareInventory")
    versions = {e["Id"]: e["Version"] for e in inventory["redfish_facts"]["firmware"]["entries"]}
    assert versions["BIOS"] == "2.18.0"
    done = run("redfish_command", category="Update", command="PerformRequestedOperations",
               update_handle=handle)
    assert done["changed"] is True
    time.sleep(1.5)  # the system is On again
    inventory = run("redfish_info", category="Update", command="GetFirmwareInventory")
    versions = {e["Id"]: e["Version"] for e in inventory["redfish_facts"]["firmware"]["entries"]}
    assert versions["BIOS"] == "2.19.1"
    # power through the same modules, the system named by bmc_system_id
    run("redfish_command", category="Systems", command="PowerForceOff",
        resource_id=h.bmc_system_id)
    assert lab_fleet.power_state(h.name) == "Off"
