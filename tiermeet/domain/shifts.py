"""The plant's shift calendar: when shifts end, in the plant's time zone.

Built with dateutil's rrule over local wall-clock times, then placed in the zone, so
overnight shifts and daylight-saving changes give the times a shift lead expects: a
shift that ends at 06:00 ends at 06:00 local time on the day after a clock change too.
dateutil is imported when a shift is first computed: the config names this module, and
the board's first frame needs no shift.
"""

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

#: Day names as the config spells them, with their weekday number (Monday is 0).
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class Shift:
    """One shift pattern: starts at ``start`` local time on ``days`` and ends at ``end``."""

    name: str
    start: time
    end: time
    days: tuple[str, ...] = tuple(WEEKDAYS)

    @property
    def overnight(self) -> bool:
        """True when the shift ends on the day after it starts (e.g. 22:00–06:00)."""
        return self.end <= self.start


@dataclass(frozen=True)
class ShiftSpan:
    """One concrete occurrence of a shift, in UTC."""

    name: str
    start: datetime
    end: datetime


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone``; a time inside a spring-forward gap moves past the gap."""
    from dateutil import tz

    return tz.resolve_imaginary(naive.replace(tzinfo=zone))


class ShiftCalendar:
    """Occurrences of the configured shifts around a moment."""

    def __init__(self, shifts: list[Shift], zone: str) -> None:
        self.shifts = shifts
        self.zone = ZoneInfo(zone)
        #: per local day, its spans and their starts (to bisect)
        self._by_day: dict[date, tuple[list[ShiftSpan], list[datetime]]] = {}

    def spans_around(self, at: datetime) -> list[ShiftSpan]:
        """Shift occurrences starting from two days before ``at`` to two days after, sorted."""
        return self._day(at)[0]

    def _day(self, at: datetime) -> tuple[list[ShiftSpan], list[datetime]]:
        """``spans_around`` and their starts, computed once per local day: ingest asks for
        thousands of signals of the same day."""
        day = at.astimezone(self.zone).date()
        found = self._by_day.get(day)
        if found is None:
            spans = self._spans_for(day)
            found = self._by_day[day] = (spans, [s.start for s in spans])
        return found

    def _spans_for(self, day: date) -> list[ShiftSpan]:
        from dateutil import rrule

        local_day = datetime(day.year, day.month, day.day)
        first, last = local_day - timedelta(days=2), local_day + timedelta(days=2)
        spans = []
        for shift in self.shifts:
            rule = rrule.rrule(
                rrule.DAILY,
                dtstart=first.replace(hour=shift.start.hour, minute=shift.start.minute),
                until=last.replace(hour=23, minute=59),
                byweekday=[rrule.weekdays[WEEKDAYS[d]] for d in shift.days],
            )
            for start in rule:
                end = start.replace(hour=shift.end.hour, minute=shift.end.minute)
                if shift.overnight:
                    end += timedelta(days=1)
                spans.append(
                    ShiftSpan(
                        shift.name,
                        _localize(start, self.zone).astimezone(timezone.utc),
                        _localize(end, self.zone).astimezone(timezone.utc),
                    )
                )
        return sorted(spans, key=lambda s: (s.start, s.end))

    def current(self, at: datetime) -> ShiftSpan | None:
        """The shift running at ``at`` (the latest-starting one if shifts overlap)."""
        spans, starts = self._day(at)
        return self._running(spans, bisect_right(starts, at), at)

    @staticmethod
    def _running(spans: list[ShiftSpan], begun: int, at: datetime) -> ShiftSpan | None:
        """Of the first ``begun`` spans (those started by ``at``), the last still running."""
        for span in reversed(spans[:begun]):
            if at < span.end:
                return span
        return None

    def end_of_shift(self, at: datetime) -> datetime:
        """When the shift running at ``at`` ends; between shifts, when the next one ends."""
        spans, starts = self._day(at)
        begun = bisect_right(starts, at)
        now = self._running(spans, begun, at)
        if now is not None:
            return now.end
        if begun == len(spans):
            raise ValueError("the shift calendar has no shift within two days")
        return spans[begun].end
