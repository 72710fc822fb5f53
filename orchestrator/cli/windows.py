"""`orchestrator windows list|next|check`: maintenance windows and freezes."""

from __future__ import annotations

import click

from orchestrator.cli.output import app, emit_json, emit_line
from orchestrator.errors import EXIT_CLOSED, OrchestratorError


class BadInstant(OrchestratorError):
    """--at / --from is not an ISO 8601 instant."""


def _instant(option: str, text: str | None):
    from orchestrator.windows.instants import InstantError, parse_instant

    try:
        return parse_instant(text)
    except InstantError as exc:
        raise BadInstant(f"{option}: {exc}") from None


@click.group("windows")
def windows() -> None:
    """Maintenance windows, freezes and whether a group is open."""


@windows.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Windows, freezes and the groups using them."""
    from orchestrator.policy.durations import format_duration
    from orchestrator.windows.freezes import span

    a = app(ctx)
    ps = a.policies
    wins = []
    for name in sorted(ps.windows):
        w = ps.windows[name]
        wins.append({
            "name": name,
            "schedule": {"cron": w.cron} if w.cron else {"rrule": w.rrule},
            "timezone": w.timezone,
            "offsetDays": w.offset_days,
            "duration": format_duration(w.duration),
            "cutoff": format_duration(w.cutoff),
            "onEnd": w.on_end,
            "misfireGrace": format_duration(w.misfire_grace) if w.misfire_grace else None,
            "validFrom": w.valid_from.isoformat() if w.valid_from else None,
            "validUntil": w.valid_until.isoformat() if w.valid_until else None,
            "groups": ps.groups_using_window(name),
        })
    frz = []
    for name in sorted(ps.freezes):
        f = ps.freezes[name]
        s = span(f)
        frz.append({
            "name": name, "from": s.start_iso(), "until": s.until_iso(),
            "timezone": f.timezone, "reason": f.reason,
            "groups": list(f.groups) if f.groups is not None else None,
        })
    if a.output_format == "json":
        emit_json({"windows": wins, "freezes": frz})
        return
    emit_line("WINDOWS")
    if not wins:
        emit_line("  (none)")
    for w in wins:
        sched = w["schedule"].get("cron") or w["schedule"]["rrule"].replace("\n", " | ")
        extra = f" +{w['offsetDays']}d" if w["offsetDays"] else ""
        emit_line(f"  {w['name']}: {sched}{extra} ({w['timezone']}), {w['duration']}, "
                   f"cutoff {w['cutoff']}, onEnd {w['onEnd']}; groups: "
                   f"{', '.join(w['groups']) or '-'}")
    emit_line("FREEZES")
    if not frz:
        emit_line("  (none)")
    for f in frz:
        groups = ", ".join(f["groups"]) if f["groups"] is not None else "all groups"
        emit_line(f"  {f['name']}: {f['from']} .. {f['until']} ({groups}): {f['reason']}")


@windows.command("next")
@click.option("--window", "window_name", help="Only this window.")
@click.option("--group", help="Windows of this group; blockedBy lists freezes for it.")
@click.option("--count", default=10, show_default=True, type=click.IntRange(1, 10000))
@click.option("--from", "from_", help="ISO 8601 instant to start from (default: now).")
@click.pass_context
def next_cmd(ctx: click.Context, window_name: str | None, group: str | None, count: int,
             from_: str | None) -> None:
    """Next occurrences (the one in progress at --from first), in start order.

    Searches until COUNT are found or every schedule ends (COUNT, UNTIL, validUntil), at
    most 400 years past --from (or the earliest validFrom); when that bound cuts the list
    short it says so on stderr and exits 4."""
    from orchestrator.cli.output import warn
    from orchestrator.errors import EXIT_INCOMPLETE
    from orchestrator.windows.check import (
        blocked_by,
        get_group_windows,
        get_window,
        spans_for_groups,
    )
    from orchestrator.windows.upcoming import NEXT_SEARCH_YEARS, upcoming

    a = app(ctx)
    ps = a.policies
    after = _instant("--from", from_)
    if group:
        wins = get_group_windows(ps, group)
        if window_name:
            wins = [w for w in wins if w.name == window_name]
            if not wins:
                raise BadInstant(f"group {group} does not use window {window_name}")
    elif window_name:
        wins = [get_window(ps, window_name)]
    else:
        wins = [ps.windows[n] for n in sorted(ps.windows)]
    spans_by_window = {
        w.name: spans_for_groups(ps, [group] if group else ps.groups_using_window(w.name))
        for w in wins
    }
    found = upcoming(wins, after, count)
    rows = [o.to_json(blocked_by(o, spans_by_window[o.window])) for o in found.occurrences]
    if a.output_format == "json":
        emit_json(rows)
    else:
        if not rows and not found.truncated:
            emit_line("no further occurrences: every schedule has ended (validUntil, COUNT "
                      "or UNTIL)" if wins else "no windows")
        for r in rows:
            blocked = f"  BLOCKED by {', '.join(r['blockedBy'])}" if r["blockedBy"] else ""
            emit_line(f"{r['start']} .. {r['end']} (cutoff {r['cutoff']})  {r['window']}"
                      f" [{r['timezone']}]{blocked}")
    if found.limit is not None:
        # SPEC's JSON list keeps its shape: the truncation goes to stderr and the exit code.
        warn(f"windows next: {len(rows)} of {count} occurrences found; the search stopped at "
             f"its bound, {found.limit.isoformat()} ({NEXT_SEARCH_YEARS} years after "
             f"{found.begin.isoformat()}); {', '.join(found.unfinished)} may occur later "
             "(exit 4: incomplete)")
        ctx.exit(EXIT_INCOMPLETE)


@windows.command("check")
@click.option("--group", required=True, help="Asset group to check.")
@click.option("--at", "at", help="ISO 8601 instant (default: now).")
@click.pass_context
def check_cmd(ctx: click.Context, group: str, at: str | None) -> None:
    """Is the group open? Exit 0 open, 3 closed; always says why."""
    from orchestrator.windows.check import check_group

    a = app(ctx)
    result = check_group(a.policies, group, _instant("--at", at))
    if a.output_format == "json":
        emit_json(result.to_json())
    else:
        emit_line(f"{group}: {'OPEN' if result.open else 'CLOSED'} at {result.at.isoformat()}"
                   f" - {result.reason}")
    if not result.open:
        ctx.exit(EXIT_CLOSED)
