"""Reading instants given on the command line (--at, --from)."""

from __future__ import annotations

from datetime import UTC, datetime

# Instants outside these years are refused: far enough from datetime's limits (years 1 and
# 9999) that every computation around an instant (horizons of a few years, offsets, the
# schedules' searches) stays representable.
MIN_YEAR = 1970
MAX_YEAR = 9000


class InstantError(ValueError):
    pass


def parse_instant(text: str | None, now: datetime | None = None) -> datetime:
    """ISO 8601 instant -> aware datetime. `Z` and offsets are kept; a time without an offset
    (or a bare date, meaning 00:00) is read in this machine's local time zone. None: now.
    InstantError (one line) unless it parses and falls in the years MIN_YEAR..MAX_YEAR (UTC)."""
    if text is None or text == "now":
        return now or datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InstantError(
            f"{text!r} is not an ISO 8601 instant; write e.g. 2026-11-14T22:30:00+01:00"
        ) from None
    out_of_range = InstantError(
        f"{text!r} is out of range: give an instant in the years {MIN_YEAR} to {MAX_YEAR}"
    )
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise out_of_range
    try:
        if value.tzinfo is None:
            value = value.astimezone()  # local zone of this machine
        utc_year = value.astimezone(UTC).year
    except (OverflowError, OSError, ValueError):
        raise out_of_range from None
    if not MIN_YEAR <= utc_year <= MAX_YEAR:
        raise out_of_range
    return value
