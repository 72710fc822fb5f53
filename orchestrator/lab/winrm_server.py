"""A WS-Management endpoint for the lab's Windows hosts (run as a script; protocol level only).

Real pywinrm talks to it over HTTP with NTLM (pyspnego as the acceptor, credentials from
NTLM_USER_FILE) and WinRM message encryption, exactly as with a Windows server. Commands are not
run by Windows: `winps.py` interprets a documented subset of PowerShell/cmd against the recorded
host state in `<state_dir>/<host>.json`.

The shell operations behave as WinRS does for what the orchestrator uses: Command starts a
command (a command line over cmd.exe's 8,191 characters fails with "The command line is too
long.", exit 1); Send delivers stdin streams (base64, in any number of Sends), and a command
that reads stdin (the WinRM transport's bootstrap, `winps.wants_stdin`) runs once a stream with
End="true" arrives; Receive returns its output when it has finished, and while it waits for
stdin holds the request for the client's OperationTimeout and then answers with the w:TimedOut
fault (pywinrm: WinRMOperationTimeoutError), as Windows does; Signal (terminate) and Delete
forget commands and shells. Other commands run when they are started and ignore stdin.
While the host restarts (Restart-Computer: `winps.unavailable`) every request is dropped
unanswered, and its shells are gone.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winps  # noqa: E402  (stdlib-only sibling module)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
BOUNDARY = b"--Encrypted Boundary"
PROTO = "application/HTTP-SPNEGO-session-encrypted"
SHELL = NS["rsp"]
LOCK = threading.Lock()
TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_NS = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"


class Fault(Exception):  # noqa: N818 - a WS-Management fault reply (HTTP 500), not a bug
    def __init__(self, body: bytes) -> None:
        self.body = body


def fault(relates_to: str, subcode: str, code: int, message: str) -> Fault:
    body = (
        f"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{message}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{FAULT_NS}" Code="{code}" Machine="lab">'
        f"<f:Message>{message}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return Fault(envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body))


def operation_timeout(root: ET.Element) -> float:
    """The request's w:OperationTimeout (xs:duration, e.g. PT20S or PT20.000S); 60 s if none."""
    text = root.findtext(".//w:OperationTimeout", namespaces=NS) or ""
    m = re.fullmatch(r"PT(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?", text.strip())
    if not m or not any(m.groups()):
        return 60.0
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0)


