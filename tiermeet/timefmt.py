"""Times as a shift lead reads them: "2h 05m left", "overdue 12m", "3d ago"."""

from datetime import datetime, timedelta


def span(delta: timedelta) -> str:
    """A compact, positive duration: ``45s``, ``12m``, ``2h 05m``, ``3d 4h``."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def time_left(deadline: datetime, now: datetime) -> str:
    """``2h 05m`` before the deadline, ``-12m`` after it."""
    delta = deadline - now
    return span(delta) if delta >= timedelta() else f"-{span(delta)}"
