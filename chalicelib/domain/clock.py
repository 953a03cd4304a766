"""Time helpers: one ISO 8601 format everywhere (UTC, milliseconds, 'Z'), sortable as text."""
from __future__ import annotations

from datetime import datetime, timezone

def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """Render a datetime as `2026-01-02T03:04:05.678Z` (fixed width, so text order is time order)."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    # isoformat truncates to milliseconds as strftime's %f[:-3] did, at half its cost (a
    # run detail renders dozens of timestamps), and always writes four-digit years.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_iso(text: str | None) -> datetime | None:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    if text is None:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is timezone.utc:  # as stored: nothing to convert
        return parsed
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def ms_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole milliseconds from start to end, or None when either is missing."""
    if start is None or end is None:
        return None
    return int(round((end - start).total_seconds() * 1000))
