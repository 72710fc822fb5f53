"""Configuration: orchestrator.yml, overridden by ORCHESTRATOR_<KEY>, overridden by flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import ConfigError

DEFAULT_FILE = "orchestrator.yml"
HOST_KEY_MODES = ("strict", "acceptNew")


@dataclass(frozen=True)
class SshSettings:
    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    host_keys: str = "strict"


@dataclass(frozen=True)
class Config:
    """Resolved settings. Relative paths are relative to `base_dir` (the config file's folder)."""

    base_dir: Path
    policies: Path
    inventory: Path | None
    playbooks: Path
    state: str
    forks: int = 20
    ssh: SshSettings = field(default_factory=SshSettings)
    source: Path | None = None

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _env(key: str) -> str | None:
    value = os.environ.get(f"ORCHESTRATOR_{key}")
    return value if value not in (None, "") else None


def _path(base: Path, value: str | os.PathLike[str]) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else base / p


def _state_url(base: Path, value: str) -> str:
    """Make a relative sqlite path absolute so that the store does not depend on the cwd."""
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        return "sqlite:///" + str(_path(base, value[len("sqlite:///") :]))
    if "://" not in value:  # a bare file path
        return "sqlite:///" + str(_path(base, value))
    return value


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    policies: str | None = None,
    inventory: str | None = None,
    state: str | None = None,
    cwd: Path | None = None,
) -> Config:
    """Read the configuration file (optional unless named), then environment, then flags."""
    cwd = cwd or Path.cwd()
    path = path or _env("CONFIG")
    raw: dict[str, Any] = {}
    source: Path | None = None
    if path is not None:
        source = _path(cwd, path)
        if not source.is_file():
            raise ConfigError(f"{source}: configuration file not found; check --config")
    elif (cwd / DEFAULT_FILE).is_file():
        source = cwd / DEFAULT_FILE
    if source is not None:
        try:
            loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read configuration: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise ConfigError(f"{source}{where}: not valid YAML; fix the syntax") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of settings at the top level")
        raw = loaded
    known = {"policies", "inventory", "playbooks", "state", "forks", "ssh"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
        )
    base = source.parent if source is not None else cwd

    def pick(key: str, flag: str | None, default: Any) -> Any:
        if flag is not None:
            return flag
        env = _env(key.upper())
        if env is not None:
            return env
        return raw.get(key, default)

    forks_raw = pick("forks", None, 20)
    try:
        forks = int(forks_raw)
        if forks < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source or 'ORCHESTRATOR_FORKS'}: forks must be a whole number >= 1"
        ) from None

    ssh_raw = raw.get("ssh") or {}
    if not isinstance(ssh_raw, dict):
        raise ConfigError(f"{source}: ssh must be a mapping with knownHosts and hostKeys")
    bad = sorted(set(ssh_raw) - {"knownHosts", "hostKeys"})
    if bad:
        raise ConfigError(
            f"{source}: unknown ssh setting {bad[0]!r}; expected knownHosts or hostKeys"
        )
    host_keys = _env("SSH_HOST_KEYS") or ssh_raw.get("hostKeys", "strict")
    if host_keys not in HOST_KEY_MODES:
        raise ConfigError(f"{source}: ssh.hostKeys must be strict or acceptNew, not {host_keys!r}")
    known_hosts = _env("SSH_KNOWN_HOSTS") or ssh_raw.get("knownHosts", "~/.ssh/known_hosts")

    inv = pick("inventory", inventory, None)
    return Config(
        base_dir=base,
        policies=_path(cwd if policies else base, pick("policies", policies, "policies/")),
        inventory=_path(cwd if inventory else base, inv) if inv else None,
        playbooks=_path(base, pick("playbooks", None, "playbooks/")),
        state=_state_url(
            cwd if state else base, str(pick("state", state, "sqlite:///.orchestrator/state.db"))
        ),
        forks=forks,
        ssh=SshSettings(known_hosts=_path(base, known_hosts), host_keys=host_keys),
        source=source,
    )
