"""Governance: the kill switch (model suspensions), reviews of autonomous decisions, and
the facts the report aggregates on each signal (first window, first acknowledgement and
decision, top-tier breach flag). Existing signals take their current deadline as their
first one, and their first decision and acknowledgement from what is recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tiermeet.store.types


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACTIVE_IN = "status IN ('open', 'acknowledged', 'actioned')"
ACTIVE_OR = "(status = 'open' OR status = 'acknowledged' OR status = 'actioned')"
BOARD_INDEXES = {
    "ix_signal_board_line": ["tier", "line", "deadline", "severity_rank", "id"],
    "ix_signal_board_area": ["tier", "area", "deadline", "severity_rank", "id"],
    "ix_signal_board_plant": ["tier", "deadline", "severity_rank", "id"],
}


def upgrade() -> None:
    op.create_table('model_suspension',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('suspended_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('suspended_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('resumed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('resumed_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('resume_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['resumed_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['suspended_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_suspension', schema=None) as batch_op:
        batch_op.create_index('ix_model_suspension_source', ['source', 'resumed_at'], unique=False)

    op.create_table('decision_review',
    sa.Column('decision_id', sa.Uuid(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reviewed_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('meeting_id', sa.Uuid(), nullable=True),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['decision.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['reviewed_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('decision_id')
    )
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_deadline', tiermeet.store.types.UTCDateTime(length=26), nullable=True))
        batch_op.add_column(sa.Column('first_acknowledged_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True))
        batch_op.add_column(sa.Column('first_decided_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True))
        batch_op.add_column(sa.Column('flagged_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True))
        batch_op.create_index('ix_signal_shelved', ['shelved_until'], unique=False, sqlite_where=sa.text("status = 'shelved'"), postgresql_where=sa.text("status = 'shelved'"))
    op.execute("UPDATE signal SET first_deadline = deadline WHERE first_deadline IS NULL")
    # What is known of earlier history: the first decision by a person, the acknowledgement.
    op.execute("UPDATE signal SET first_decided_at = (SELECT min(d.decided_at) FROM decision d WHERE d.signal_id = signal.id "
               "AND d.decided_by NOT LIKE 'ai:%' AND d.decided_by NOT LIKE 'system:%') WHERE first_decided_at IS NULL")
    op.execute("UPDATE signal SET first_acknowledged_at = acknowledged_at WHERE first_acknowledged_at IS NULL")
    # JSON columns: a missing value is SQL NULL, not the JSON text 'null'.
    op.execute("UPDATE signal SET extra = NULL WHERE CAST(extra AS TEXT) = 'null'")
    op.execute("UPDATE signal SET outcome = NULL WHERE CAST(outcome AS TEXT) = 'null'")
    # The board's partial indexes, with the condition spelled as ORs (cheaper per insert).
    for name, columns in BOARD_INDEXES.items():
        op.drop_index(name, table_name="signal")
        op.create_index(name, "signal", columns, sqlite_where=sa.text(ACTIVE_OR), postgresql_where=sa.text(ACTIVE_OR))



def downgrade() -> None:
    for name, columns in BOARD_INDEXES.items():
        op.drop_index(name, table_name="signal")
        op.create_index(name, "signal", columns, sqlite_where=sa.text(ACTIVE_IN), postgresql_where=sa.text(ACTIVE_IN))
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.drop_index('ix_signal_shelved', sqlite_where=sa.text("status = 'shelved'"), postgresql_where=sa.text("status = 'shelved'"))
        batch_op.drop_column('flagged_at')
        batch_op.drop_column('first_decided_at')
        batch_op.drop_column('first_acknowledged_at')
        batch_op.drop_column('first_deadline')

    op.drop_table('decision_review')
    with op.batch_alter_table('model_suspension', schema=None) as batch_op:
        batch_op.drop_index('ix_model_suspension_source')

    op.drop_table('model_suspension')
