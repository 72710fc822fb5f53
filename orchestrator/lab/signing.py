"""The lab's signing key: one per lab folder, in a private GNUPGHOME (never the user's keyring).

    key = LabKey(lab_root / "gnupg")
    with key.session():                      # gpg-agent is stopped when the block ends
        key.ensure()                         # generates the key on first use
        key.clearsign(release, inrelease)    # apt InRelease
        key.detach_sign(release, release_gpg)
        key.sign_rpms([...])
        key.export_public(path, armor=False)  # the hosts' keyring (apt signed-by, rpm --import)

The folder is 0700 and gpg keeps the secret key 0600 inside it. The key has no passphrase: it
signs a repository that only lab hosts on the loopback network read, and it never leaves the
lab folder. Every gpg call gets --homedir explicitly, so neither $GNUPGHOME nor ~/.gnupg is used;
signatures name the key by fingerprint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.lab.errors import LabSetupError

KEY_UID = "Orchestrator Lab Repository <lab@localhost>"


class LabKey:
    def __init__(self, home: Path) -> None:
        self.home = home
        self._fpr: str | None = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPG")}
        env["GNUPGHOME"] = str(self.home)
        return env

    @staticmethod
    def _check_tools() -> None:
        for tool in ("gpg", "gpg-agent", "gpgconf"):  # the agent holds the secret key
            if shutil.which(tool) is None:
                raise LabSetupError(f"'{tool}' is missing: run 'apt-get install {tool}' as root")

    def _gpg(self, *args: str, input_: bytes | None = None) -> bytes:
        self._check_tools()
        proc = subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--quiet",
                               "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "",
                               *args], input=input_, capture_output=True, env=self._env())
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise LabSetupError(f"gpg {args[0]} failed in {self.home}: {' '.join(err)}; "
                                "run 'lab down --wipe' and try again")
        return proc.stdout

    @contextmanager
    def session(self) -> Iterator[LabKey]:
        """Signing calls inside; the gpg-agent they start is stopped afterwards (nothing of
        the lab keeps running after `lab down`)."""
        try:
            yield self
        finally:
            if self.home.exists() and shutil.which("gpgconf"):
                subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"],
                               capture_output=True, env=self._env(), check=False)

    def ensure(self) -> str:
        """The key's fingerprint; generates the key (ed25519, signing only) on first use."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        if self._fpr:
            return self._fpr
        fpr = self.fingerprint()
        if not fpr:
            self._gpg("--quick-gen-key", KEY_UID, "ed25519", "sign", "never")
            fpr = self.fingerprint()
        if not fpr:
            raise LabSetupError(f"{self.home}: gpg made no key; run 'lab down --wipe'")
        self._fpr = fpr
        return fpr

    def fingerprint(self) -> str | None:
        if not self.home.exists():
            return None
        self._check_tools()
        proc = subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--with-colons",
                               "--list-secret-keys", KEY_UID], capture_output=True,
                              env=self._env())
        for line in proc.stdout.decode(errors="replace").splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        return None

    def export_public(self, out: Path, armor: bool = False) -> None:
        data = self._gpg(*(["--armor"] if armor else []), "--export", self.ensure())
        if not data:
            raise LabSetupError(f"{self.home}: no lab key to export; run 'lab down --wipe'")
        out.write_bytes(data)
        out.chmod(0o644)

    def clearsign(self, src: Path, out: Path) -> None:
        self._gpg("--yes", "--digest-algo", "SHA512", "--local-user", self.ensure(),
                  "--output", str(out), "--clearsign", str(src))

    def detach_sign(self, src: Path, out: Path, armor: bool = True) -> None:
        self._gpg("--yes", "--digest-algo", "SHA512", "--local-user", self.ensure(),
                  *(["--armor"] if armor else []), "--output", str(out), "--detach-sign",
                  str(src))

    def sign_rpms(self, rpms: list[Path]) -> None:
        if not rpms:
            return
        if shutil.which("rpmsign") is None:
            raise LabSetupError("'rpmsign' is missing: run 'apt-get install rpm' as root")
        argv = ["rpmsign", "--define", f"_gpg_name {self.ensure()}",
                "--define", f"_gpg_path {self.home}", "--define", "__gpg /usr/bin/gpg",
                "--addsign", *map(str, rpms)]
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=self._env())
        if proc.returncode != 0:
            raise LabSetupError(f"rpmsign failed: {proc.stderr.strip()[-200:]}")