def envelope(action: str, relates_to: str, body: str) -> bytes:
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (
        f'<s:Envelope {ns}><s:Header><a:Action>{action}</a:Action>'
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ctx = None

    def log_message(self, fmt, *args):  # quiet; errors still go to the log below
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        import spnego

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if winps.unavailable(self.server.state_path):  # restarting: no answer, shells gone
            self.server.shells.clear()
            self.close_connection = True
            return
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("ntlm", "negotiate") and token:
            raw = base64.b64decode(token)
            if self.ctx is None or raw[8:12] == b"\x01\x00\x00\x00":
                self.ctx = spnego.server(protocol="ntlm")
            try:
                out = self.ctx.step(raw)
            except Exception:  # bad credentials or a broken token
                self.ctx = None
                self.close_connection = True
                self._send(401, headers={"WWW-Authenticate": "NTLM"})
                return
            if not self.ctx.complete:
                self._send(401, headers={"WWW-Authenticate": f"{scheme} "
                                         + base64.b64encode(out or b"").decode()})
                return
        if self.ctx is None or not self.ctx.complete:
            self._send(401, headers={"WWW-Authenticate": "NTLM"})
            return
        if not body:
            self._send(200)
            return
        encrypted = "multipart/encrypted" in self.headers.get("Content-Type", "")
        status = 200
        try:
            message = self._decrypt(body) if encrypted else body
            reply = self._dispatch(message)
        except Fault as exc:
            status, reply = 500, exc.body
        except Exception as exc:  # report, keep serving
            print(f"winrm: {self.server.lab_host['name']}: {exc!r}", file=sys.stderr, flush=True)
            self._send(500)
            return
        if encrypted:
            payload = self._encrypt(reply)
            ctype = f'multipart/encrypted;protocol="{PROTO}";boundary="Encrypted Boundary"'
        else:
            payload, ctype = reply, "application/soap+xml;charset=UTF-8"
        self._send(status, payload, {"Content-Type": ctype})

    def _decrypt(self, body: bytes) -> bytes:
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        out = b""
        for i in range(0, len(parts) - 1, 2):
            payload = parts[i + 1]
            if payload.endswith(BOUNDARY + b"--\r\n"):
                payload = payload[: -len(BOUNDARY + b"--\r\n")]
            data = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
            sig_len = struct.unpack("<i", data[:4])[0]
            out += self.ctx.unwrap(data[4:4 + sig_len] + data[4 + sig_len:]).data
        return out

    def _encrypt(self, message: bytes) -> bytes:
        wrapped = self.ctx.wrap(message, encrypt=True).data
        sig, sealed = wrapped[:16], wrapped[16:]
        return (BOUNDARY + b"\r\n\tContent-Type: " + PROTO.encode() + b"\r\n"
                + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
                + str(len(message)).encode() + b"\r\n" + BOUNDARY + b"\r\n"
                + b"\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<i", len(sig)) + sig + sealed + BOUNDARY + b"--\r\n")

    def _dispatch(self, message: bytes) -> bytes:
        root = ET.fromstring(message)
        action = root.findtext(".//a:Action", namespaces=NS) or ""
        msg_id = root.findtext(".//a:MessageID", namespaces=NS) or ""
        host = self.server.lab_host
        shells = self.server.shells
        verb = action.rsplit("/", 1)[-1]
        shell_id = None
        for sel in root.iterfind(".//w:Selector", NS):
            if sel.get("Name") == "ShellId":
                shell_id = sel.text
        if verb == "Create":
            shell_id = str(uuid.uuid4()).upper()
            shells[shell_id] = {}
            addr = f"http://{host['address']}:{host['port']}/wsman"
            body = (f"<x:ResourceCreated><a:Address>{addr}</a:Address><a:ReferenceParameters>"
                    f"<w:ResourceURI>{SHELL}/cmd</w:ResourceURI><w:SelectorSet>"
                    f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
                    f"</a:ReferenceParameters></x:ResourceCreated><rsp:Shell>"
                    f"<rsp:ShellId>{shell_id}</rsp:ShellId><rsp:State>Connected</rsp:State>"
                    "</rsp:Shell>")
            return envelope(action + "Response", msg_id, body)
        if verb == "Delete":
            shells.pop(shell_id, None)
            return envelope(action + "Response", msg_id, "")
        if verb == "Command":
            command = root.findtext(".//rsp:Command", namespaces=NS) or ""
            args = [a.text or "" for a in root.iterfind(".//rsp:Arguments", NS)]
            cmd = {"command": command, "args": args, "stdin": bytearray(), "result": None}
            if not winps.wants_stdin(command, args):
                with LOCK:
                    cmd["result"] = winps.run_command(self.server.state_path, command, args)
            cmd_id = str(uuid.uuid4()).upper()
            with self.server.cond:
                shells.setdefault(shell_id, {})[cmd_id] = cmd
            return envelope(action + "Response", msg_id,
                            f"<rsp:CommandResponse><rsp:CommandId>{cmd_id}</rsp:CommandId>"
                            "</rsp:CommandResponse>")
        if verb == "Send":
            for stream in root.iterfind(".//rsp:Send/rsp:Stream", NS):
                cmd = shells.get(shell_id, {}).get(stream.get("CommandId"))
                if cmd is None:
                    raise fault(msg_id, "w:InvalidParameter", 87,
                                "The request for the Windows Remote Shell with ShellId "
                                f"{shell_id} failed because the command was not found.")
                if stream.get("Name") != "stdin" or cmd["result"] is not None:
                    continue  # a command that has finished (or never reads stdin) drops it
                cmd["stdin"] += base64.b64decode(stream.text or "")
                if (stream.get("End") or "").lower() in ("true", "1"):
                    with LOCK:
                        result = winps.run_command(self.server.state_path, cmd["command"],
                                                   cmd["args"], bytes(cmd["stdin"]))
                    with self.server.cond:
                        cmd["result"] = result
                        self.server.cond.notify_all()
            return envelope(action + "Response", msg_id, "<rsp:SendResponse/>")
        if verb == "Receive":
            desired = root.find(".//rsp:DesiredStream", NS)
            cmd_id = desired.get("CommandId") if desired is not None else ""
            cmd = shells.get(shell_id, {}).get(cmd_id)
            if cmd is not None:
                with self.server.cond:
                    self.server.cond.wait_for(lambda: cmd["result"] is not None,
                                              operation_timeout(root))
                if cmd["result"] is None:  # still waiting for its stdin
                    raise fault(msg_id, "w:TimedOut", TIMED_OUT,
                                "The WS-Management service cannot complete the operation within "
                                "the time specified in OperationTimeout.")
            stdout, stderr, code = cmd["result"] if cmd is not None else (b"", b"", 0)
            out, err = base64.b64encode(stdout).decode(), base64.b64encode(stderr).decode()
            body = (
                "<rsp:ReceiveResponse>"
                f'<rsp:Stream Name="stdout" CommandId="{cmd_id}">{out}</rsp:Stream>'
                f'<rsp:Stream Name="stderr" CommandId="{cmd_id}">{err}</rsp:Stream>'
                f'<rsp:Stream Name="stdout" CommandId="{cmd_id}" End="true"></rsp:Stream>'
                f'<rsp:Stream Name="stderr" CommandId="{cmd_id}" End="true"></rsp:Stream>'
                f'<rsp:CommandState CommandId="{cmd_id}" State="{SHELL}/CommandState/Done">'
                f"<rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
            )
            return envelope(action + "Response", msg_id, body)
        if verb == "Signal":  # terminate (cleanup_command): the command is gone
            signal = root.find(".//rsp:Signal", NS)
            if signal is not None:
                shells.get(shell_id, {}).pop(signal.get("CommandId"), None)
            return envelope(action + "Response", msg_id, "<rsp:SignalResponse/>")
        raise ValueError(f"unsupported WS-Management action {action}")


def main() -> int:
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    servers = []
    for host in cfg["hosts"]:
        srv = ThreadingHTTPServer((host["address"], host["port"]), Handler)
        srv.daemon_threads = True
        srv.lab_host = host
        srv.shells = {}
        srv.cond = threading.Condition()
        srv.state_path = os.path.join(cfg["state_dir"], f"{host['name']}.json")
        servers.append(srv)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("winrm: serving", len(servers), "hosts", flush=True)
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
