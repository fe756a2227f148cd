"""Reading the board: pages of signals in board order, and one signal's history."""

from sqlalchemy import select

from tiermeet.services.context import Context
from tiermeet.store.models import AuditEntry, Signal
from tiermeet.store.queries import Cursor, Filters, Scope, board_page

__all__ = ["BoardService", "Cursor", "Filters", "Scope"]


class BoardService:
    """Read-only views for boards and listings."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def page(self, scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200) -> list[Signal]:
        """One page of signals in board order."""
        with self.ctx.read() as session:
            return board_page(session, scope, filters, after, limit)

    def history(self, signal: Signal) -> list[AuditEntry]:
        """The audit entries of a signal, oldest first."""
        with self.ctx.read() as session:
            return list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "signal", AuditEntry.entity_id == str(signal.id)).order_by(AuditEntry.hlc)))

    def scope_for(self, tier: int, unit: str | None) -> Scope:
        """The scope of a tier board for a line, an area or the plant."""
        config = self.ctx.config
        if unit in config.line_area:
            return Scope(tier=tier, line=unit)
        if unit in {a.id for a in config.areas}:
            return Scope(tier=tier, area=unit)
        return Scope(tier=tier)
