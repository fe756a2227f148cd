"""Reading the board: pages of signals in board order, on plain sqlite3 (no ORM), so the
first frame of the app does not wait for SQLAlchemy to import."""

import sqlite3
import threading
import uuid

from tiermeet.domain.errors import DomainError
from tiermeet.services.context import Context
from tiermeet.settings import PLANT_SCOPE, Config
from tiermeet.store.queries import Cursor, Filters, Scope, SignalRow, board_page, board_row, connect_read

__all__ = ["BoardService", "Cursor", "Filters", "Scope", "scope_for"]


class BoardService:
    """Read-only pages of tier boards.

    The board reads a page on every refresh, page down and decision, from worker threads.
    It keeps one read-only connection for that, used by one thread at a time: opening a
    connection per read parsed the whole schema each time, and on a kiosk that runs all
    shift the churn of those short-lived connections kept several megabytes of freed
    memory in the process. Each page is read in a transaction of its own, held only while
    it is read, so it sees every change committed before it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def page(self, scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200) -> list[SignalRow]:
        """One page of signals in board order."""
        with self._lock:
            return board_page(self._connection(), scope, filters, after, limit)

    def row(self, scope: Scope, filters: Filters, signal_id: uuid.UUID) -> SignalRow | None:
        """One signal as the board shows it, or None if it is no longer on that board."""
        with self._lock:
            return board_row(self._connection(), scope, filters, signal_id)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_read(self.ctx.db_path)
        return self._conn

    def scope_for(self, tier: int | None, unit: str | None) -> Scope:
        """The scope of a board for a line, an area or the plant (``None`` or 'plant')."""
        return scope_for(self.ctx.config, tier, unit)


def scope_for(config: Config, tier: int | None, unit: str | None) -> Scope:
    """The scope a line, an area or the plant (``None`` or 'plant') names, at ``tier``."""
    if unit in config.line_area:
        return Scope(tier=tier, line=unit)
    if unit in {a.id for a in config.areas}:
        return Scope(tier=tier, area=unit)
    if unit not in (None, PLANT_SCOPE):
        raise DomainError(f"{unit!r} is not a configured line, area or 'plant'")
    return Scope(tier=tier)
