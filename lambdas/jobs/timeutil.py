"""ISO-8601 UTC timestamps in one fixed-width format, so they sort as strings (GSI sort key `updated_at`)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The only clock read in this codebase's Lambda paths; pure code receives `now` as a parameter."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """`2026-11-25T23:40:01.123Z` (milliseconds, always UTC, always 24 characters)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (ours, or AWS's such as `2026-11-25T23:40:01.5Z`) into aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
