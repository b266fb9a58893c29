"""Date parts of RFC 5260 §4.2 and the reading of dates from header fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

_MJD_EPOCH = date(1858, 11, 17)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_zone(zone: str) -> tzinfo | None:
    """``+hhmm``/``-hhmm`` as a fixed offset, or None when malformed."""
    if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
        return None
    hours, minutes = int(zone[1:3]), int(zone[3:5])
    if hours > 23 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if zone[0] == "-" else offset)


def header_date(value: str, field_name: str) -> datetime | None:
    """The date of a header value; for Received, the part after the last ';' (RFC 5260 §4)."""
    if field_name.lower() == "received":
        value = value.rpartition(";")[2]
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # RFC 5322 "-0000": the time is UTC with no information about the local zone.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _zone_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def date_part(moment: datetime, part: str) -> str | None:
    """The text of one date part, or None for an unknown part name."""
    match part.lower():
        case "year":
            return f"{moment.year:04d}"
        case "month":
            return f"{moment.month:02d}"
        case "day":
            return f"{moment.day:02d}"
        case "date":
            return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        case "julian":
            return str((moment.date() - _MJD_EPOCH).days)
        case "hour":
            return f"{moment.hour:02d}"
        case "minute":
            return f"{moment.minute:02d}"
        case "second":
            return f"{moment.second:02d}"
        case "time":
            return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        case "iso8601":
            zone = _zone_text(moment)
            return moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{zone[:3]}:{zone[3:]}"
        case "std11":
            return (
                f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
                f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
                f"{_zone_text(moment)}"
            )
        case "zone":
            return _zone_text(moment)
        case "weekday":
            # RFC 5260: 0 is Sunday.
            return str((moment.weekday() + 1) % 7)
    return None
