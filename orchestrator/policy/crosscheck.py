"""Checks across objects and of values a schema cannot judge (run after the schema passes)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.policy import model as m

MIN_DURATION = timedelta(minutes=15)
MAX_DURATION = timedelta(hours=24)


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def cross_check(
    ps: m.PolicySet, today: date | None = None, failed: set[tuple[str, str]] | None = None
) -> tuple[list[str], list[str]]:
    """Return (errors, warnings), each a `file:line:col: Kind/name: message` line.

    References to objects in `failed` (documents that did not load) are not reported again.
    """
    today = today or date.today()
    failed = failed or set()

    def missing(kind: str, name: str) -> bool:
        return name not in ps.by_kind(kind) and (kind, name) not in failed
    errors: list[str] = []
    warnings: list[str] = []

    def err(kind: str, name: str, path: tuple, msg: str) -> None:
        errors.append(f"{ps.locate(kind, name, *path)}: {kind}/{name}: {msg}")

    def warn(kind: str, name: str, path: tuple, msg: str) -> None:
        warnings.append(f"{ps.locate(kind, name, *path)}: {kind}/{name}: {msg}")

    for w in ps.windows.values():
        _check_window(w, err, warn)
    for f in ps.freezes.values():
        if not valid_timezone(f.timezone):
            err("Freeze", f.name, ("spec", "timezone"),
                f"unknown time zone {f.timezone!r}; use an IANA name like Europe/Berlin")
        if f.until <= f.start:
            err("Freeze", f.name, ("spec", "until"), "until must be after from")
        for i, g in enumerate(f.groups or ()):
            if missing("AssetGroup", g):
                err("Freeze", f.name, ("spec", "groups", i), f"unknown AssetGroup {g!r}")
    for b in ps.baselines.values():
        if b.platform == "windows":
            for field, present in (("packages", b.packages_installed or b.packages_absent),
                                   ("sysctl", b.sysctl), ("files", b.files)):
                if present and field != "files":
                    err("Baseline", b.name, ("spec", field),
                        f"{field} checks are for linux baselines; use spec.windows here")
        elif b.registry or b.hotfixes_installed:
            err("Baseline", b.name, ("spec", "windows"),
                "spec.windows checks need platform: windows")
    for fp in ps.firmware_policies.values():
        if fp.method == "fwupd" and fp.require_power_state == "Off":
            err("FirmwarePolicy", fp.name, ("spec", "requirePowerState"),
                "method fwupd updates from inside the running host: requirePowerState Off "
                "can never hold (use redfish, or On / any)")
    for g in ps.groups.values():
        refs = [("baselines", n, "Baseline") for n in g.baselines]
        refs += [("windows", n, "Window") for n in g.windows]
        for field, name, kind in refs:
            if missing(kind, name):
                idx = (g.baselines if field == "baselines" else g.windows).index(name)
                err("AssetGroup", g.name, ("spec", field, idx), f"unknown {kind} {name!r}")
        if g.patch_policy and missing("PatchPolicy", g.patch_policy):
            err("AssetGroup", g.name, ("spec", "patchPolicy"),
                f"unknown PatchPolicy {g.patch_policy!r}")
        if g.firmware_policy and missing("FirmwarePolicy", g.firmware_policy):
            err("AssetGroup", g.name, ("spec", "firmwarePolicy"),
                f"unknown FirmwarePolicy {g.firmware_policy!r}")
        if (g.patch_policy or g.firmware_policy) and not g.windows:
            warn("AssetGroup", g.name, ("spec",),
                 "has a patch or firmware policy but no windows: it can only be patched "
                 "with --ignore-window")
    for p in ps.patch_policies.values():
        if p.promotion and missing("AssetGroup", p.promotion.after_group):
            err("PatchPolicy", p.name, ("spec", "promotion", "afterGroup"),
                f"unknown AssetGroup {p.promotion.after_group!r}")
        both = sorted(set(p.approved) & set(p.rejected))
        if both:
            warn("PatchPolicy", p.name, ("spec", "approval"),
                 f"{', '.join(both)} both approved and rejected; rejected wins")
    for wv in ps.waivers.values():
        for i, g in enumerate(wv.groups):
            if missing("AssetGroup", g):
                err("Waiver", wv.name, ("spec", "groups", i), f"unknown AssetGroup {g!r}")
        if wv.expired(today):
            warn("Waiver", wv.name, ("spec", "expires"),
                 f"expired on {wv.expires.isoformat()}; it no longer applies")
    return errors, warnings


def _check_window(w: m.Window, err, warn) -> None:  # type: ignore[no-untyped-def]
    name = w.name
    tz_ok = valid_timezone(w.timezone)
    if not tz_ok:
        err("Window", name, ("spec", "timezone"),
            f"unknown time zone {w.timezone!r}; use an IANA name like Europe/Berlin")
    if not MIN_DURATION <= w.duration <= MAX_DURATION:
        err("Window", name, ("spec", "duration"), "duration must be between 15m and 24h")
    if w.cutoff >= w.duration:
        err("Window", name, ("spec", "cutoff"),
            "cutoff must be shorter than duration (no work could ever start)")
    if w.misfire_grace is not None and w.misfire_grace > w.duration - w.cutoff:
        warn("Window", name, ("spec", "misfireGrace"),
             "misfireGrace reaches past the cutoff; triggers after the cutoff do nothing anyway")
    if w.valid_from and w.valid_until and w.valid_until <= w.valid_from:
        err("Window", name, ("spec", "validUntil"), "validUntil must be after validFrom")
    if tz_ok:
        from orchestrator.windows.schedule import validate_schedule

        for problem in validate_schedule(w):
            err("Window", name, ("spec", "schedule", "cron" if w.cron else "rrule"), problem)
