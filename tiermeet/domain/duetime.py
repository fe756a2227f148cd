"""Due times as people type them at a kiosk: ``+4h``, ``tomorrow 14:00``, ``end of shift``.

Relative durations use the same units as response windows; clock times and dates are
read by dateutil in the plant's time zone; "end of shift" asks the shift calendar. A
clock time already past today means the next day, as a shift lead would mean it.
"""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser

from tiermeet.domain.durations import parse_duration
from tiermeet.domain.shifts import ShiftCalendar

_DAY_WORDS = {"today": 0, "tomorrow": 1, "tmrw": 1}
_END_OF_SHIFT = re.compile(r"^(end[ _]of[ _]shift|eos)$")
EXAMPLES = "+4h, 30m, tomorrow 14:00, fri 09:00, 2026-12-01 08:00 or end of shift"


def parse_due(text: str, now: datetime, zone: ZoneInfo, calendar: ShiftCalendar) -> datetime:
    """The moment ``text`` names, after ``now``; ValueError with examples if it names none."""
    raw = " ".join(text.strip().lower().split())
    if not raw:
        raise ValueError(f"type a due time, e.g. {EXAMPLES}")
    if _END_OF_SHIFT.match(raw):
        return calendar.end_of_shift(now)
    if raw.startswith("+") or re.fullmatch(r"(\d+\s*[smhdw]\s*)+", raw):
        try:
            return now + parse_duration(raw.lstrip("+ "))
        except ValueError:
            raise ValueError(f"{text.strip()!r} is not a due time; try {EXAMPLES}") from None
    local_now = now.astimezone(zone)
    shift_days = 0
    words = raw.split(" ", 1)
    if words[0] in _DAY_WORDS:
        shift_days = _DAY_WORDS[words[0]]
        raw = words[1] if len(words) > 1 else "09:00"
    try:
        parsed = dateparser.parse(raw, default=local_now.replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None))
    except (ValueError, OverflowError):
        raise ValueError(f"{text.strip()!r} is not a due time; try {EXAMPLES}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    parsed += timedelta(days=shift_days)
    if parsed <= now and shift_days == 0 and not re.search(r"\d{4}|\d+[/.-]\d+", raw):
        parsed += timedelta(days=7 if _names_weekday(raw) else 1)
    if parsed <= now:
        raise ValueError(f"{text.strip()!r} is in the past ({parsed.astimezone(zone):%a %d %b %H:%M})")
    return parsed.astimezone(now.tzinfo)


def _names_weekday(raw: str) -> bool:
    return bool(re.search(r"\b(mon|tue|wed|thu|fri|sat|sun)", raw))
