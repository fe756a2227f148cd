"""One board index for every scope: by tier, area and line, each range in board order.

Each index of the active signals is one more insert for every ingested signal and one
more update for every change of a signal's state. The line and area indexes give way to
one that holds both: a line's board is its range, an area's board merges its lines'
ranges and that of its signals on no line, and the plant's merges every range, as the
sweep does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACTIVE_OR = "(status = 'open' OR status = 'acknowledged' OR status = 'actioned')"
ORDER = ["deadline", "severity_rank", "id"]


def upgrade() -> None:
    op.create_index("ix_signal_board", "signal", ["tier", "area", "line", *ORDER],
                    sqlite_where=sa.text(ACTIVE_OR), postgresql_where=sa.text(ACTIVE_OR))
    op.drop_index("ix_signal_board_line", table_name="signal")
    op.drop_index("ix_signal_board_area", table_name="signal")


def downgrade() -> None:
    op.create_index("ix_signal_board_line", "signal", ["tier", "line", *ORDER],
                    sqlite_where=sa.text(ACTIVE_OR), postgresql_where=sa.text(ACTIVE_OR))
    op.create_index("ix_signal_board_area", "signal", ["tier", "area", *ORDER],
                    sqlite_where=sa.text(ACTIVE_OR), postgresql_where=sa.text(ACTIVE_OR))
    op.drop_index("ix_signal_board", table_name="signal")
