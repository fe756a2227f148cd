"""Tables of the central server (and a plant hub), and the client's own sync tables.

Server side (sync-protocol §2.3): ``plants`` and their ``api_tokens`` (only the SHA-256 of a
token is stored), enrolled ``clients`` with the last sequence number processed for each,
``processed_mutations`` (one row per applied or rejected mutation, for exactly-once),
``changes`` (the pull log, ordered by ``server_seq``, with each record's merged state after
the change), ``sync_meta`` (epoch, the global version counter, the server's clock),
``sync_entities`` (every synced record, whose it is, and its latest change, which holds its
current state) and ``signal_keys`` (idempotent ingest per plant on (source, external_id)).

A state is stored once, as the JSON text the server wrote: the server only stores and
returns states, so PostgreSQL has nothing to parse, and a record's current state is its
latest change's rather than a second copy written beside it.

Client side: ``sync_shadow`` keeps the last state the server sent for a record, so a pulled
page only ever moves a record forward, and ``sync_conflicts`` holds the concurrent
decisions the server found, for the next tier to settle.

Both sides use the same metadata and migrations, so one database file could serve either.
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from tiermeet.store.types import UTCDateTime


def _when(**kw):
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw):
    return Field(sa_type=JSON, **kw)


class Plant(SQLModel, table=True):
    """A site that syncs with this server; its config checks the signals posted for it."""

    __tablename__ = "plants"

    id: str = Field(primary_key=True)
    name: str
    enterprise: bool = Field(default=False, description="Sees signals escalated to tier 4 from every plant.")
    config_toml: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _when()


class ApiToken(SQLModel, table=True):
    """A bearer token of one plant; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True)
    plant_id: str = Field(foreign_key="plants.id", index=True)
    sha256: str = Field(unique=True)
    hint: str = Field(description="The token's first characters, to tell tokens apart in listings.")
    label: str | None = None
    created_at: datetime = _when()
    expires_at: datetime | None = _when(default=None)
    revoked_at: datetime | None = _when(default=None)


class SyncClient(SQLModel, table=True):
    """A device (kiosk or hub) enrolled under a plant, and how far its pushes got."""

    __tablename__ = "clients"

    client_id: str = Field(primary_key=True)
    plant_id: str = Field(foreign_key="plants.id", index=True)
    kind: str = "kiosk"
    last_processed_seq: int = Field(default=0, sa_type=BigInteger)
    last_pull_cursor: int = Field(default=0, sa_type=BigInteger)
    last_seen_at: datetime = _when()
    app_version: str | None = None
    schema_version: str | None = None


class ProcessedMutation(SQLModel, table=True):
    """One mutation the server applied or rejected, kept to answer duplicates."""

    __tablename__ = "processed_mutations"

    client_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    mutation_id: str = Field(unique=True)
    name: str
    payload_sha256: str
    status: str = Field(description="applied or rejected")
    reason: str | None = None
    server_seq: int | None = Field(default=None, sa_type=BigInteger)
    result: dict | None = _json(default=None)
    clock_skew: bool = False
    processed_at: datetime = _when()


class Change(SQLModel, table=True):
    """One entry of the pull log: a record's merged state after a change, in commit order.

    Only the few changes shared with the enterprise are indexed as such (a partial index),
    so the others add nothing to that index."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_plant_seq", "plant_id", "server_seq"),
        Index("ix_changes_shared_seq", "server_seq", sqlite_where=text("shared"), postgresql_where=text("shared")),
    )

    server_seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    plant_id: str
    shared: bool = False
    entity: str
    entity_id: str
    state: str = Field(sa_type=Text, description="The record's merged state after the change, as JSON text.")
    origin_client_id: str | None = None
    origin_seq: int | None = Field(default=None, sa_type=BigInteger)
    hlc: str
    committed_at: datetime = _when()


class SyncMeta(SQLModel, table=True):
    """Server facts: ``server_epoch``, ``global_version`` (in ``number``), ``hlc``."""

    __tablename__ = "sync_meta"

    key: str = Field(primary_key=True)
    value: str | None = None
    number: int = Field(default=0, sa_type=BigInteger)


class SyncEntity(SQLModel, table=True):
    """One synced record on the server: whose it is, and its latest change (``server_seq``),
    whose state in ``changes`` is the record's merged state now.

    Rows are small and every push moves the ``server_seq`` of the records it changes, a
    column no index holds: pages are left a fifth empty on PostgreSQL so those updates stay
    on their page (heap-only tuples) and touch no index."""

    __tablename__ = "sync_entities"
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    entity: str = Field(primary_key=True)
    entity_id: str = Field(primary_key=True)
    plant_id: str
    parent_id: str | None = Field(default=None, index=True, description="The signal a record belongs to.")
    shared: bool = False
    server_seq: int = Field(default=0, sa_type=BigInteger, description="The record's latest change.")


class SignalKey(SQLModel, table=True):
    """(source, external_id) of each signal a plant has, so ingest is idempotent."""

    __tablename__ = "signal_keys"

    plant_id: str = Field(primary_key=True)
    source: str = Field(primary_key=True)
    external_id: str = Field(primary_key=True)
    signal_id: str


class SyncShadow(SQLModel, table=True):
    """Client: the newest state the server sent for a record (with its merge clocks)."""

    __tablename__ = "sync_shadow"

    entity: str = Field(primary_key=True)
    entity_id: str = Field(primary_key=True)
    state: dict = _json()


class SyncConflict(SQLModel, table=True):
    """Client: decisions made concurrently on one signal, kept side by side for the next tier."""

    __tablename__ = "sync_conflicts"

    id: str = Field(primary_key=True)
    signal_id: str = Field(index=True)
    kind: str
    members: list = _json()
    detected_hlc: str
