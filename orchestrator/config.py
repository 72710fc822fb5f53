"""Configuration: orchestrator.yml, overridden by ORCHESTRATOR_<KEY>, overridden by flags."""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError

DEFAULT_FILE = "orchestrator.yml"
HOST_KEY_MODES = ("strict", "acceptNew")
MAX_FORKS = 1000
KNOWN_HOSTS_DEFAULT = "~/.ssh/known_hosts"


@dataclass(frozen=True)
class SshSettings:
    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    host_keys: str = "strict"


SCHEDULE_FORMATS = ("systemd", "cron")
SCHEDULE_OUTPUT_DEFAULT = ".orchestrator/schedule"


@dataclass(frozen=True)
class ScheduleSettings:
    """Where `apply` writes the scheduler export, and in which format."""

    format: str = "systemd"
    output: Path = Path(SCHEDULE_OUTPUT_DEFAULT)


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
    require_applied: bool = False  # changes to hosts only from the revision `apply` marked
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)

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
    if "://" not in value and re.match(r"[A-Za-z][A-Za-z0-9+.\-]+:", value):
        # `postgresql:/user:pw@host/db` would otherwise become a folder named after it
        raise ConfigError("state: not a store URL (no '://') and not a file path; use "
                          "sqlite:///PATH or postgresql://USER@HOST/DB")
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
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read configuration: {exc}") from None
        loaded = _parse(source, text)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of settings at the top level")
        raw = loaded
    known = {"policies", "inventory", "playbooks", "state", "forks", "ssh", "requireApplied",
             "schedule"}
    unknown = sorted(str(k) for k in set(raw) - known)
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

    def origin(key: str, flag: str | None = None) -> str:
        """Where a setting came from, for messages."""
        if flag is not None:
            return f"--{key}"
        if _env(key.upper()) is not None:
            return f"ORCHESTRATOR_{key.upper()}"
        return str(source)

    def text(key: str, flag: str | None, default: str | None) -> str | None:
        """A path or URL setting: a non-empty string. `null` in the file is an error (it
        would otherwise become a file named None), except where the setting is optional."""
        value = pick(key, flag, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value.strip():
            hint = f"remove the key to use the default {default}" if default else \
                "remove the key if there is none"
            raise ConfigError(f"{origin(key, flag)}: {key} must be a path or URL (a string), "
                              f"not {_shown(value)}; {hint}")
        return value

    forks = _forks(pick("forks", None, 20), origin("forks"))

    ssh_raw = raw.get("ssh")
    if ssh_raw is None:
        ssh_raw = {}
    if not isinstance(ssh_raw, dict):
        raise ConfigError(f"{source}: ssh must be a mapping with knownHosts and hostKeys")
    bad = sorted(str(k) for k in set(ssh_raw) - {"knownHosts", "hostKeys"})
    if bad:
        raise ConfigError(
            f"{source}: unknown ssh setting {bad[0]!r}; expected knownHosts or hostKeys"
        )
    host_keys = _env("SSH_HOST_KEYS") or ssh_raw.get("hostKeys", "strict")
    if host_keys not in HOST_KEY_MODES:
        raise ConfigError(f"{origin('ssh_host_keys')}: ssh.hostKeys must be strict or "
                          f"acceptNew, not {_shown(host_keys)}")
    known_hosts = _env("SSH_KNOWN_HOSTS") or ssh_raw.get("knownHosts", KNOWN_HOSTS_DEFAULT)
    if not isinstance(known_hosts, str) or not known_hosts.strip():
        raise ConfigError(f"{source}: ssh.knownHosts must be the path of a known_hosts file, "
                          f"not {_shown(known_hosts)}; remove the key to use "
                          f"{KNOWN_HOSTS_DEFAULT}")

    inv = text("inventory", inventory, None)
    require_applied = _flag(_env("REQUIRE_APPLIED") if _env("REQUIRE_APPLIED") is not None
                            else raw.get("requireApplied", False),
                            "ORCHESTRATOR_REQUIRE_APPLIED" if _env("REQUIRE_APPLIED")
                            is not None else str(source))
    return Config(
        base_dir=base,
        policies=_path(cwd if policies else base, text("policies", policies, "policies/")),
        inventory=_path(cwd if inventory else base, inv) if inv else None,
        playbooks=_path(base, text("playbooks", None, "playbooks/")),
        state=_state_url(
            cwd if state else base, text("state", state, "sqlite:///.orchestrator/state.db")
        ),
        forks=forks,
        ssh=SshSettings(known_hosts=_path(base, known_hosts), host_keys=host_keys),
        source=source,
        require_applied=require_applied,
        schedule=_schedule(raw.get("schedule"), base, str(source)),
    )


def _flag(value: Any, where: str) -> bool:
    """requireApplied: a YAML boolean, or true/false/yes/no/1/0 from the environment."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"{where}: requireApplied must be true or false, not {_shown(value)}")


def _schedule(raw: Any, base: Path, where: str) -> ScheduleSettings:
    """schedule: {format: systemd|cron, output: DIR}; ORCHESTRATOR_SCHEDULE_FORMAT and
    ORCHESTRATOR_SCHEDULE_OUTPUT override."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: schedule must be a mapping with format and output")
    bad = sorted(str(k) for k in set(raw) - {"format", "output"})
    if bad:
        raise ConfigError(f"{where}: unknown schedule setting {bad[0]!r}; expected format or "
                          "output")
    fmt = _env("SCHEDULE_FORMAT") or raw.get("format", "systemd")
    if fmt not in SCHEDULE_FORMATS:
        raise ConfigError(f"{where}: schedule.format must be systemd or cron, not "
                          f"{_shown(fmt)}")
    output = _env("SCHEDULE_OUTPUT") or raw.get("output", SCHEDULE_OUTPUT_DEFAULT)
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(f"{where}: schedule.output must be a folder path, not "
                          f"{_shown(output)}; remove the key to use {SCHEDULE_OUTPUT_DEFAULT}")
    return ScheduleSettings(format=fmt, output=_path(base, output))


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 56, 56


def _shown(value: Any) -> str:
    """A wrong value for a message: its YAML spelling for null and booleans, else its repr,
    cut (reprlib turns only what is shown into text, however large the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    shown = _REPR.repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _forks(value: Any, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,6}\s*", value):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FORKS:
        raise ConfigError(f"{where}: forks must be a whole number from 1 to {MAX_FORKS}, "
                          f"not {_shown(value)}")
    return value


def _parse(source: Path, text: str) -> Any:
    """The YAML of the configuration file, read as policy files are (policy/yamlpos.py): no
    anchors or aliases (an alias bomb), no duplicate keys, bounded size and nesting, one
    document. Every failure is one line naming the place."""
    from orchestrator.policy.yamlpos import ALIAS_MESSAGE, YamlProblem, load_documents

    try:
        docs = list(load_documents(text))
    except YamlProblem as exc:
        message = exc.message
        if message == ALIAS_MESSAGE:
            message = ("YAML anchors and aliases (&name, *name) are not allowed in the "
                       "configuration file; write the value out in full")
        elif message.startswith("invalid YAML"):
            message = "not valid YAML; fix the syntax"
        raise ConfigError(f"{source}:{exc.line}:{exc.column}: {message}") from None
    if len(docs) > 1:
        raise ConfigError(f"{source}:{docs[1].line}:{docs[1].column}: more than one YAML "
                          "document; keep the settings in one")
    return docs[0].data if docs else None
