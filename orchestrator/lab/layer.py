"""The shared lab layers: lab settings and the 1.0 lab packages on top of a rootfs variant.

Built once per lab folder and flavour (an overlay upper dir, then used read-only as a lower
layer): `layer/` for the apt hosts (dpkg -i of the 1.0 debs), `layer-rpm/` and
`layer-zypper/` for the RPM flavours (rpm --import of the lab key, rpm -i of the 1.0 RPMs, apt
and dpkg removed, which leaves overlay whiteouts that hide them on the hosts).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from orchestrator.lab.errors import LabSetupError
from orchestrator.lab.flavours import HIDDEN_ON_RPM, RPM_KEY_PATH

INSTALL_DEBS = "dpkg -i /mnt/*.deb >/dev/null"
INSTALL_RPMS = (f"rpm --initdb && rpm --import /{RPM_KEY_PATH} && rpm -i /mnt/*.rpm >/dev/null"
                f" && rm -f {' '.join('/' + p for p in HIDDEN_ON_RPM)}")


def build_layer(base: Path, layer: Path, work: Path, payload: Path,
                files: dict[str, tuple[str | bytes, int]], install: str = INSTALL_DEBS) -> None:
    """Write `files` into the new layer, then run `install` chrooted in base+layer with the
    `payload` folder (the packages) at /mnt."""
    layer.mkdir(parents=True)
    work.mkdir(parents=True)
    for rel, (content, mode) in files.items():
        path = layer / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(mode)
    mnt = layer.parent / f"{layer.name}.mnt"
    mnt.mkdir(exist_ok=True)
    q = shlex.quote
    script = f"""set -e
mount -t overlay overlay -o {q(f"lowerdir={base},upperdir={layer},workdir={work}")} {q(str(mnt))}
mount -t tmpfs tmpfs {q(str(mnt))}/dev
touch {q(str(mnt))}/dev/null && mount --bind /dev/null {q(str(mnt))}/dev/null
mount -t proc proc {q(str(mnt))}/proc
mount --bind {q(str(payload))} {q(str(mnt))}/mnt
chroot {q(str(mnt))} sh -c {q(install)}
"""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True)
    subprocess.run(["rm", "-rf", str(work), str(mnt)], check=False)
    if proc.returncode != 0:
        raise LabSetupError(f"cannot build the lab layer {layer.name}: "
                            f"{proc.stderr.strip()[-300:]}; run 'lab down --wipe' and try again")
