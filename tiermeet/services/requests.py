"""Plain request values the app and the command line hand to the services."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ActionSpec:
    """Follow-up work to create with a decision."""

    title: str
    owner: str
    due_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What acting on a signal achieved, recorded when it is resolved."""

    downtime_minutes_avoided: float | None = None
    scrap_avoided: float | None = None
    yield_effect: float | None = None
    note: str = ""
