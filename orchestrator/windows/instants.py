"""Reading instants given on the command line (--at, --from)."""

from __future__ import annotations

from datetime import UTC, datetime


class InstantError(ValueError):
    pass


def parse_instant(text: str | None, now: datetime | None = None) -> datetime:
    """ISO 8601 instant -> aware datetime. `Z` and offsets are kept; a time without an offset
    (or a bare date, meaning 00:00) is read in this machine's local time zone. None: now."""
    if text is None or text == "now":
        return now or datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InstantError(
            f"{text!r} is not an ISO 8601 instant; write e.g. 2026-11-14T22:30:00+01:00"
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()  # local zone of this machine
    return value
