"""The server stores each record state once, as JSON text.

Every change wrote the record's merged state twice, into ``changes`` (for pull) and into
``sync_entities`` (for the next merge), both as JSON that PostgreSQL parsed on every
insert. A record's latest change already holds its current state, so ``sync_entities``
keeps only which change that is (``server_seq``), and ``changes.state`` becomes text: the
server writes and returns the JSON it made and never queries inside it.

Also: ``ix_changes_shared_seq`` indexes only the changes shared with the enterprise (the
others added an entry each for nothing); ``ix_sync_entities_plant_id`` served no query and
goes; on PostgreSQL ``sync_entities`` pages are left a fifth empty, so moving a record's
``server_seq`` stays on its page (a heap-only update that touches no index).

No state is lost: a record whose ``server_seq`` names no change of its own (older code
always wrote one; this is a guard) gets a new change holding its state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import tiermeet.store.types


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 80
_CHANGES = sa.table(
    "changes", sa.column("server_seq", sa.BigInteger), sa.column("plant_id"), sa.column("shared", sa.Boolean),
    sa.column("entity"), sa.column("entity_id"), sa.column("state", sa.Text), sa.column("origin_client_id"),
    sa.column("origin_seq", sa.BigInteger), sa.column("hlc"),
    sa.column("committed_at", tiermeet.store.types.UTCDateTime(length=26)))


def _give_every_record_its_change(bind) -> None:
    """A record whose server_seq names no change of its own gets one holding its state."""
    orphans = bind.execute(sa.text(
        "SELECT e.entity, e.entity_id, e.plant_id, e.shared, CAST(e.state AS TEXT) FROM sync_entities e "
        "WHERE NOT EXISTS (SELECT 1 FROM changes c WHERE c.server_seq = e.server_seq "
        "AND c.entity = e.entity AND c.entity_id = e.entity_id) ORDER BY e.entity, e.entity_id")).all()
    if not orphans:
        return
    meta = dict(bind.execute(sa.text("SELECT key, COALESCE(value, CAST(number AS VARCHAR)) FROM sync_meta "
                                     "WHERE key IN ('global_version', 'hlc')")).all())
    version = int(meta["global_version"])
    now = datetime.now(timezone.utc)
    for entity, entity_id, plant_id, shared, state in orphans:
        version += 1
        bind.execute(_CHANGES.insert().values(server_seq=version, plant_id=plant_id, shared=bool(shared), entity=entity,
                                              entity_id=entity_id, state=state, origin_client_id=None, origin_seq=None,
                                              hlc=meta["hlc"], committed_at=now))
        bind.execute(sa.text("UPDATE sync_entities SET server_seq = :seq WHERE entity = :entity AND entity_id = :id"),
                     {"seq": version, "entity": entity, "id": entity_id})
    bind.execute(sa.text("UPDATE sync_meta SET number = :n WHERE key = 'global_version'"), {"n": version})


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index('ix_changes_shared_seq')
        batch_op.alter_column('state', existing_type=sa.JSON(), type_=sa.Text(), existing_nullable=False,
                              postgresql_using='state::text')
    _give_every_record_its_change(bind)
    op.create_index('ix_changes_shared_seq', 'changes', ['server_seq'], unique=False,
                    sqlite_where=sa.text('shared'), postgresql_where=sa.text('shared'))
    with op.batch_alter_table('sync_entities', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_entities_plant_id')
        batch_op.drop_column('state')
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE sync_entities SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE sync_entities RESET (fillfactor)")
    with op.batch_alter_table('sync_entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.JSON(), nullable=True))
        batch_op.create_index('ix_sync_entities_plant_id', ['plant_id'], unique=False)
    cast = "CAST(c.state AS JSON)" if bind.dialect.name == "postgresql" else "c.state"
    op.execute(f"UPDATE sync_entities SET state = (SELECT {cast} FROM changes c WHERE c.server_seq = sync_entities.server_seq)")
    with op.batch_alter_table('sync_entities', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.JSON(), nullable=False)
    op.drop_index('ix_changes_shared_seq', table_name='changes')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.Text(), type_=sa.JSON(), existing_nullable=False,
                              postgresql_using='state::json')
        batch_op.create_index('ix_changes_shared_seq', ['shared', 'server_seq'], unique=False)
