"""Audit entries name the outbox mutation that carries them to the other replicas.

The audit log is append-only and the union across replicas is the truth (sync-protocol
§2.6), so each entry is pushed with the mutation written in the same transaction, and
pulled by the plant's other devices. ``audit_log.mutation_id`` says which mutation that
is; entries pulled from elsewhere, and those written before this revision, have none.

A plain ADD COLUMN, not a batch copy of the table: the copy would drop the triggers that
keep the log append-only.

A kiosk still on the older code when its server began sending audit entries kept them as
an unknown record in ``sync_shadow``; they move into its audit log here, so nothing pulled
before the upgrade is missing from it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('mutation_id', sa.Uuid(), nullable=True))
    op.create_index(op.f('ix_audit_log_mutation_id'), 'audit_log', ['mutation_id'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _keep_audit_pulled_before(bind)


def _keep_audit_pulled_before(bind) -> None:
    from tiermeet.sync.local import APPEND_AUDIT, audit_rows

    for (state,) in bind.exec_driver_sql("SELECT state FROM sync_shadow WHERE entity = 'audit'").all():
        rows = audit_rows(json.loads(state)["entries"])
        if rows:
            bind.exec_driver_sql(APPEND_AUDIT, rows)
    bind.exec_driver_sql("DELETE FROM sync_shadow WHERE entity = 'audit'")


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_log_mutation_id'), table_name='audit_log')
    op.drop_column('audit_log', 'mutation_id')
