"""Response-window lengths as people write them in the config: ``30m``, ``4h``, ``3d``.

``end_of_shift`` is the one named window; it is resolved against the shift calendar.
"""

import re
from functools import lru_cache
from datetime import timedelta

END_OF_SHIFT = "end_of_shift"

_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(\d+\s*[smhdw]\s*)+$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@lru_cache(maxsize=256)
def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` → 90 minutes. Raises ValueError with the accepted forms on anything else.
    Cached: ingest asks for the same few windows for every signal."""
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, e.g. 30m, 4h, 3d, 1h30m"
        )
    total = timedelta()
    for amount, unit in _PART.findall(text.lower()):
        total += timedelta(**{_UNIT[unit]: int(amount)})
    if total <= timedelta():
        raise ValueError(f"{text!r} is not a duration; it must be longer than zero")
    return total


def check_window(text: str) -> str:
    """A window as written in the config (a duration or ``end_of_shift``), validated."""
    if text != END_OF_SHIFT:
        parse_duration(text)
    return text
