"""Period bounds given on the command line (`report --from/--until`, `log --since/--until`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from orchestrator.errors import ConfigError
from orchestrator.textsafe import clean


def parse_bound(value: str, option: str, *, end: bool) -> datetime:
    """An ISO 8601 date or time, as an aware datetime in its own zone; a time without zone
    is this machine's local time. A date alone (2026-10-31 or 20261031) is the start of that
    day for a lower bound and the end of it for an upper one (`end`): the day is included."""
    text = value.strip()
    try:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            dt = datetime(d.year, d.month, d.day) + (timedelta(days=1) if end else timedelta())
        if dt.tzinfo is None:
            try:
                dt = dt.astimezone()  # the local zone's rules for that date
            except (OverflowError, OSError, ValueError):  # a date the clock cannot place
                dt = dt.replace(tzinfo=datetime.now().astimezone().tzinfo)
        dt.astimezone(datetime.now().astimezone().tzinfo)  # representable here and in UTC
    except (ValueError, OverflowError):
        raise ConfigError(f"{option} {clean(value)!r}: not an ISO 8601 date or time in a "
                          "usable range (e.g. 2026-11-01 or 2026-11-01T00:00:00Z)") from None
    return dt
