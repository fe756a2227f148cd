"""The plant board is read area by area: its own index goes.

Every ingested signal entered three board indexes (line, area, plant): together a third
of what an ingest into a large plant costs the database, the plant's a tenth of it. A
plant's board now merges the boards of its areas, which the area index serves in board
order, and the sweep, the plant index's other reader, reads breached signals the same
way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACTIVE_OR = "(status = 'open' OR status = 'acknowledged' OR status = 'actioned')"


def upgrade() -> None:
    op.drop_index("ix_signal_board_plant", table_name="signal")


def downgrade() -> None:
    op.create_index("ix_signal_board_plant", "signal", ["tier", "deadline", "severity_rank", "id"],
                    sqlite_where=sa.text(ACTIVE_OR), postgresql_where=sa.text(ACTIVE_OR))
