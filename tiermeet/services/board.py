"""Reading the board: pages of signals in board order, on plain sqlite3 (no ORM), so the
first frame of the app does not wait for SQLAlchemy to import."""

import uuid
from contextlib import closing

from tiermeet.domain.errors import DomainError
from tiermeet.services.context import Context
from tiermeet.settings import PLANT_SCOPE, Config
from tiermeet.store.queries import Cursor, Filters, Scope, SignalRow, board_page, board_row, connect_read

__all__ = ["BoardService", "Cursor", "Filters", "Scope", "scope_for"]


class BoardService:
    """Read-only pages of tier boards."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def page(self, scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200) -> list[SignalRow]:
        """One page of signals in board order."""
        with closing(connect_read(self.ctx.db_path)) as conn:
            return board_page(conn, scope, filters, after, limit)

    def row(self, scope: Scope, filters: Filters, signal_id: uuid.UUID) -> SignalRow | None:
        """One signal as the board shows it, or None if it is no longer on that board."""
        with closing(connect_read(self.ctx.db_path)) as conn:
            return board_row(conn, scope, filters, signal_id)

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
