"""The Lab API: bring the local fleet up and down, and reach into it from tests.

    lab = Lab(Path(".orchestrator/lab"))
    lab.up(hosts=5, windows=1, rpm=1, zypper=1, fwupd=1)  # idempotent; returns when all answer
    lab.inventory_path              # Ansible inventory (YAML, 0600: holds BMC/WinRM passwords)
    lab.ssh("lab-01", "hostname")   # CompletedProcess, strict host-key checking
    lab.reset_host("lab-03")        # fresh writable layer, same host key
    lab.hold_reboots("lab-03")      # faults: its next reboot stays down (release_host ends it)
    lab.stop_repo(); lab.start_repo()  # faults: the package repository goes away and back
    lab.firmware_image("bios-9.bin", "BIOS", "9.0", reset="system", fault=None)  # -> image URL
    lab.bmc_down("lab-03"); lab.set_power("lab-03", "Off"); lab.restore_bmc("lab-03")
    lab.fwupd_cab("7.10.30")        # -> URL of a cabinet for the fwupd test device (lab-fw-NN)
    lab.fwupd_fault("lab-fw-01", "slow", seconds=3); lab.fwupd_clear("lab-fw-01")
    lab.fwupd_version("lab-fw-01")  # the test device's version, read over SSH
    lab.down(wipe=False)            # nothing left running, mounted or listening

Addresses: 127.B.0.(10+i) for lab-i, 127.B.1.(10+i) for its BMC, 127.B.2.(10+i) for lab-win-i,
127.B.3.1 for the package repository (apt at /debian, RPM at /rpm), 127.B.4/5.(10+i) for
lab-rpm-i and its BMC, 127.B.6/7.(10+i) for lab-zypper-i and its BMC, 127.B.8/9.(10+i) for
lab-fw-i (fwupd) and its BMC (orchestrator.lab.flavours);
B is derived from the lab folder so that two labs in different folders do not collide (one chance
in 200).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.lab import procs
from orchestrator.lab.errors import LabSetupError, LabStartError
from orchestrator.lab.flavours import FLAVOURS

HERE = Path(__file__).resolve().parent
MAX_HOSTS = 200
# Modules of the `lab` extra (pyproject.toml) that the Redfish emulator imports.
LAB_EXTRA_MODULES = ("flask", "werkzeug", "sushy_tools")
BMC_USER = "admin"
WIN_USER = "Administrator"
# Bumped when what the lab layers or repositories hold changes: a lab folder built by an older
# version rebuilds them at the next `lab up` (v2: signed apt repository, RPM flavours; v3:
# acme-app and acme-lib in the repositories).
LAYER_VERSION = "v3"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    port: int
    bmc_address: str  # host:port of its BMC (HTTPS)
    bmc_system_id: str
    flavour: str = "apt"  # apt | rpm | zypper | fwupd (orchestrator.lab.flavours)


@dataclass(frozen=True)
class WindowsHost:
    name: str
    address: str
    port: int


def check_lab_extra() -> None:
    """The Redfish emulator's packages are the `lab` extra: say so before anything starts."""
    from importlib.util import find_spec

    missing = [m for m in LAB_EXTRA_MODULES if find_spec(m) is None]
    if missing:
        raise LabSetupError(
            f"the lab's Redfish emulator needs the 'lab' extra ({', '.join(missing)} not "
            "installed): run pip install 'orchestrator[lab]' (in a checkout: pip install -e "
            "'.[lab]')")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Lab:
    def __init__(self, root: Path | None = None, log=_log) -> None:
        self.root = (root or Path.cwd() / ".orchestrator" / "lab").resolve()
        self.log = log
        base = 20 + zlib.crc32(str(self.root).encode()) % 200
        self.net = f"127.{base}"

    # ---- paths -------------------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def ssh_key_path(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.root / "known_hosts"

    @property
    def ca_path(self) -> Path:
        return self.root / "ca.pem"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    def windows_state_path(self, name: str) -> Path:
        return self.root / "windows" / f"{name}.json"

    def firmware_path(self, name: str) -> Path:
        return self.root / "redfish" / f"firmware-{name}.json"

    # ---- state -------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabSetupError(f"{self.state_path}: unreadable ({exc}); run 'lab down'") from exc

    def _save(self, state: dict) -> None:
        _write_private(self.state_path, json.dumps(state, indent=2))

    @property
    def linux_hosts(self) -> list[LabHost]:
        """Every Linux host, all flavours."""
        return [LabHost(**h) for h in self._state().get("hosts", [])]

    @property
    def hosts(self) -> list[LabHost]:
        """The Debian (apt) hosts lab-NN, inventory group lab_linux."""
        return [h for h in self.linux_hosts if h.flavour == "apt"]

    @property
    def rpm_hosts(self) -> list[LabHost]:
        """The dnf hosts lab-rpm-NN, inventory group lab_rpm."""
        return [h for h in self.linux_hosts if h.flavour == "rpm"]

    @property
    def zypper_hosts(self) -> list[LabHost]:
        """The zypper hosts lab-zypper-NN, inventory group lab_zypper."""
        return [h for h in self.linux_hosts if h.flavour == "zypper"]

    @property
    def fwupd_hosts(self) -> list[LabHost]:
        """The apt hosts with fwupd and its test device, lab-fw-NN, inventory group lab_fwupd."""
        return [h for h in self.linux_hosts if h.flavour == "fwupd"]

    @property
    def windows_hosts(self) -> list[WindowsHost]:
        return [WindowsHost(**h) for h in self._state().get("windows", [])]

    @property
    def repo_address(self) -> tuple[str, int]:
        """(address, port) of the package repository (apt at /debian, RPM at /rpm)."""
        repo = self._state().get("repo")
        if not repo:
            raise LabSetupError(f"{self.root}: the lab is not up; run 'lab up'")
        return repo["address"], repo["port"]

    @property
    def secrets(self) -> dict:
        return self._state().get("secrets", {})

    # ---- up ----------------------------------------------------------------------------
    def up(self, hosts: int = 3, windows: int = 0, rpm: int = 0, zypper: int = 0,
           fwupd: int = 0) -> dict:
        counts = {"apt": hosts, "rpm": rpm, "zypper": zypper, "fwupd": fwupd}
        if not all(0 <= n <= MAX_HOSTS for n in (hosts, windows, rpm, zypper, fwupd)):
            raise LabSetupError(f"lab size must be 0..{MAX_HOSTS} hosts of each kind")
        if hosts or rpm or zypper or fwupd:
            check_lab_extra()
        if os.geteuid() != 0:
            raise LabSetupError("the lab needs root (namespaces, mounts): run it as root")
        state = self._state()
        size = [hosts, windows, rpm, zypper, fwupd]
        if state and _size(state) == size and self._all_alive(state):
            return self.status()
        if state:
            self.down()
        t0 = time.monotonic()
        from orchestrator.privatefs import private_dir

        private_dir(self.root)  # .orchestrator/ too, when `lab up` is the first command
        os.chmod(self.root, 0o700)
        self._ensure_keys()
        self._ensure_repos_and_layers({f for f, n in counts.items() if n or f == "apt"})
        state = {"size": size, "procs": {}, "secrets": self._ensure_secrets()}
        state["repo"] = {"address": f"{self.net}.3.1",
                         "port": self._port(f"{self.net}.3.1", 80, 8080)}
        state["hosts"] = [asdict(self._plan_host(i, f)) for f, n in counts.items()
                          for i in range(1, n + 1)]
        state["windows"] = [asdict(w) for w in self._plan_windows(windows)]
        self._save(state)
        try:
            self._start_repo(state)
            for h in self.linux_hosts:
                self._prepare_host(h, state)
                state["procs"][h.name] = self._spawn_host(h)
            self._save(state)
            if self.linux_hosts:
                state["procs"]["redfish"] = self._start_redfish(state)
            if windows:
                state["procs"]["winrm"] = self._start_winrm(state)
            self._save(state)
            self._write_known_hosts()
            self._write_inventory(state)
            self._wait_ready(state)
        except BaseException:
            self.down()
            raise
        extra = "".join(f", {n} {f}" for f, n in (("rpm", rpm), ("zypper", zypper),
                                                  ("fwupd", fwupd)) if n)
        self.log(f"lab: {hosts} Linux{extra} and {windows} Windows host(s) up in "
                 f"{time.monotonic() - t0:.1f} s; inventory: {self.inventory_path}")
        return self.status()

    def _all_alive(self, state: dict) -> bool:
        return bool(state.get("procs")) and all(procs.alive(r) for r in state["procs"].values())

    def _port(self, address: str, preferred: int, fallback: int) -> int:
        if procs.port_free(address, preferred):
            return preferred
        if procs.port_free(address, fallback):
            return fallback
        raise LabStartError(f"{address}: ports {preferred} and {fallback} are both in use; "
                            "stop whatever listens there or run the lab from another folder")

    def _plan_host(self, i: int, flavour: str = "apt") -> LabHost:
        fl = FLAVOURS[flavour]
        addr = f"{self.net}.{fl.host_octet}.{10 + i}"
        bmc = f"{self.net}.{fl.bmc_octet}.{10 + i}"
        bmc_port = self._port(bmc, 443, 8443)
        name = f"{fl.prefix}{i:02d}"
        return LabHost(name=name, address=addr, port=self._port(addr, 22, 2222),
                       bmc_address=bmc if bmc_port == 443 else f"{bmc}:{bmc_port}",
                       bmc_system_id=name, flavour=flavour)

    def _plan_windows(self, count: int) -> list[WindowsHost]:
        out = []
        for i in range(1, count + 1):
            addr = f"{self.net}.2.{10 + i}"
            out.append(WindowsHost(f"lab-win-{i:02d}", addr, self._port(addr, 5985, 15985)))
        return out

    def _ensure_secrets(self) -> dict:
        old = self._state().get("secrets") or {}
        return {"bmc_password": old.get("bmc_password") or secrets.token_urlsafe(12),
                "win_password": old.get("win_password") or "Lab-" + secrets.token_urlsafe(12)}

    def _ensure_keys(self) -> None:
        if shutil.which("ssh-keygen") is None:
            raise LabSetupError("'ssh-keygen' is missing: run 'apt-get install openssh-client'")
        if not self.ssh_key_path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "orchestrator-lab",
                            "-f", str(self.ssh_key_path)], check=True)
        from orchestrator.lab.certs import ensure_ca

        ensure_ca(self.root)

    def layer_path(self, flavour: str) -> Path:
        return self.root / ("layer" if flavour == "apt" else f"layer-{flavour}")

    def _ensure_repos_and_layers(self, flavours: set[str]) -> None:
        """Build (once per lab folder and LAYER_VERSION) the signing key, the apt and RPM
        repositories and the shared layer of each flavour in `flavours`."""
        from orchestrator.lab.signing import LabKey

        key = LabKey(self.root / "gnupg")
        with key.session():
            if not _marked(self.root / "repo-debian.ok"):
                self.log("lab: building the signed apt repository")
                from orchestrator.lab.repo import build_repo

                key.ensure()
                _unmark(self.root / "repo-debian.ok", self.root / "layer.ok",
                        self.root / "layer-fwupd.ok")
                for sub in ("debian", "initial"):
                    shutil.rmtree(self.root / "repo" / sub, ignore_errors=True)
                build_repo(self.root / "repo", key)
                _mark(self.root / "repo-debian.ok")
            rpm = any(FLAVOURS[f].packaging == "rpm" for f in flavours)
            if rpm and not _marked(self.root / "repo-rpm.ok"):
                self.log("lab: building the signed RPM repository")
                from orchestrator.lab.rpmrepo import build_rpm_repo

                key.ensure()
                _unmark(self.root / "repo-rpm.ok", self.root / "layer-rpm.ok",
                        self.root / "layer-zypper.ok")
                for sub in ("rpm", "rpm-initial"):
                    shutil.rmtree(self.root / "repo" / sub, ignore_errors=True)
                build_rpm_repo(self.root / "repo", key)
                _mark(self.root / "repo-rpm.ok")
            for flavour in sorted(flavours):
                self._ensure_layer(flavour, key)

    def _ensure_layer(self, flavour: str, key) -> None:
        from orchestrator.lab.flavours import LAYER_FILES_BY_FLAVOUR, RPM_KEY_PATH
        from orchestrator.lab.layer import INSTALL_RPMS, build_layer
        from orchestrator.lab.repo import KEYRING
        from orchestrator.lab.rootfs import ensure_rootfs

        layer = self.layer_path(flavour)
        marker = layer.with_name(layer.name + ".ok")
        stamp = _layer_stamp(LAYER_FILES_BY_FLAVOUR[flavour])
        if _marked(marker, stamp):
            return
        base = ensure_rootfs(self.log, FLAVOURS[flavour].rootfs)
        self.log(f"lab: building the shared lab layer of the {flavour} hosts")
        work = layer.with_name(layer.name + ".work")
        for path in (layer, work):
            shutil.rmtree(path, ignore_errors=True)
        files: dict[str, tuple[str | bytes, int]] = dict(LAYER_FILES_BY_FLAVOUR[flavour])
        with tempfile.TemporaryDirectory() as tmp:
            pub = Path(tmp) / "key"
            if FLAVOURS[flavour].packaging == "deb":
                key.export_public(pub, armor=False)
                files[KEYRING] = (pub.read_bytes(), 0o644)
                build_layer(base, layer, work, self.root / "repo" / "initial", files)
            else:
                key.export_public(pub, armor=True)
                files[RPM_KEY_PATH] = (pub.read_bytes(), 0o644)
                build_layer(base, layer, work, self.root / "repo" / "rpm-initial", files,
                            INSTALL_RPMS)
        _mark(marker, stamp)

    # ---- hosts -------------------------------------------------------------------------
    def _prepare_host(self, h: LabHost, state: dict) -> None:
        from orchestrator.lab.repo import sources_list
        from orchestrator.lab.rootfs import ensure_rootfs
        from orchestrator.lab.rpmrepo import yum_repo, zypp_repo

        d = self.host_dir(h.name)
        keys = d / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        hostkey = keys / "ssh_host_ed25519_key"
        if not hostkey.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{h.name}",
                            "-f", str(hostkey)], check=True)
        for sub in ("upper", "work"):
            shutil.rmtree(d / sub, ignore_errors=True)
            (d / sub).mkdir()
        (d / "root").mkdir(exist_ok=True)
        lowers = [self.layer_path(h.flavour), ensure_rootfs(self.log, FLAVOURS[h.flavour].rootfs)]
        put = _Putter(d / "upper", lowers)
        put("etc/hostname", h.name + "\n")
        put("etc/hosts", f"127.0.0.1\tlocalhost\n{h.address}\t{h.name}\n")
        put("etc/ssh/ssh_host_ed25519_key", hostkey.read_text(), 0o600)
        put("etc/ssh/ssh_host_ed25519_key.pub", hostkey.with_suffix(".pub").read_text())
        put("root/.ssh/authorized_keys", self.ssh_key_path.with_suffix(".pub").read_text(), 0o600)
        repo = state["repo"]
        if FLAVOURS[h.flavour].packaging == "deb":
            put("etc/apt/sources.list.d/lab.list", sources_list(repo["address"], repo["port"]))
        elif h.flavour == "rpm":
            put("etc/yum.repos.d/lab.repo", yum_repo(repo["address"], repo["port"]))
        else:
            put("etc/zypp/repos.d/lab.repo", zypp_repo(repo["address"], repo["port"]))
        (d / "boot_id").write_text(str(uuid.uuid4()) + "\n")
        self._hold_path(h.name).unlink(missing_ok=True)  # a fresh host boots normally
        cfg = {"root": str(d / "root"), "lower": [str(p) for p in lowers],
               "upper": str(d / "upper"), "work": str(d / "work"), "hostname": h.name,
               "address": h.address, "port": h.port, "boot_id": str(d / "boot_id"),
               "hold": str(self._hold_path(h.name)), "boot": list(FLAVOURS[h.flavour].boot)}
        (d / "supervisor.json").write_text(json.dumps(cfg, indent=2))

    def _spawn_host(self, h: LabHost) -> dict:
        d = self.host_dir(h.name)
        argv = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
                "--propagation", "private", sys.executable, str(HERE / "supervisor.py"),
                str(d / "supervisor.json")]
        return procs.spawn(argv, d / "host.log")

    def _host(self, name: str) -> LabHost:
        for h in self.linux_hosts:
            if h.name == name:
                return h
        raise LabSetupError(f"{name}: no such lab host (lab status lists them)")

    def stop_host(self, name: str) -> None:
        """Power a host off (its processes, mounts and listener disappear)."""
        state = self._state()
        self._host(name)
        rec = state["procs"].get(name)
        if rec and procs.stop([rec]):
            raise LabStartError(f"{name}: supervisor {rec['pid']} did not stop")

    def start_host(self, name: str, fresh: bool = False) -> None:
        """Start a stopped host; fresh=True discards its writable layer first."""
        h = self._host(name)
        state = self._state()
        if procs.alive(state["procs"].get(name)):
            return
        if fresh:
            self._prepare_host(h, state)
        state["procs"][name] = self._spawn_host(h)
        self._save(state)
        self._wait_host(h, state["procs"][name])

    def reset_host(self, name: str) -> None:
        """A fresh host: stop, new writable layer (same address and host key), start."""
        self.stop_host(name)
        self.start_host(name, fresh=True)

    def kill_sshd(self, name: str) -> None:
        """Kill only sshd on a host (the host stays up but stops answering SSH)."""
        rec = self._state()["procs"].get(name)
        if not procs.alive(rec):
            raise LabStartError(f"{name}: host is not running")
        for init in procs.children(rec["pid"]):
            for child in procs.children(init):
                os.kill(child, 9)  # chroot sshd (the only direct child of the supervisor)
        h = self._host(name)
        procs.wait_until(lambda: not procs.ssh_banner(h.address, h.port), 5, f"{name} sshd stop")

    def _hold_path(self, name: str) -> Path:
        # outside the host's root: nothing on the host can see or change it
        return self.host_dir(name) / "hold-reboot"

    def _supervisor(self, name: str) -> int:
        rec = self._state()["procs"].get(name)
        if not procs.alive(rec):
            raise LabStartError(f"{name}: host is not running")
        inits = procs.children(rec["pid"])  # unshare --fork: the supervisor is its one child
        if len(inits) != 1:
            raise LabStartError(f"{name}: no supervisor under pid {rec['pid']}")
        return inits[0]

    def hold_reboots(self, name: str) -> None:
        """From now on a reboot of the host does not come back: its processes stop and
        nothing answers (like a server stuck in its firmware) until `release_host`."""
        self._host(name)
        self._hold_path(name).write_text("held by the lab\n")

    def release_host(self, name: str, timeout: float = 30) -> None:
        """Undo `hold_reboots`; a host held down finishes its boot (sshd answers again)."""
        h = self._host(name)
        self._hold_path(name).unlink(missing_ok=True)
        os.kill(self._supervisor(name), signal.SIGUSR2)  # ignored unless it is held down
        procs.wait_until(lambda: procs.ssh_banner(h.address, h.port), timeout, f"{name} sshd")

    def _wait_host(self, h: LabHost, rec: dict) -> None:
        log = self.host_dir(h.name) / "host.log"

        def failed() -> str | None:
            if procs.alive(rec):
                return None
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            return f"supervisor exited ({' '.join(tail) or 'no output'}); see {log}"

        procs.wait_until(lambda: procs.ssh_banner(h.address, h.port), 30, f"{h.name} sshd",
                         failed)

    # ---- services ----------------------------------------------------------------------
    def _start_repo(self, state: dict) -> None:
        repo = state["repo"]
        argv = [sys.executable, "-m", "http.server", str(repo["port"]), "--bind", repo["address"],
                "--directory", str(self.root / "repo")]
        state["procs"]["repo"] = procs.spawn(argv, self.root / "repo.log")

    def stop_repo(self) -> None:
        """Stop the package repository's HTTP server (the hosts' repositories go away)."""
        state = self._state()
        if procs.stop([state["procs"].get("repo") or {}]):
            raise LabStartError("the repository server did not stop")

    def start_repo(self) -> None:
        """Start the package repository's HTTP server again (after `stop_repo`)."""
        state = self._state()
        if procs.alive(state["procs"].get("repo")):
            return
        self._start_repo(state)
        self._save(state)
        repo = state["repo"]
        procs.wait_until(lambda: procs.tcp_open(repo["address"], repo["port"]), 20,
                         "package repository")

    def _start_redfish(self, state: dict) -> dict:
        import bcrypt

        from orchestrator.lab.certs import issue_server_cert
        from orchestrator.lab.firmware_images import IMAGE_FOLDER, write_default_images

        folder = self.root / "redfish"
        folder.mkdir(exist_ok=True)
        addrs = [h.bmc_address.split(":")[0] for h in self.linux_hosts]
        cert, key = issue_server_cert(self.root, addrs, "redfish")
        pw = state["secrets"]["bmc_password"].encode()
        _write_private(folder / "htpasswd",
                       f"{BMC_USER}:{bcrypt.hashpw(pw, bcrypt.gensalt(rounds=4)).decode()}\n")
        bmcs = []
        for i, h in enumerate(self.linux_hosts, 1):
            addr, _, port = h.bmc_address.partition(":")
            bmcs.append({"system_id": h.bmc_system_id, "address": addr, "port": int(port or 443),
                         "host_address": h.address,
                         "mac": f"52:54:00:00:{i // 256:02x}:{i % 256:02x}",
                         "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.root}/{h.name}"))})
        cfg = {"state_dir": str(folder), "htpasswd": str(folder / "htpasswd"),
               "cert": str(cert), "key": str(key), "bmcs": bmcs, "ca": str(self.ca_path),
               "control": str(self._bmc_control_path)}
        write_default_images(self.root / "repo" / IMAGE_FOLDER)
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        return procs.spawn([sys.executable, str(HERE / "redfish_server.py"),
                            str(folder / "config.json")], folder / "redfish.log")

    def _start_winrm(self, state: dict) -> dict:
        from orchestrator.lab.winstate import default_state

        folder = self.root / "windows"
        folder.mkdir(exist_ok=True)
        for w in self.windows_hosts:
            path = self.windows_state_path(w.name)
            if not path.exists():
                path.write_text(json.dumps(default_state(w.name), indent=2))
        _write_private(folder / "ntlm_users", f":{WIN_USER}:{state['secrets']['win_password']}\n")
        cfg = {"hosts": [asdict(w) for w in self.windows_hosts], "state_dir": str(folder)}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        env = dict(os.environ, NTLM_USER_FILE=str(folder / "ntlm_users"))
        return procs.spawn([sys.executable, str(HERE / "winrm_server.py"),
                            str(folder / "config.json")], folder / "winrm.log", env=env)

    def _wait_ready(self, state: dict) -> None:
        repo = state["repo"]
        rec = state["procs"]
        procs.wait_until(lambda: procs.tcp_open(repo["address"], repo["port"]), 20,
                         "package repository",
                         lambda: None if procs.alive(rec["repo"]) else "see repo.log")
        for h in self.linux_hosts:
            self._wait_host(h, rec[h.name])
        if self.linux_hosts:
            h0 = self.linux_hosts[-1]
            addr, _, port = h0.bmc_address.partition(":")
            procs.wait_until(lambda: procs.https_ok(addr, int(port or 443), self.ca_path), 30,
                             "Redfish emulator",
                             lambda: None if procs.alive(rec["redfish"]) else "see redfish/")
        for w in self.windows_hosts:
            procs.wait_until(lambda w=w: procs.tcp_open(w.address, w.port), 20, "WinRM endpoint",
                             lambda: None if procs.alive(rec["winrm"]) else "see windows/")

    # ---- files -------------------------------------------------------------------------
    def _write_known_hosts(self) -> None:
        lines = []
        for h in self.linux_hosts:
            pub = (self.host_dir(h.name) / "keys/ssh_host_ed25519_key.pub").read_text().split()
            where = h.address if h.port == 22 else f"[{h.address}]:{h.port}"
            lines.append(f"{where} {pub[0]} {pub[1]}")
        _write_private(self.known_hosts_path, "\n".join(lines) + "\n")

    def _write_inventory(self, state: dict) -> None:
        import yaml

        ssh_args = (f"-o UserKnownHostsFile={shlex.quote(str(self.known_hosts_path))} "
                    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")
        groups: dict[str, dict] = {fl.group: {} for fl in FLAVOURS.values()}
        for h in self.linux_hosts:
            groups[FLAVOURS[h.flavour].group][h.name] = {
                "ansible_host": h.address, "ansible_port": h.port, "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.ssh_key_path),
                "ansible_ssh_common_args": ssh_args,
                "ansible_python_interpreter": "/usr/bin/python3",
                "bmc_address": h.bmc_address, "bmc_user": BMC_USER,
                "bmc_password": state["secrets"]["bmc_password"],
                "bmc_system_id": h.bmc_system_id, "bmc_ca_file": str(self.ca_path),
            }
        win = {}
        for w in self.windows_hosts:
            win[w.name] = {
                "ansible_host": w.address, "ansible_port": w.port,
                "ansible_connection": "winrm", "ansible_winrm_transport": "ntlm",
                "ansible_winrm_scheme": "http", "ansible_user": WIN_USER,
                "ansible_password": state["secrets"]["win_password"],
            }
        children = {name: {"hosts": hosts} for name, hosts in groups.items()
                    if hosts or name == "lab_linux"}
        inv = {"all": {"children": {**children, "lab_windows": {"hosts": win}}}}
        _write_private(self.inventory_path, "# generated by 'orchestrator lab up'\n"
                       + yaml.safe_dump(inv, sort_keys=False))

    # ---- status / down -----------------------------------------------------------------
    def status(self) -> dict:
        state = self._state()
        rec = state.get("procs", {})
        out = {"root": str(self.root), "running": self._all_alive(state) if state else False,
               "inventory": str(self.inventory_path) if state else None, "hosts": [],
               "windows": [], "services": {}}
        for h in self.linux_hosts:
            out["hosts"].append({**asdict(h), "up": procs.alive(rec.get(h.name)),
                                 "ssh": procs.ssh_banner(h.address, h.port)})
        for w in self.windows_hosts:
            out["windows"].append({**asdict(w), "up": procs.alive(rec.get("winrm"))})
        for svc in ("repo", "redfish", "winrm"):
            if svc in rec:
                out["services"][svc] = {"pid": rec[svc]["pid"], "up": procs.alive(rec[svc])}
        return out

    def down(self, wipe: bool = False) -> None:
        state = self._state()
        left = procs.stop(list(state.get("procs", {}).values()))
        if left:
            raise LabStartError(f"processes {left} did not stop; check them and run 'lab down'")
        if state:
            state["procs"] = {}
            self._save(state)
        if wipe and self.root.exists():
            shutil.rmtree(self.root)
        elif self.state_path.exists():
            self.state_path.unlink()

    def leftovers(self) -> dict:
        """What a stopped lab must not leave: processes, mounts, listeners (for tests)."""
        mine = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if str(self.root) in cmd and int(entry.name) != os.getpid():
                    mine.append(f"{entry.name}: {cmd[:120]}")
        return {"processes": mine, "mounts": procs.mounts_under(self.root),
                "listeners": procs.listeners_on(self.net + ".")}

    # ---- conveniences for tests --------------------------------------------------------
    def ssh_argv(self, name: str) -> list[str]:
        h = self._host(name)
        return ["ssh", "-i", str(self.ssh_key_path), "-p", str(h.port),
                "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"root@{h.address}"]

    def ssh(self, name: str, command: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.ssh_argv(name) + [command], capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise LabStartError(f"{name}: '{command}' exited {proc.returncode}: "
                                f"{proc.stderr.strip()[-300:]}")
        return proc

    def ansible_env(self) -> dict[str, str]:
        """Environment for ansible/ansible-runner against the lab (venv bin first on PATH)."""
        home = self.root / "ansible"
        home.mkdir(exist_ok=True)
        venv_bin = str(Path(sys.executable).parent)
        return dict(os.environ, ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
                    ANSIBLE_PIPELINING="True", ANSIBLE_HOST_KEY_CHECKING="True",
                    PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))

    def windows_state(self, name: str) -> dict:
        return json.loads(self.windows_state_path(name).read_text())

    def set_windows_state(self, name: str, data: dict) -> None:
        path = self.windows_state_path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    def firmware(self, name: str) -> dict:
        return json.loads(self.firmware_path(name).read_text())

    # ---- BMC firmware and faults (redfish_server.py, firmware_images.py) ------------------
    @property
    def _bmc_control_path(self) -> Path:
        return self.root / "redfish" / "control.sock"

    def _bmc_control(self, name: str, op: str, timeout: float = 10, **args) -> object:
        import socket

        h = self._host(name)
        request = json.dumps({"op": op, "bmc": h.bmc_system_id, **args}) + "\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self._bmc_control_path))
                sock.sendall(request.encode())
                reply = json.loads(sock.makefile("rb").readline() or b"{}")
        except (OSError, ValueError) as exc:
            raise LabStartError(f"{name}: the lab's Redfish emulator does not answer ({exc}); "
                                "run 'lab up'") from None
        if not reply.get("ok"):
            raise LabStartError(f"{name}: BMC {op} failed: {reply.get('error', 'no answer')}")
        return reply.get("result")

    def firmware_url(self, image: str) -> str:
        """URL of an image served by the lab's repository (`firmware_image`, or a default:
        bios-2.19.1.bin, bmc-7.10.30.bin, nic-22.41.0.bin)."""
        from orchestrator.lab.firmware_images import IMAGE_FOLDER, ImageError, check_image_name

        try:
            check_image_name(image)
        except ImageError as exc:
            raise LabSetupError(f"firmware image {exc}") from None
        address, port = self.repo_address
        return f"http://{address if port == 80 else f'{address}:{port}'}/{IMAGE_FOLDER}/{image}"

    def firmware_image(self, name: str, component: str, version: str, seconds: float = 3,
                       reset: str | None = None, fault: str | None = None,
                       reset_seconds: float | None = None) -> str:
        """Serve a firmware image (format: firmware_images.py) as `name`; returns its URL.
        reset: None | "system" | "manager"; fault: None | "fail-halfway" | "hang" | "no-change"."""
        from orchestrator.lab.firmware_images import (
            IMAGE_FOLDER,
            ImageError,
            make_image,
            write_image,
        )

        url = self.firmware_url(name)
        try:
            raw = make_image(component, version, seconds, reset, fault, reset_seconds)
        except ImageError as exc:
            raise LabSetupError(f"firmware image {name}: {exc}") from None
        write_image(self.root / "repo" / IMAGE_FOLDER, name, raw)
        return url

    def firmware_pending(self, name: str) -> dict:
        """Versions a BMC holds until a reset: {component: {Version, reset, task, ...}}."""
        self._host(name)
        path = self.root / "redfish" / f"firmware-{name}.pending.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def firmware_tasks(self, name: str) -> list[dict]:
        """A BMC's update tasks, oldest first: Id, image, components, version, state (New,
        Running, Completed, Exception, Cancelled), created, ended, awaiting (resets), error."""
        self._host(name)
        path = self.root / "redfish" / f"tasks-{name}.json"
        return json.loads(path.read_text()) if path.exists() else []

    def set_firmware(self, name: str, component: str, version: str) -> None:
        """Set the installed version of a component (added when the BMC has none)."""
        from orchestrator.lab.firmware_images import ImageError, make_image

        try:
            make_image(component, version)
        except ImageError as exc:
            raise LabSetupError(f"{name}: {exc}") from None
        self._bmc_control(name, "set_firmware", component=component, version=version)

    def set_power(self, name: str, state: str) -> None:
        """Power the host's system On or Off at once (On activates firmware waiting for a
        system reset)."""
        if state not in ("On", "Off"):
            raise LabSetupError(f"{name}: power state must be On or Off, not {state!r}")
        self._bmc_control(name, "power", state=state)

    def power_state(self, name: str) -> str:
        """On or Off, as the host's BMC reports it."""
        status = self._bmc_control(name, "status")
        return str(status["power"]) if isinstance(status, dict) else "unknown"

    def bmc_down(self, name: str) -> None:
        """The host's BMC stops answering (connections refused) until `bmc_up`."""
        self._bmc_control(name, "down")

    def bmc_up(self, name: str) -> None:
        self._bmc_control(name, "up")

    def restore_bmc(self, name: str) -> None:
        """The BMC as `lab up` left it: default firmware, nothing pending, no tasks, system On,
        answering (waits for a Manager.Reset in progress to end)."""
        self._bmc_control(name, "restore", timeout=70)

    # ---- fwupd on the lab-fw-NN hosts (orchestrator.lab.fwupd) ----------------------------
    def fwupd_cab(self, version: str) -> str:
        """Serve the cabinet that makes the fwupd test device report `version` (A.B.C, e.g.
        7.10.30) from the lab's repository; returns its http URL (…/fwupd/lab-webcam-V.cab,
        the same bytes for the same version)."""
        from orchestrator.lab.firmware_images import write_image
        from orchestrator.lab.fwupd import CAB_FOLDER, CabError, cab_name, make_cab

        try:
            name, raw = cab_name(version), make_cab(version)
        except CabError as exc:
            raise LabSetupError(f"fwupd cabinet: {exc}") from None
        address, port = self.repo_address
        write_image(self.root / "repo" / CAB_FOLDER, name, raw)
        return f"http://{address if port == 80 else f'{address}:{port}'}/{CAB_FOLDER}/{name}"

    def fwupd_cab_file(self, name: str, version: str) -> str:
        """Put the cabinet of `version` (the bytes `fwupd_cab` serves) on fwupd host `name`;
        returns its absolute path there (/var/lib/lab-fwupd/lab-webcam-V.cab)."""
        from orchestrator.lab.fwupd import CabError, cab_name, make_cab

        self._fwupd_host(name)
        try:
            file, raw = cab_name(version), make_cab(version)
        except CabError as exc:
            raise LabSetupError(f"fwupd cabinet: {exc}") from None
        path = f"/var/lib/lab-fwupd/{file}"
        script = f"mkdir -p /var/lib/lab-fwupd && cat > {path}.tmp && mv {path}.tmp {path}"
        proc = subprocess.run(self.ssh_argv(name) + [script], input=raw, capture_output=True,
                              timeout=30)
        if proc.returncode != 0:
            raise LabStartError(f"{name}: cannot write {path}: "
                                f"{proc.stderr.decode(errors='replace').strip()[-200:]}")
        return path

    def fwupd_fault(self, name: str, fault: str, seconds: float = 3.0) -> None:
        """Make fwupd on host `name` misbehave until `fwupd_clear`, a reboot or `reset_host`:
        "write-fails" (installs fail, version unchanged), "slow" (each write takes `seconds`,
        at most 10), "needs-reboot" (installs succeed, the version changes at the next reboot),
        "no-change" (installs succeed and want a reboot, which keeps the old version), "hang"
        (the daemon is stopped: every fwupdmgr call blocks)."""
        from orchestrator.lab.fwupd import FAULT_SETTINGS, FAULTS, MAX_SLOW_SECONDS, NO_CHANGE_FLAG

        self._fwupd_host(name)
        if fault not in FAULTS:
            raise LabSetupError(f"{name}: fwupd fault must be one of {', '.join(FAULTS)}, "
                                f"not {fault!r}")
        if fault == "hang":
            pids = self._fwupd_pids(name) or self._fwupd_start(name)
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            return
        if fault == "slow":
            if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                    or not 0 < seconds <= MAX_SLOW_SECONDS):
                raise LabSetupError(f"{name}: a slow fwupd write takes more than 0 and at most "
                                    f"{MAX_SLOW_SECONDS:g} seconds, not {seconds!r}")
            settings = [("WriteDelay", str(max(1, round(seconds * 1000))))]
        else:
            settings = [FAULT_SETTINGS[fault]]
        flag = (f"mkdir -p {os.path.dirname(NO_CHANGE_FLAG)} && touch {NO_CHANGE_FLAG}"
                if fault == "no-change" else "")
        self._fwupd_config(name, settings, flag)

    def fwupd_clear(self, name: str) -> None:
        """Undo every `fwupd_fault` on host `name` (a stopped daemon continues; the versions
        installed meanwhile stay)."""
        from orchestrator.lab.fwupd import CLEAR_SETTINGS, NO_CHANGE_FLAG

        self._fwupd_host(name)
        for pid in self._fwupd_pids(name):
            os.kill(pid, signal.SIGCONT)
        self._fwupd_config(name, list(CLEAR_SETTINGS), f"rm -f {NO_CHANGE_FLAG}")

    def fwupd_version(self, name: str, timeout: float = 30) -> str:
        """The fwupd test device's version on host `name`, from `fwupdmgr get-devices --json`
        over SSH (parsed by orchestrator.facts.fwupd)."""
        from orchestrator.facts.base import FactParseError
        from orchestrator.facts.fwupd import parse_devices_json
        from orchestrator.lab.fwupd import TEST_DEVICE_ID

        self._fwupd_host(name)
        try:
            proc = self.ssh(name, "LC_ALL=C fwupdmgr get-devices --json", check=False,
                            timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabStartError(f"{name}: fwupd did not answer within {timeout:g} s "
                                "(hung? fwupd_clear ends that)") from None
        try:
            devices = parse_devices_json(proc.stdout)
        except FactParseError as exc:
            raise LabStartError(f"{name}: fwupdmgr get-devices (exit {proc.returncode}): "
                                f"{exc}") from None
        for device in devices:
            if device.id == TEST_DEVICE_ID and device.version:
                return device.version
        raise LabStartError(f"{name}: fwupd lists no test device (is TestDevices=true in "
                            "/etc/fwupd/fwupd.conf?)")

    def _fwupd_host(self, name: str) -> LabHost:
        h = self._host(name)
        if h.flavour != "fwupd":
            raise LabSetupError(f"{name}: not a fwupd host (those are lab-fw-NN: lab up --fwupd N)")
        return h

    def _fwupd_config(self, name: str, settings: list[tuple[str, str]], also: str = "") -> None:
        command = " && ".join([f"fwupdmgr modify-config test {key} {value} --json >/dev/null"
                               for key, value in settings] + ([also] if also else []))
        try:
            self.ssh(name, command, timeout=30)
        except subprocess.TimeoutExpired:
            raise LabStartError(f"{name}: fwupd did not answer within 30 s") from None

    def _fwupd_pids(self, name: str) -> list[int]:
        """The fwupd daemons running on host `name` (its PID namespace), as seen from here."""
        ns = os.readlink(f"/proc/{self._supervisor(name)}/ns/pid")
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (os.readlink(entry / "ns" / "pid") == ns
                        and (entry / "comm").read_text().strip() == "fwupd"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def _fwupd_start(self, name: str) -> list[int]:
        """Start fwupd on host `name` (the bus starts it for any fwupdmgr call)."""
        self.ssh(name, "fwupdmgr get-devices --json >/dev/null", check=False, timeout=30)
        pids = self._fwupd_pids(name)
        if not pids:
            raise LabStartError(f"{name}: fwupd does not run (see fwupdmgr get-devices there)")
        return pids


def _size(state: dict) -> list[int]:
    size = list(state.get("size") or [])
    return size + [0] * (5 - len(size))  # older state files: [hosts, windows(, rpm, zypper)]


def _marked(marker: Path, stamp: str = LAYER_VERSION) -> bool:
    try:
        return marker.read_text().strip() == stamp
    except OSError:
        return False


def _mark(marker: Path, stamp: str = LAYER_VERSION) -> None:
    marker.write_text(stamp + "\n")


def _layer_stamp(files: dict[str, tuple[str | bytes, int]]) -> str:
    """LAYER_VERSION and a digest of a layer's files: a layer whose files changed in the code
    (e.g. orchestrator/lab/fwupd.py, copied onto the fwupd hosts) is built again."""
    import hashlib

    digest = hashlib.sha256()
    for rel in sorted(files):
        content, mode = files[rel]
        data = content.encode() if isinstance(content, str) else content
        digest.update(f"{rel}\0{mode:o}\0{len(data)}\0".encode() + data)
    return f"{LAYER_VERSION} {digest.hexdigest()[:16]}"


def _unmark(*markers: Path) -> None:
    for marker in markers:
        marker.unlink(missing_ok=True)


class _Putter:
    """Write files into an overlay upper dir, creating parents with the lower layers' modes."""

    def __init__(self, upper: Path, lowers: list[Path]) -> None:
        self.upper, self.lowers = upper, lowers

    def _mkdirs(self, rel: Path) -> None:
        for parent in reversed(list(rel.parents)[:-1]):
            target = self.upper / parent
            if target.exists():
                continue
            target.mkdir()
            for lower in self.lowers:
                src = lower / parent
                if src.is_dir():
                    st = src.stat()
                    os.chmod(target, st.st_mode & 0o7777)
                    os.chown(target, st.st_uid, st.st_gid)
                    break
            else:
                os.chmod(target, 0o700 if parent.name == ".ssh" else 0o755)

    def __call__(self, rel: str, text: str, mode: int = 0o644) -> None:
        relp = Path(rel)
        self._mkdirs(relp)
        path = self.upper / relp
        path.write_text(text)
        os.chmod(path, mode)
