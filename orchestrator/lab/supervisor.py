"""PID 1 of one lab host (stdlib only; run as a script inside `unshare`).

It mounts the host's root (overlayfs), a minimal /dev, proc, read-only sysfs and tmpfs /run, sets
the hostname, gives the host a boot_id, and runs sshd chrooted. The reboot shim in the rootfs
writes /run/lab-power and sends SIGUSR1 (acted on half a second later): on "reboot" every other
process is killed, /run and /proc are renewed, a fresh boot_id is written and sshd starts again;
on "poweroff" the host stops.
A host told to hang (cfg "hold": a file outside the host, `Lab.hold_reboot`) does not come back
from its next reboot: every process is killed and nothing answers until SIGUSR2 (`Lab.release_host`)
finishes the boot (like a server stuck in its firmware until someone presses the button).
The boot time tools derive from /proc/1 (its inode's mtime, as `dnf needs-restarting -r` reads
it) is the time /proc was mounted: the supervisor holds /proc/1 open from the mount on, so the
inode is not recreated (with a later mtime) while the host runs.
SIGTERM stops the host. sshd that dies on its own is not restarted (like a crashed daemon).
Boot hooks (cfg "boot": paths inside the root, e.g. the fwupd flavour's lab-fwupd-boot) run
chrooted, in order, at every boot before sshd starts, with a clean environment and signals
unblocked; daemons they start stay (reparented to the supervisor) until the next reboot. A hook
that fails or runs longer than BOOT_HOOK_TIMEOUT is logged and the boot goes on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

SHUTDOWN_DELAY = 0.5
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
BOOT_HOOK_TIMEOUT = 20.0  # within the 30 s Lab._wait_host gives a boot
BOOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8"}


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def mount_root(cfg: dict) -> str:
    root = cfg["root"]
    lower = ":".join(cfg["lower"])
    sh("mount", "-t", "overlay", "overlay", "-o",
       f"lowerdir={lower},upperdir={cfg['upper']},workdir={cfg['work']}", root)
    sh("mount", "-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", f"{root}/sys")
    dev = f"{root}/dev"
    sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,size=1m", "tmpfs", dev)
    for node in DEV_NODES:
        open(f"{dev}/{node}", "w").close()
        sh("mount", "--bind", f"/dev/{node}", f"{dev}/{node}")
    os.mkdir(f"{dev}/pts")
    sh("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620,gid=5",
       "devpts", f"{dev}/pts")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.mkdir(f"{dev}/shm")
    sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=16m", "tmpfs", f"{dev}/shm")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    mount_run(root)
    socket.sethostname(cfg["hostname"])
    return root


def mount_proc(cfg: dict) -> int:
    """Mount a new proc instance with the host's boot_id; returns an fd holding /proc/1."""
    root = cfg["root"]
    sh("mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", f"{root}/proc")
    sh("mount", "--bind", cfg["boot_id"], f"{root}/proc/sys/kernel/random/boot_id")
    return os.open(f"{root}/proc/1", os.O_RDONLY | os.O_DIRECTORY)


def renew_proc(cfg: dict, pin: int) -> int:
    os.close(pin)
    subprocess.run(["umount", "-l", f"{cfg['root']}/proc"], check=False)
    return mount_proc(cfg)


def mount_run(root: str) -> None:
    sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev,size=32m", "tmpfs", f"{root}/run")
    for sub in ("sshd", "lock"):
        os.makedirs(f"{root}/run/{sub}", exist_ok=True)
    os.chmod(f"{root}/run/sshd", 0o755)


def new_boot_id(cfg: dict) -> None:
    # write in place: the bind mount over /proc/.../boot_id follows the inode
    with open(cfg["boot_id"], "r+") as fh:
        fh.seek(0)
        fh.write(str(uuid.uuid4()) + "\n")
        fh.truncate()


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def run_boot_hooks(cfg: dict) -> None:
    for hook in cfg.get("boot") or []:
        try:
            proc = subprocess.run(["chroot", cfg["root"], hook], stdin=subprocess.DEVNULL,
                                  env=BOOT_ENV, timeout=BOOT_HOOK_TIMEOUT,
                                  preexec_fn=_unblock_signals)
        except subprocess.TimeoutExpired:
            print(f"lab supervisor: boot hook {hook} still running after "
                  f"{BOOT_HOOK_TIMEOUT:g} s: killed, booting on", flush=True)
        except OSError as exc:
            print(f"lab supervisor: boot hook {hook}: {exc}", flush=True)
        else:
            if proc.returncode:
                print(f"lab supervisor: boot hook {hook} exited {proc.returncode}", flush=True)


def start_sshd(cfg: dict) -> subprocess.Popen:
    argv = ["chroot", cfg["root"], "/usr/sbin/sshd", "-D", "-e",
            "-o", f"ListenAddress={cfg['address']}:{cfg['port']}"]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL,
        preexec_fn=_unblock_signals,
    )


def kill_others() -> None:
    """SIGKILL every process of this PID namespace but us, and reap them."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def reap() -> set[int]:
    dead = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return dead
        if pid == 0:
            return dead
        dead.add(pid)


def main() -> int:
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    handled = {signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT,
               signal.SIGHUP}
    for signum in handled:
        signal.signal(signum, lambda *_: None)  # PID 1 gets only signals it handles
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    root = mount_root(cfg)
    pin = mount_proc(cfg)
    run_boot_hooks(cfg)
    sshd = start_sshd(cfg)
    power_file = f"{root}/run/lab-power"
    held = False
    while True:
        sig = signal.sigwait(handled)
        if sig == signal.SIGCHLD:
            reap()
            continue
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            kill_others()
            return 0
        if sig == signal.SIGUSR2:  # the lab releases a held host: the boot completes
            if not held:
                continue
            held = False
        elif held:
            continue  # nothing runs on a held host; a stray SIGUSR1 changes nothing
        else:
            try:
                with open(power_file) as fh:
                    action = fh.read().strip()
            except OSError:
                action = "reboot"
            time.sleep(SHUTDOWN_DELAY)  # like a real shutdown: the caller's command returns
            kill_others()
            if action == "poweroff":
                return 0
            if cfg.get("hold") and os.path.exists(cfg["hold"]):
                held = True
                print("lab supervisor: reboot held, the host stays down", flush=True)
                continue
        subprocess.run(["umount", "-l", f"{root}/run"], check=False)
        mount_run(root)
        new_boot_id(cfg)
        pin = renew_proc(cfg, pin)
        run_boot_hooks(cfg)
        sshd = start_sshd(cfg)
        print(f"lab supervisor: rebooted, sshd pid {sshd.pid}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
