"""Read queries the board and the command line share.

The board reads one page at a time, in board order (window deadline, then severity,
then id), with keyset pagination: the next page starts after the last row shown, so a
page costs the same on the first day and after a year of history. For active signals
the query is served by the partial ``ix_signal_board_*`` indexes.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, or_, select, text, tuple_
from sqlalchemy.orm import Session

from tiermeet.domain.enums import ACTIVE_STATUSES
from tiermeet.store.models import ACTIVE_SQL, Signal

PLANT = "plant"


@dataclass(frozen=True)
class Scope:
    """Which signals a board shows: a tier (or all) and a line, an area or the whole plant."""

    tier: int | None = None
    line: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class Filters:
    """Narrowing on top of the scope; ``statuses`` None means the active ones."""

    statuses: tuple[str, ...] | None = None
    category: str | None = None
    source: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended, in board order."""

    deadline: datetime
    severity_rank: int
    id: uuid.UUID

    @classmethod
    def after(cls, signal: Signal) -> "Cursor":
        """The cursor that continues after ``signal``."""
        return cls(signal.deadline, signal.severity_rank, signal.id)


def board_select(scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200) -> Select:
    """The statement for one page of a board."""
    statuses = filters.statuses or tuple(s.value for s in ACTIVE_STATUSES)
    stmt = select(Signal)
    if statuses == tuple(s.value for s in ACTIVE_STATUSES):
        # The exact expression of the partial indexes, so SQLite can use them.
        stmt = stmt.where(text(ACTIVE_SQL))
    else:
        stmt = stmt.where(Signal.status.in_(statuses))
    if scope.tier is not None:
        stmt = stmt.where(Signal.tier == scope.tier)
    if scope.line is not None:
        stmt = stmt.where(Signal.line == scope.line)
    elif scope.area is not None:
        stmt = stmt.where(Signal.area == scope.area)
    if filters.category:
        stmt = stmt.where(Signal.category == filters.category)
    if filters.source:
        stmt = stmt.where(Signal.source == filters.source)
    if filters.text:
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Signal.title.ilike(pattern, escape="\\"), Signal.asset.ilike(pattern, escape="\\"),
                              Signal.detail.ilike(pattern, escape="\\")))
    if after is not None:
        stmt = stmt.where(tuple_(Signal.deadline, Signal.severity_rank, Signal.id) > tuple_(after.deadline, after.severity_rank, after.id))
    return stmt.order_by(Signal.deadline, Signal.severity_rank, Signal.id).limit(limit)


def board_page(session: Session, scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200) -> list[Signal]:
    """One page of a board, in board order."""
    return list(session.scalars(board_select(scope, filters, after, limit)))
