"""Initial schema: people, signals, decisions, actions, escalations, meetings, comments,
audit log (append-only, enforced by triggers), sync outbox and sync state.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tiermeet.store.types


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('device', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('op', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entity', ['entity', 'entity_id', 'hlc'], unique=False)

    op.create_table('outbox',
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
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('mutation_id')
    )
    op.create_table('person',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('badge', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('badge')
    )
    op.create_table('signal',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detected_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('ingested_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('area', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('asset', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('severity_rank', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('suggested_action', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('evidence_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status_epoch', sa.Integer(), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('tier_entered_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('deadline', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('autonomy', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('policy_rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('policy_version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('acknowledged_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('shelved_until', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('disposition', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('resolved_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.Column('updated_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('updated_hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_signal_source_external_id')
    )
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.create_index('ix_signal_board_area', ['tier', 'area', 'deadline', 'severity_rank', 'id'], unique=False, sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))
        batch_op.create_index('ix_signal_board_line', ['tier', 'line', 'deadline', 'severity_rank', 'id'], unique=False, sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))
        batch_op.create_index('ix_signal_board_plant', ['tier', 'deadline', 'severity_rank', 'id'], unique=False, sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))

    op.create_table('sync_state',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('comment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.create_index('ix_comment_target', ['target', 'target_id', 'created_at'], unique=False)

    op.create_table('escalation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('signal_id', sa.Uuid(), nullable=False),
    sa.Column('from_tier', sa.Integer(), nullable=False),
    sa.Column('to_tier', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('raised_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('raised_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['signal_id'], ['signal.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_signal_id'), ['signal_id'], unique=False)
        batch_op.create_index('ix_escalation_to_tier_raised', ['to_tier', 'raised_at'], unique=False)

    op.create_table('meeting',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('facilitator_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('started_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('ended_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('timebox_minutes', sa.Integer(), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['facilitator_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.create_index('ix_meeting_tier_scope_started', ['tier', 'scope', 'started_at'], unique=False)

    op.create_table('decision',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('signal_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rationale', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('disposition', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('shelved_until', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('decided_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Uuid(), nullable=True),
    sa.Column('policy_version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ai_snapshot', sa.JSON(), nullable=False),
    sa.Column('supersedes', sa.Uuid(), nullable=True),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['signal_id'], ['signal.id'], ),
    sa.ForeignKeyConstraint(['supersedes'], ['decision.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_signal_id'), ['signal_id'], unique=False)

    op.create_table('meeting_attendance',
    sa.Column('meeting_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('joined_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('meeting_id', 'person_id')
    )
    op.create_table('action',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('signal_id', sa.Uuid(), nullable=True),
    sa.Column('decision_id', sa.Uuid(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status_epoch', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('started_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('done_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('verified_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('updated_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('updated_hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['decision.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['signal_id'], ['signal.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index('ix_action_owner_status_due', ['owner_id', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_signal_id'), ['signal_id'], unique=False)
    # The audit log is append-only: refuse any change to what was written.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$"
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
            )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}" + (" ON audit_log" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_signal_id'))
        batch_op.drop_index('ix_action_owner_status_due')

    op.drop_table('action')
    op.drop_table('meeting_attendance')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_signal_id'))
        batch_op.drop_index(batch_op.f('ix_decision_meeting_id'))

    op.drop_table('decision')
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_index('ix_meeting_tier_scope_started')

    op.drop_table('meeting')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_to_tier_raised')
        batch_op.drop_index(batch_op.f('ix_escalation_signal_id'))

    op.drop_table('escalation')
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_target')

    op.drop_table('comment')
    op.drop_table('sync_state')
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.drop_index('ix_signal_board_plant', sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))
        batch_op.drop_index('ix_signal_board_line', sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))
        batch_op.drop_index('ix_signal_board_area', sqlite_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"), postgresql_where=sa.text("status IN ('open', 'acknowledged', 'actioned')"))

    op.drop_table('signal')
    op.drop_table('person')
    op.drop_table('outbox')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entity')

    op.drop_table('audit_log')
