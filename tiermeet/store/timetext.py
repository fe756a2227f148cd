"""How tiermeet writes a time as SQLite text, apart from the column types: the ingest's
reading process uses it without loading SQLAlchemy."""

from datetime import datetime, timezone

UTC = timezone.utc
#: Each day's part of the stored text ("2026-11-25T"), by the day's ordinal: bulk ingest
#: converts several times per row, and writing the time of day alone after it takes half
#: as long as ``isoformat`` of the whole aware time. Past this many days the cache starts
#: afresh.
_DAYS: dict[int, str] = {}
DAYS_KEPT = 4096


def to_db_text(value: datetime) -> str:
    """The stored text of an aware datetime: naive UTC ISO 8601 with microseconds."""
    zone = value.tzinfo
    if zone is None:
        raise ValueError(f"naive datetime {value!r}: tiermeet stores only time-zone-aware times")
    if zone is not UTC:
        value = value.astimezone(UTC)
    day = _DAYS.get(value.toordinal())
    if day is None:
        if len(_DAYS) >= DAYS_KEPT:
            _DAYS.clear()
        day = _DAYS[value.toordinal()] = value.date().isoformat() + "T"
    # the time of day's isoformat() leaves out a fraction of zero microseconds
    return day + value.time().isoformat() if value.microsecond else day + value.time().isoformat() + ".000000"
