"""A throwaway RabbitMQ broker on loopback, for the tests (postgres.py is its PostgreSQL twin).

    broker = Broker(tls=True)
    url = broker.start()          # amqps://orchestrator:<random>@127.0.0.1:<port>/orchestrator
    broker.url(tls=False)         # the plain AMQP listener (always there, loopback too)
    broker.ssl_options()          # py-amqp / kombu / Celery `broker_use_ssl` trusting broker.ca
    broker.restart(kill=True)     # same data, node name, ports and URL (a fault for the tests)
    broker.ctl("list_queues")     # rabbitmqctl against this broker (about 0.5 s a call)
    broker.stop()                 # nothing left running, listening or on disk

Debian's rabbitmq-server is started from /usr/lib/rabbitmq/bin (not the /usr/sbin wrappers, which
`su rabbitmq` and write under /var/lib and /var/log), with every path in a private temp folder
(0700): its own Erlang cookie, its own epmd on a free loopback port (never the system's 4369), free
loopback ports for AMQP, AMQPS and Erlang distribution, and a node name of its own, so it neither
needs nor disturbs a system broker. The user, password and vhost are made at first boot from
rabbitmq.conf. As root the broker runs as the `rabbitmq` system user (the package creates it), as
the PostgreSQL cluster runs as `postgres`. Every process carries the folder in its environment
(MARKER), so stop() finds and kills any that left the process group.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from orchestrator.lab.errors import LabError, LabSetupError, LabStartError

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = Path("/usr/bin/epmd")
MARKER = "ORCHESTRATOR_LAB_RABBITMQ"
RUN_AS = "rabbitmq"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def server_bin() -> Path:
    """The folder of rabbitmq-server and its CLI tools; LabSetupError when not installed."""
    if not (RABBITMQ_BIN / "rabbitmq-server").is_file() or not EPMD.is_file():
        raise LabSetupError("no RabbitMQ server installed; apt-get install rabbitmq-server "
                            "(make test installs it)")
    return RABBITMQ_BIN


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held together while chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


class Broker:
    """A RabbitMQ node in a temp folder: start() -> URL, restart(), stop(); see the module doc."""

    def __init__(self, base: Path | None = None, *, tls: bool = False,
                 user: str = "orchestrator", vhost: str = "orchestrator",
                 consumer_timeout_ms: int | None = None, timeout: float = 90.0) -> None:
        for what, value in (("user", user), ("vhost", vhost)):
            if not _NAME.fullmatch(value):
                raise LabError(f"{value!r}: not a plain RabbitMQ {what} name (letters, digits, "
                               "'_', '.', '-')")
        if consumer_timeout_ms is not None and consumer_timeout_ms < 1:
            raise LabError(f"consumer_timeout_ms {consumer_timeout_ms}: give a positive number")
        self.bin = server_bin()
        self.tls = tls
        self.user = user
        self.vhost = vhost
        self.password = secrets.token_urlsafe(18)
        self.consumer_timeout_ms = consumer_timeout_ms
        self.timeout = timeout
        self.node = f"orch-{secrets.token_hex(6)}@localhost"
        self.port, self.tls_port, self.dist_port, self.epmd_port = _free_ports(4)
        if not tls:
            self.tls_port = 0
        self.ca: Path | None = None
        self.start_seconds = 0.0
        self._as: dict = {}
        self._run_uid = os.geteuid()
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise LabSetupError(f"no {RUN_AS!r} system user; reinstall rabbitmq-server "
                                    "(its package creates it)") from None
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self._run_uid = pw.pw_uid
        self.base = Path(tempfile.mkdtemp(prefix="orch-rmq-", dir=base)).resolve()
        os.chmod(self.base, 0o700)
        self._server: subprocess.Popen | None = None
        self._epmd: subprocess.Popen | None = None
        self._laid_out = False

    # -- files ------------------------------------------------------------------------------

    def _write(self, rel: str, text: str, mode: int = 0o600) -> Path:
        path = self.base / rel
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return path

    def _conf(self) -> str:
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{self.port}",
            f"default_user = {self.user}",
            f"default_pass = {self.password}",
            f"default_vhost = {self.vhost}",
            "default_permissions.configure = .*",
            "default_permissions.read = .*",
            "default_permissions.write = .*",
            "default_user_tags.administrator = true",
            "loopback_users = none",
            "log.console = false",
            "log.file = rabbit.log",
            "log.file.level = info",
            "disk_free_limit.absolute = 50MB",
        ]
        if self.consumer_timeout_ms is not None:
            lines.append(f"consumer_timeout = {self.consumer_timeout_ms}")
        if self.tls:
            certs = self.base / "certs"
            lines += [
                f"listeners.ssl.1 = 127.0.0.1:{self.tls_port}",
                f"ssl_options.cacertfile = {certs / 'ca.pem'}",
                f"ssl_options.certfile = {certs / 'broker.pem'}",
                f"ssl_options.keyfile = {certs / 'broker.key'}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
                "ssl_options.versions.1 = tlsv1.3",
                "ssl_options.versions.2 = tlsv1.2",
            ]
        return "\n".join(lines) + "\n"

    def _layout(self) -> None:
        """Write the folder while only this process can enter it, then hand it to RUN_AS."""
        if self._as:
            self._check_reachable()
        for sub in ("mnesia", "log", "home"):
            (self.base / sub).mkdir(mode=0o700)
        # Erlang refuses a cookie that others can read; the CLI tools find it through HOME too.
        self._write("home/.erlang.cookie", secrets.token_hex(20), 0o400)
        self._write("enabled_plugins", "[].\n")
        self._write("rabbitmq-env.conf", "")  # else /etc/rabbitmq/rabbitmq-env.conf is read
        self._write("server.out", "")
        if self.tls:
            from orchestrator.lab.certs import ensure_ca, issue_server_cert

            certs = self.base / "certs"
            certs.mkdir(mode=0o700)
            self.ca, ca_key = ensure_ca(certs)
            issue_server_cert(certs, ["127.0.0.1"], name="broker")
            ca_key.unlink()  # nothing else is ever signed: no CA key left lying around
        self._write("rabbitmq.conf", self._conf())
        if self._as:
            # children first, the folder itself last, never following a link
            for root, dirs, files in os.walk(self.base, topdown=False):
                for name in files + dirs:
                    os.chown(os.path.join(root, name), self._as["user"], self._as["group"],
                             follow_symlinks=False)
            os.chown(self.base, self._as["user"], self._as["group"], follow_symlinks=False)
        self._laid_out = True

    def _check_reachable(self) -> None:
        """RUN_AS must be able to walk down to the folder (a 0700 parent would stop it)."""
        uid, gid = self._as["user"], self._as["group"]
        for parent in self.base.parents:
            st = parent.stat()
            ok = (st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR)
                  or (st.st_gid == gid and st.st_mode & stat.S_IXGRP))
            if not ok:
                raise LabSetupError(f"{parent}: the {RUN_AS} user cannot enter it; give the "
                                    "broker a base folder it can reach (e.g. under /tmp)")

    def env(self) -> dict[str, str]:
        """The environment of every broker process (and of CLI calls): nothing inherited."""
        b = self.base
        return {
            MARKER: str(b),
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(b / "home"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            # the default, AMQP port + 20000, is past 65535 for most free ports
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(b / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_PID_FILE": str(b / "rabbit.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(b / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(b / "plugins-expand"),
            # distribution on loopback only; never start a daemon epmd (ours runs in the
            # foreground, so it cannot outlive the broker)
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"),
        }

    # -- URLs -------------------------------------------------------------------------------

    def url(self, tls: bool | None = None) -> str:
        """amqps:// (the TLS listener) when tls, else amqp://; default: as constructed."""
        if tls is None:
            tls = self.tls
        if tls and not self.tls:
            raise LabError("this broker has no TLS listener; construct it with tls=True")
        scheme, port = ("amqps", self.tls_port) if tls else ("amqp", self.port)
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{port}/{self.vhost}"

    def ssl_options(self, server_hostname: str = "127.0.0.1") -> dict:
        """TLS options for py-amqp, kombu and Celery (`broker_use_ssl`): trust only the lab CA
        and check the server name (py-amqp checks no name unless server_hostname is given)."""
        if self.ca is None:
            raise LabError("this broker has no TLS listener; construct it with tls=True")
        return {"ca_certs": str(self.ca), "cert_reqs": ssl.CERT_REQUIRED,
                "server_hostname": server_hostname}

    # -- processes --------------------------------------------------------------------------

    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    def start(self) -> str:
        """Start the node (the first time: lay out the folder) and wait for an AMQP login;
        return url(). On failure nothing is left running and LabStartError says why."""
        if self.running():
            raise LabError(f"the broker in {self.base} is already running")
        if not self.base.is_dir():
            raise LabError(f"{self.base} is gone: the broker was stopped; make a new Broker")
        t0 = time.monotonic()
        again = self._laid_out
        if not again:
            self._layout()
        ours = self.epmd_port if self._epmd is not None and self._epmd.poll() is None else 0
        # on a restart, the node killed a moment ago may still hold its sockets
        wait = time.monotonic() + (3 if again else 0)
        while True:
            taken = [p for p in (self.port, self.tls_port, self.dist_port, self.epmd_port)
                     if p and p != ours and not _port_free(p)]
            if not taken or time.monotonic() > wait:
                break
            time.sleep(0.1)
        if taken:
            raise LabStartError(f"broker port(s) {', '.join(map(str, taken))} on 127.0.0.1 in "
                                "use by another program; stop it or make a new Broker")
        try:
            self._start_epmd()
            out = os.open(self.base / "server.out", os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            try:
                self._server = subprocess.Popen(
                    [str(self.bin / "rabbitmq-server")], env=self.env(), cwd=self.base,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, umask=0o077, **self._as)
            finally:
                os.close(out)
            self._wait_ready(t0 + self.timeout)
        except BaseException:
            self._halt(kill=True)
            self._stop_epmd()
            raise
        self.start_seconds = time.monotonic() - t0
        return self.url()

    def _start_epmd(self) -> None:
        if self._epmd is not None and self._epmd.poll() is None:
            return
        self._epmd = subprocess.Popen(
            [str(EPMD), "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env(), cwd=self.base, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            umask=0o077, **self._as)
        deadline = time.monotonic() + 10
        while not _tcp_open(self.epmd_port):
            if self._epmd.poll() is not None:
                raise LabStartError(f"epmd for the broker in {self.base} exited "
                                    f"({self._epmd.returncode}) on port {self.epmd_port}")
            if time.monotonic() > deadline:
                raise LabStartError(f"epmd for the broker in {self.base} not listening on "
                                    f"127.0.0.1:{self.epmd_port} after 10 s")
            time.sleep(0.02)

    def _wait_ready(self, deadline: float) -> None:
        """Ready when the configured user logs in to the vhost: the listeners open late in
        boot, so an open port alone comes a little early."""
        try:
            import amqp
        except ImportError:
            raise LabSetupError("the Python package amqp is missing; pip install -e '.[test]'"
                                ) from None
        last = "no answer"
        delay = 0.05
        while True:
            if self._server is not None and self._server.poll() is not None:
                raise LabStartError(f"the broker in {self.base} exited "
                                    f"({self._server.returncode}): {self._why()}")
            conn = amqp.Connection(
                f"127.0.0.1:{self.tls_port if self.tls else self.port}", userid=self.user,
                password=self.password, virtual_host=self.vhost, connect_timeout=2,
                read_timeout=5, write_timeout=5,
                ssl=self.ssl_options() if self.tls else False)
            try:
                conn.connect()
            except (OSError, amqp.exceptions.AMQPError) as exc:
                last = f"{type(exc).__name__}: {exc}".splitlines()[0]
                conn.collect()
            else:
                try:
                    conn.close()
                except (OSError, amqp.exceptions.AMQPError):
                    conn.collect()
                return
            if time.monotonic() > deadline:
                raise LabStartError(f"the broker in {self.base} did not accept a login within "
                                    f"{self.timeout:.0f} s ({last}; {self._why()})")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _tail(self, path: Path, limit: int = 65536) -> str:
        """The end of a file the broker writes (never through a link, only a regular file of
        the broker's user or ours)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return ""
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid not in (self._run_uid, os.geteuid()):
                return ""
            fh.seek(max(0, st.st_size - limit))
            return fh.read().decode("utf-8", "replace")

    def _why(self) -> str:
        """One line of the broker's output or log that says why it did not start."""
        out = self._tail(self.base / "server.out")
        log = self._tail(self.base / "log" / "rabbit.log")
        if "eaddrinuse" in out + log:
            return "a port was taken by another program while it booted (eaddrinuse)"
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        errors = [ln.split("] ", 1)[-1].split("> ", 1)[-1].strip()
                  for ln in log.splitlines() if "[error]" in ln]
        picked = ([ln for ln in lines if ln.startswith("init terminating in do_boot")]
                  or [ln for ln in errors if ln] or lines[-1:] or ["no output"])
        return picked[0][:240]

    def _halt(self, kill: bool, timeout: float = 30.0) -> None:
        """Stop the node: kill=False asks for a clean shutdown (SIGTERM to rabbitmq-server,
        which stops the VM), kill=True is SIGKILL to its whole process group."""
        proc = self._server
        if proc is None:
            return
        if proc.poll() is None:
            try:
                if kill:
                    os.killpg(proc.pid, signal.SIGKILL)  # the leader is not reaped yet
                else:
                    proc.send_signal(signal.SIGTERM)
                proc.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass  # SIGKILL below
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                raise LabError(f"the broker in {self.base} (pid {proc.pid}) did not die on "
                               "SIGKILL") from None
        self._server = None
        self._sweep(keep_epmd=True)

    def _stop_epmd(self) -> None:
        proc = self._epmd
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._epmd = None

    def pids(self) -> list[int]:
        """Live processes of this broker: those whose environment carries the folder marker
        (beam.smp, erl_child_setup, epmd, a CLI call, anything that left the group)."""
        entry = f"{MARKER}={self.base}".encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if _uid(pid) not in (self._run_uid, os.geteuid()):
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if entry in environ.split(b"\0"):
                found.append(pid)
        return found

    def _sweep(self, keep_epmd: bool = False, timeout: float = 10.0) -> list[int]:
        """SIGKILL every marked process (but our epmd when keep_epmd); wait; return survivors."""
        keep = {self._epmd.pid} if keep_epmd and self._epmd is not None else set()
        deadline = time.monotonic() + timeout
        while True:
            left = [p for p in self.pids() if p not in keep]
            if not left or time.monotonic() > deadline:
                return left
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)

    def restart(self, kill: bool = False) -> str:
        """Stop the node (cleanly, or SIGKILL when kill) and start it again on the same data,
        node name, ports and credentials; return url()."""
        self._halt(kill=kill)
        return self.start()

    def ctl(self, *args: str, tool: str = "rabbitmqctl", timeout: float = 60.0) -> str:
        """Run a CLI tool (rabbitmqctl, rabbitmq-diagnostics, rabbitmq-queues) against this node
        and return its output; LabError with its message when it fails."""
        if tool not in ("rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-queues"):
            raise LabError(f"{tool}: not a RabbitMQ CLI tool this broker runs")
        try:
            done = subprocess.run([str(self.bin / tool), "-q", "-n", self.node, *args],
                                  env=self.env(), cwd=self.base, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout, **self._as)
        except subprocess.TimeoutExpired:
            raise LabError(f"{tool} {args[0] if args else ''} against the broker in "
                           f"{self.base} took more than {timeout:.0f} s") from None
        if done.returncode != 0:
            why = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise LabError(f"{tool} {' '.join(args[:1])}: {why[0] if why else done.returncode}")
        return done.stdout

    def stop(self) -> None:
        """Kill every process of the broker and remove its folder (also after a failed start).
        LabError if a process or the folder survives."""
        self._halt(kill=True)
        self._stop_epmd()
        left = self._sweep()
        for _ in range(3):
            shutil.rmtree(self.base, ignore_errors=True)
            if not self.base.exists():
                break
            time.sleep(0.2)
        if left:
            raise LabError(f"broker processes {left} of {self.base} survived SIGKILL")
        if self.base.exists():
            raise LabError(f"{self.base} could not be removed; remove it by hand")

    def __enter__(self) -> Broker:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
