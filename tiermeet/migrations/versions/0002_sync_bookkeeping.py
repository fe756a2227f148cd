"""Sync bookkeeping: acknowledged mutations kept for re-push after a server restore, and
changes the server rejected, kept to show the people who made them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tiermeet.store.types


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_archive',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('mutation_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('payload_sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('acked_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('mutation_id')
    )
    with op.batch_alter_table('outbox_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_archive_acked_at'), ['acked_at'], unique=False)

    op.create_table('rejection',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('mutation_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('server_state', sa.JSON(), nullable=True),
    sa.Column('rejected_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('seen_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('mutation_id')
    )


def downgrade() -> None:
    op.drop_table('rejection')
    with op.batch_alter_table('outbox_archive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_archive_acked_at'))

    op.drop_table('outbox_archive')
