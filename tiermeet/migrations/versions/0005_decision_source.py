"""Decisions carry their signal's source (model), and an index on what the governance
report counts them by, so the report reads its decision counts in index order instead of
looking up the signal of each of a million decisions and sorting them.

A signal's source is immutable, so the copy never goes stale. Existing decisions take it
from their signal; a trigger fills it in for any insert or update that leaves it out
(pulled records, older code), so no path can store a decision without it.

On SQLite, two partial indexes order the signals by the time from detection to their
first acknowledgement and first decision, so the report reads a median or 90th
percentile by walking an index instead of sorting a million durations. Both times are
empty when a signal is ingested, so ingest writes nothing to them; each is set once.
(Expression indexes: SQLAlchemy cannot reflect them, so the models do not declare them.)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_INDEX = ["source", "decided_by", "kind", "disposition"]
FROM_SIGNAL = "(SELECT s.source FROM signal s WHERE s.id = {}.signal_id)"
#: The response-time indexes: name → the signal's column that ends the duration.
TIME_INDEXES = {"ix_signal_ack_time": "first_acknowledged_at", "ix_signal_decide_time": "first_decided_at"}


def upgrade() -> None:
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.execute(f"UPDATE decision SET source = {FROM_SIGNAL.format('decision')} WHERE source IS NULL")
    op.create_index('ix_decision_report', 'decision', REPORT_INDEX, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION decision_source_from_signal() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN IF NEW.source IS NULL THEN NEW.source := {FROM_SIGNAL.format('NEW')}; END IF; "
                   "RETURN NEW; END $$")
        op.execute("CREATE TRIGGER decision_source BEFORE INSERT OR UPDATE ON decision "
                   "FOR EACH ROW EXECUTE FUNCTION decision_source_from_signal()")
        return
    for name, column in TIME_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON signal (julianday({column}) - julianday(detected_at)) WHERE {column} IS NOT NULL")
    # SQLite cannot change NEW in a BEFORE trigger: fill the row in just after.
    for verb in ("INSERT", "UPDATE OF source"):
        op.execute(f"CREATE TRIGGER decision_source_on_{verb.split()[0].lower()} AFTER {verb} ON decision "
                   f"WHEN NEW.source IS NULL BEGIN "
                   f"UPDATE decision SET source = {FROM_SIGNAL.format('NEW')} WHERE rowid = NEW.rowid; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS decision_source ON decision")
        op.execute("DROP FUNCTION IF EXISTS decision_source_from_signal()")
    else:
        for verb in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS decision_source_on_{verb}")
        for name in TIME_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index('ix_decision_report', table_name='decision')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_column('source')
