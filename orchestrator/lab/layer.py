"""The shared lab layer: lab settings and the 1.0 lab packages on top of the base rootfs.

Built once per lab folder (an overlay upper dir, then used read-only as a lower layer)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from orchestrator.lab.errors import LabSetupError
from orchestrator.lab.shims import LAYER_FILES


def build_layer(base: Path, layer: Path, work: Path, debs: Path) -> None:
    layer.mkdir(parents=True)
    work.mkdir(parents=True)
    for rel, (text, mode) in LAYER_FILES.items():
        path = layer / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    mnt = layer.parent / "layer.mnt"
    mnt.mkdir(exist_ok=True)
    q = shlex.quote
    script = f"""set -e
mount -t overlay overlay -o {q(f"lowerdir={base},upperdir={layer},workdir={work}")} {q(str(mnt))}
mount -t tmpfs tmpfs {q(str(mnt))}/dev
touch {q(str(mnt))}/dev/null && mount --bind /dev/null {q(str(mnt))}/dev/null
mount -t proc proc {q(str(mnt))}/proc
mount --bind {q(str(debs))} {q(str(mnt))}/mnt
chroot {q(str(mnt))} sh -c 'dpkg -i /mnt/*.deb >/dev/null'
"""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True)
    subprocess.run(["rm", "-rf", str(work), str(mnt)], check=False)
    if proc.returncode != 0:
        raise LabSetupError(f"cannot build the lab layer: {proc.stderr.strip()[-300:]}; "
                            "run 'lab down --wipe' and try again")
