"""Column types that keep time zones honest across SQLite and PostgreSQL.

SQLite has no time zone type; a naive ``DateTime`` silently drops the offset. UTCDateTime
refuses naive datetimes, stores UTC as fixed-width ISO text on SQLite (so string order is
time order and indexes sort correctly) and as ``timestamptz`` on PostgreSQL, and always
hands back aware UTC datetimes.
"""

from datetime import datetime, timezone

from sqlalchemy import DateTime, String
from sqlalchemy.types import TypeDecorator

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


class UTCDateTime(TypeDecorator):
    """An aware datetime in, an aware UTC datetime out."""

    impl = String(26)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_db_text(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: tiermeet stores only time-zone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
