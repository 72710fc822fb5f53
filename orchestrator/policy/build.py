"""Turn one schema-valid document into its model object."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from orchestrator.policy import model as m
from orchestrator.policy.durations import parse_duration


def local_datetime(text: str) -> datetime:
    """ISO 8601 local date or date-time (no offset); a bare date is 00:00."""
    return (
        datetime.fromisoformat(text) if len(text) > 10 else datetime.fromisoformat(text + "T00:00")
    )


def _t(values: Any) -> tuple:
    return tuple(values or ())


def _rollout(raw: dict | None) -> m.Rollout:
    raw = raw or {}
    return m.Rollout(serial=_t(raw.get("serial", ["100%"])), max_failures=raw.get("maxFailures", 0))


def build_object(kind: str, meta: m.Meta, spec: dict[str, Any]) -> Any:
    """Raises ValueError (with the field's name first) for values the schema cannot judge."""
    return _BUILDERS[kind](meta, spec)


def _window(meta: m.Meta, s: dict) -> m.Window:
    sched = s["schedule"]
    return m.Window(
        meta=meta,
        timezone=s["timezone"],
        duration=_dur("spec.duration", s["duration"]),
        cutoff=_dur("spec.cutoff", s.get("cutoff", "0")),
        cron=sched.get("cron"),
        rrule=sched.get("rrule"),
        offset_days=s.get("offsetDays", 0),
        on_end=s.get("onEnd", "finish"),
        misfire_grace=_dur("spec.misfireGrace", s["misfireGrace"]) if "misfireGrace" in s else None,
        valid_from=_dt("spec.validFrom", s.get("validFrom")),
        valid_until=_dt("spec.validUntil", s.get("validUntil")),
    )


def _dur(name: str, text: str):
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _dt(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return local_datetime(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a real date or time") from None


def _freeze(meta: m.Meta, s: dict) -> m.Freeze:
    return m.Freeze(
        meta=meta,
        start=_dt("spec.from", s["from"]),
        until=_dt("spec.until", s["until"]),
        timezone=s["timezone"],
        reason=s["reason"],
        groups=tuple(s["groups"]) if "groups" in s else None,
    )


def _mode(text: str | None) -> str | None:
    """The schema's 3 or 4 octal digits as the 4 digits hosts report: "644" -> "0644"."""
    return None if text is None else text.zfill(4)


def _baseline(meta: m.Meta, s: dict) -> m.Baseline:
    pk, sv, th, win = (s.get(k) or {} for k in ("packages", "services", "thresholds", "windows"))
    disk = th.get("diskUsedPercent")
    return m.Baseline(
        meta=meta,
        platform=s["platform"],
        packages_installed=_t(pk.get("installed")),
        packages_absent=_t(pk.get("absent")),
        services_running=_t(sv.get("running")),
        services_stopped=_t(sv.get("stopped")),
        services_enabled=_t(sv.get("enabled")),
        services_disabled=_t(sv.get("disabled")),
        files=tuple(
            m.FileRule(
                path=f["path"],
                owner=f.get("owner"),
                group=f.get("group"),
                mode=_mode(f.get("mode")),
                contains=_t(f.get("contains")),
                absent=bool(f.get("absent", False)),
                sha256=f.get("sha256"),
            )
            for f in s.get("files") or ()
        ),
        sysctl=tuple((k, str(v)) for k, v in (s.get("sysctl") or {}).items()),
        thresholds=m.Thresholds(
            disk_used_percent=m.DiskThreshold(disk["max"], _t(disk.get("mounts", ["/"])))
            if disk
            else None,
            memory_used_percent=(th.get("memoryUsedPercent") or {}).get("max"),
            pending_patch_age_days=(th.get("pendingPatchAgeDays") or {}).get("max"),
        ),
        registry=tuple(
            m.RegistryRule(r["key"], r["name"], r["value"]) for r in win.get("registry") or ()
        ),
        hotfixes_installed=_t((win.get("hotfixes") or {}).get("installed")),
        ansible_playbook=(s.get("ansible") or {}).get("playbook"),
    )


def _patch_policy(meta: m.Meta, s: dict) -> m.PatchPolicy:
    ap = s["approval"]
    hc = s.get("healthChecks") or {}
    promo = s.get("promotion")
    return m.PatchPolicy(
        meta=meta,
        rules=tuple(
            m.ApprovalRule(
                classification=r["classification"],
                severity=tuple(r["severity"]) if "severity" in r else None,
                approve_after_days=r["approveAfterDays"],
                deadline_days=r["deadlineDays"],
            )
            for r in ap["rules"]
        ),
        approved=_t(ap.get("approved")),
        rejected=_t(ap.get("rejected")),
        rejected_action=ap.get("rejectedAction", "block"),
        reboot=s.get("reboot", "ifNeeded"),
        rollout=_rollout(s.get("rollout")),
        disk_free_percent_min=(s.get("preChecks") or {}).get("diskFreePercentMin"),
        health_checks=m.HealthChecks(
            services=_t(hc.get("services")),
            command=hc.get("command"),
            timeout=_dur("spec.healthChecks.timeout", hc.get("timeout", "10m")),
        ),
        promotion=m.Promotion(
            promo["afterGroup"], promo.get("minDays", 0), promo.get("maxFailurePercent", 0)
        )
        if promo
        else None,
    )


def _firmware_policy(meta: m.Meta, s: dict) -> m.FirmwarePolicy:
    return m.FirmwarePolicy(
        meta=meta,
        method=s["method"],
        components=tuple(
            m.FirmwareComponent(c["match"], c["version"], c["image"]) for c in s["components"]
        ),
        # YAML 1.1 reads an unquoted On/Off as a boolean: the same words
        require_power_state={True: "On", False: "Off"}.get(s.get("requirePowerState", "any"),
                                                           s.get("requirePowerState", "any")),
        rollout=_rollout(s.get("rollout")),
    )


def _asset_group(meta: m.Meta, s: dict) -> m.AssetGroup:
    h = s["hosts"]
    return m.AssetGroup(
        meta=meta,
        inventory_groups=_t(h.get("inventoryGroups")),
        patterns=_t(h.get("patterns")),
        baselines=_t(s.get("baselines")),
        patch_policy=s.get("patchPolicy"),
        firmware_policy=s.get("firmwarePolicy"),
        windows=_t(s.get("windows")),
    )


def _waiver(meta: m.Meta, s: dict) -> m.Waiver:
    try:
        expires = date.fromisoformat(s["expires"])
    except ValueError:
        raise ValueError(f"spec.expires: {s['expires']!r} is not a real date") from None
    return m.Waiver(
        meta=meta,
        checks=tuple(s["checks"]),
        justification=s["justification"].strip(),
        expires=expires,
        hosts=_t(s.get("hosts")),
        groups=_t(s.get("groups")),
    )


_BUILDERS = {
    "Window": _window,
    "Freeze": _freeze,
    "Baseline": _baseline,
    "PatchPolicy": _patch_policy,
    "FirmwarePolicy": _firmware_policy,
    "AssetGroup": _asset_group,
    "Waiver": _waiver,
}
