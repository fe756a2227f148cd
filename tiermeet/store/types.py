"""Column types that keep time zones honest across SQLite and PostgreSQL.

SQLite has no time zone type; a naive ``DateTime`` silently drops the offset. UTCDateTime
refuses naive datetimes, stores UTC as fixed-width ISO text on SQLite (so string order is
time order and indexes sort correctly) and as ``timestamptz`` on PostgreSQL, and always
hands back aware UTC datetimes.
"""

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.types import TypeDecorator

from tiermeet.store.timetext import UTC, to_db_text

__all__ = ["UTC", "UTCDateTime", "to_db_text"]


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
