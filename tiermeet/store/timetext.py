"""How tiermeet writes a time as SQLite text, apart from the column types: the ingest's
reading process uses it without loading SQLAlchemy."""

from datetime import datetime, timezone

UTC = timezone.utc


def to_db_text(value: datetime) -> str:
    """The stored text of an aware datetime: naive UTC ISO 8601 with microseconds."""
    zone = value.tzinfo
    if zone is None:
        raise ValueError(f"naive datetime {value!r}: tiermeet stores only time-zone-aware times")
    if zone is not UTC:
        value = value.astimezone(UTC)
    # Bulk ingest converts several times per row, so this avoids replace() and the timespec
    # argument: isoformat() of a UTC time is "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00", without
    # the fraction when the microseconds are zero.
    text = value.isoformat()
    return text[:26] if value.microsecond else text[:19] + ".000000"
