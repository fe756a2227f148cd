"""Central server and sync: plants and their hashed tokens, enrolled clients, processed
mutations (exactly-once), the pull log of changes, server facts, the merged state of every
synced record, per-plant signal keys; and on a client, the last server state of each
record and the concurrent decisions flagged for the next tier.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tiermeet.store.types


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('changes',
    sa.Column('server_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('origin_client_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('origin_seq', sa.BigInteger(), nullable=True),
    sa.Column('hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('committed_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.PrimaryKeyConstraint('server_seq')
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index('ix_changes_plant_seq', ['plant_id', 'server_seq'], unique=False)
        batch_op.create_index('ix_changes_shared_seq', ['shared', 'server_seq'], unique=False)

    op.create_table('plants',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('enterprise', sa.Boolean(), nullable=False),
    sa.Column('config_toml', sa.Text(), nullable=True),
    sa.Column('created_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('processed_mutations',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('mutation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload_sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('server_seq', sa.BigInteger(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('clock_skew', sa.Boolean(), nullable=False),
    sa.Column('processed_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'seq'),
    sa.UniqueConstraint('mutation_id')
    )
    op.create_table('signal_keys',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signal_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('plant_id', 'source', 'external_id')
    )
    op.create_table('sync_conflicts',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signal_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('detected_hlc', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_conflicts_signal_id'), ['signal_id'], unique=False)

    op.create_table('sync_entities',
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('parent_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('server_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'entity_id')
    )
    with op.batch_alter_table('sync_entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_entities_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_entities_plant_id'), ['plant_id'], unique=False)

    op.create_table('sync_meta',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('sync_shadow',
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'entity_id')
    )
    op.create_table('api_tokens',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('hint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('expires_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.Column('revoked_at', tiermeet.store.types.UTCDateTime(length=26), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_plant_id'), ['plant_id'], unique=False)

    op.create_table('clients',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('last_processed_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_pull_cursor', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_at', tiermeet.store.types.UTCDateTime(length=26), nullable=False),
    sa.Column('app_version', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('schema_version', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('client_id')
    )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clients_plant_id'), ['plant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clients_plant_id'))

    op.drop_table('clients')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_plant_id'))

    op.drop_table('api_tokens')
    op.drop_table('sync_shadow')
    op.drop_table('sync_meta')
    with op.batch_alter_table('sync_entities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_entities_plant_id'))
        batch_op.drop_index(batch_op.f('ix_sync_entities_parent_id'))

    op.drop_table('sync_entities')
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_conflicts_signal_id'))

    op.drop_table('sync_conflicts')
    op.drop_table('signal_keys')
    op.drop_table('processed_mutations')
    op.drop_table('plants')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index('ix_changes_shared_seq')
        batch_op.drop_index('ix_changes_plant_seq')

    op.drop_table('changes')
