"""The lab's BMCs: sushy-emulator's fake driver plus firmware inventory and SimpleUpdate.

Run as `python redfish_server.py CONFIG.json`. One process serves every BMC, each on its own
loopback address over HTTPS (certificate from the lab CA) with HTTP basic auth. The systems view
is sushy's fake driver (one system per lab host, Id = host name); the firmware inventory is kept
per BMC in `<state_dir>/firmware-<host>.json`, which tests may edit.

SimpleUpdate takes the target component from `Targets` (a FirmwareInventory URI) or from the image
file name (bios-*, bmc-*, nic-*) and the new version from the image file name
(`bios-2.19.1.bin` -> 2.19.1). An image name containing "fail" makes the update fail (HTTP 500).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading

DEFAULT_FIRMWARE = {
    "BIOS": {"Name": "System BIOS", "Version": "2.18.0"},
    "BMC": {"Name": "BMC Firmware", "Version": "7.00.00"},
    "NIC": {"Name": "Embedded NIC", "Version": "22.31.6"},
}
FW = "/redfish/v1/UpdateService/FirmwareInventory"


def main() -> int:  # noqa: C901 - one setup function reads best here
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    state_dir = cfg["state_dir"]
    systems = [
        {"uuid": b["uuid"], "name": b["system_id"], "power_state": "On", "external_notifier": False,
         "nics": [{"mac": b["mac"], "ip": b["host_address"]}]}
        for b in cfg["bmcs"]
    ]
    os.environ["SUSHY_EMULATOR_STATE_DIR"] = state_dir
    try:
        import flask
        from sushy_tools.emulator import main as emu
        from werkzeug.serving import make_server
    except ImportError as exc:
        print(f"redfish: {exc}; run pip install 'orchestrator[lab]'", file=sys.stderr)
        return 1

    app = emu.app
    app.configure(extra_config={
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_FAKE_SYSTEMS": systems,
        "SUSHY_EMULATOR_STATE_DIR": state_dir,
        "SUSHY_EMULATOR_AUTH_FILE": cfg["htpasswd"],
    })
    lock = threading.Lock()

    def fw_path(bmc: str) -> str:
        return os.path.join(state_dir, f"firmware-{bmc}.json")

    def load_fw(bmc: str) -> dict:
        try:
            with open(fw_path(bmc)) as fh:
                return json.load(fh)
        except FileNotFoundError:
            save_fw(bmc, DEFAULT_FIRMWARE)
            return json.loads(json.dumps(DEFAULT_FIRMWARE))

    def save_fw(bmc: str, data: dict) -> None:
        tmp = fw_path(bmc) + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, fw_path(bmc))

    def current_bmc() -> str:
        return flask.request.environ["lab.bmc"]

    def update_service():
        return flask.jsonify({
            "@odata.type": "#UpdateService.v1_11_0.UpdateService",
            "@odata.id": "/redfish/v1/UpdateService", "Id": "UpdateService",
            "Name": "Update Service", "ServiceEnabled": True,
            "FirmwareInventory": {"@odata.id": FW},
            "Actions": {"#UpdateService.SimpleUpdate": {
                "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"]}},
        })

    def fw_collection():
        fw = load_fw(current_bmc())
        return flask.jsonify({
            "@odata.type": "#SoftwareInventoryCollection.SoftwareInventoryCollection",
            "@odata.id": FW, "Name": "Firmware Inventory",
            "Members@odata.count": len(fw),
            "Members": [{"@odata.id": f"{FW}/{key}"} for key in fw],
        })

    def fw_item(ident: str):
        fw = load_fw(current_bmc())
        if ident not in fw:
            return flask.jsonify({"error": {"message": f"no component {ident}"}}), 404
        item = fw[ident]
        return flask.jsonify({
            "@odata.type": "#SoftwareInventory.v1_3_0.SoftwareInventory",
            "@odata.id": f"{FW}/{ident}", "Id": ident, "Name": item["Name"],
            "Version": item["Version"], "SoftwareId": ident, "Updateable": True,
            "Status": {"State": "Enabled", "Health": "OK"},
        })

    def simple_update():
        body = flask.request.get_json(silent=True) or {}
        image = str(body.get("ImageURI") or "")
        if not image:
            return flask.jsonify({"error": {"message": "ImageURI is required"}}), 400
        bmc = current_bmc()
        fw = load_fw(bmc)
        base = image.rstrip("/").rsplit("/", 1)[-1]
        targets = [str(t).rstrip("/").rsplit("/", 1)[-1] for t in body.get("Targets") or []]
        targets = [t for t in targets if t in fw]
        if not targets:
            targets = [k for k in fw if base.lower().startswith(k.lower())]
        match = re.search(r"(\d+(?:\.\d+)+)", base)
        if not targets or not match:
            msg = f"cannot tell component and version from image '{base}'"
            return flask.jsonify({"error": {"message": msg}}), 400
        if "fail" in base.lower():
            return flask.jsonify({"error": {"message": f"flash of {base} failed"}}), 500
        for target in targets:  # the WSGI wrapper holds the lock
            fw[target]["Version"] = match.group(1)
        save_fw(bmc, fw)
        app.logger.info("SimpleUpdate on %s: %s -> %s", bmc, targets, match.group(1))
        return "", 204

    app.view_functions["UpdateService.update_service_resource"] = update_service
    app.view_functions["UpdateService.update_service_simple_update"] = simple_update
    app.add_url_rule(FW, "lab_fw_collection", fw_collection, methods=["GET"])
    app.add_url_rule(FW + "/<ident>", "lab_fw_item", fw_item, methods=["GET"])

    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])

    def for_bmc(name: str):
        def wsgi(environ, start_response):
            environ["lab.bmc"] = name
            with lock:
                return app(environ, start_response)
        return wsgi

    servers = []
    for bmc in cfg["bmcs"]:
        load_fw(bmc["system_id"])
        srv = make_server(bmc["address"], bmc["port"], for_bmc(bmc["system_id"]),
                          threaded=True, ssl_context=ctx)
        servers.append(srv)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers[1:]]
    for t in threads:
        t.start()
    print("redfish: serving", len(servers), "BMCs", flush=True)
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
