"""The sync protocol's messages (sync-protocol §2.4, §2.5), shared by devices and the server.

The server validates every request body against these models, and FastAPI builds the
OpenAPI description from them, so what the docs say is what is checked.
"""

import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tiermeet.sync.mutations import Mutation

PROTOCOL_VERSION = 1
#: Most mutations in one push, and most signals in one POST /v1/signals.
MAX_PUSH_MUTATIONS = 1000
MAX_SIGNALS = 1000
#: Most audit entries one mutation carries (a sweep flags or an ingest decides at most a
#: batch of signals in one transaction).
MAX_AUDIT_PER_MUTATION = 20_000
#: Largest request body the server reads.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Default and largest pull page.
PULL_LIMIT = 2000
PULL_LIMIT_MAX = 5000
#: Largest sequence number or cursor (fits a signed 64-bit column with room to spare).
MAX_SEQ = 2**62

#: The pull log's entity for a batch of audit entries: its state is ``{"entries": [...]}``,
#: each an ``AuditRecord``.
AUDIT_ENTITY = "audit"

HLC_PATTERN = r"^[0-9a-f]{16}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuditRecord(_Message):
    """An audit entry as it travels between replicas (append-only; the same ``id`` twice is
    one entry)."""

    # The bounds leave room for everything a device writes (``ai:`` and a 200-character
    # model name as actor, a model name as entity id): an entry a device cannot help
    # writing must never make its pushes refused.
    id: uuid.UUID = Field(description="UUIDv7 made by the device that wrote the entry.")
    at: AwareDatetime
    actor: str = Field(max_length=300)
    device: str = Field(max_length=300, description="The kiosk or system that wrote the entry.")
    entity: str = Field(max_length=100)
    entity_id: str = Field(max_length=300)
    op: str = Field(max_length=100)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    hlc: str = Field(pattern=HLC_PATTERN)


class WireMutation(_Message):
    """One mutation from a device's outbox, in its sequence."""

    seq: int = Field(ge=1, le=MAX_SEQ, description="Dense per-device sequence number.")
    mutation_id: str = Field(pattern=ID_PATTERN, description="UUIDv7 made by the device.")
    name: str = Field(max_length=100, description="e.g. action.set_owner")
    entity: str = Field(max_length=100)
    entity_id: str = Field(max_length=100)
    hlc: str = Field(pattern=HLC_PATTERN, description="Hybrid logical clock stamp of the change.")
    actor: str = Field(max_length=200, description="The person (or system actor) who made the change.")
    created_at: datetime
    args: dict[str, Any]
    payload_sha256: str = Field(pattern=SHA256_PATTERN, description="SHA-256 of the name and args, as the device wrote them.")
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="What the device read beside the mutation: lifecycle images, signal payloads.")
    audit: list[AuditRecord] = Field(default_factory=list, max_length=MAX_AUDIT_PER_MUTATION,
                                     description="The audit entries written with the mutation; the plant's other "
                                                 "devices receive them in their pulls.")


class PushRequest(_Message):
    """A batch of mutations, in sequence order."""

    protocol_version: int = Field(default=PROTOCOL_VERSION, ge=1)
    schema_version: str | None = Field(default=None, max_length=40)
    client_id: str = Field(pattern=ID_PATTERN)
    client_kind: Literal["kiosk", "hub"] = "kiosk"
    app_version: str | None = Field(default=None, max_length=40)
    client_hlc: str | None = Field(default=None, pattern=HLC_PATTERN)
    client_wall_ms: int | None = Field(default=None, ge=0, le=MAX_SEQ)
    mutations: list[WireMutation] = Field(max_length=MAX_PUSH_MUTATIONS)


class EntityState(_Message):
    """A record's merged state on the server."""

    entity: str
    entity_id: str
    state: dict[str, Any]


class MutationResult(_Message):
    """What became of one pushed mutation."""

    seq: int
    status: Literal["applied", "duplicate", "rejected"]
    server_seq: int | None = None
    reason: str | None = Field(default=None, description="Why it was rejected (a code), or a note on an applied one.")
    detail: str | None = None
    server_state: list[EntityState] | None = Field(default=None, description="For a rejection: the records as they stand.")


class PushResponse(_Message):
    """Sent only after the batch is committed."""

    last_processed_seq: int
    server_epoch: str
    server_hlc: str
    server_wall_ms: int
    results: list[MutationResult]
    expected_seq: int | None = Field(default=None, description="Set when a gap stopped the batch: the seq the server needs next.")


class ChangeOut(_Message):
    """One entry of the pull log."""

    server_seq: int
    entity: str
    entity_id: str
    state: dict[str, Any]
    origin_client_id: str | None = None
    origin_seq: int | None = None


class PullResponse(_Message):
    """A page of changes after the cursor, in the device's scopes."""

    changes: list[ChangeOut]
    next_cursor: int
    has_more: bool
    last_processed_seq: int
    server_epoch: str
    server_hlc: str
    server_wall_ms: int


class ResetResponse(_Message):
    """410: the device must resync from the start (its outbox is kept)."""

    reset: Literal["epoch_changed", "cursor_ahead", "cursor_below_tombstone_horizon"]
    server_epoch: str


class ErrorResponse(_Message):
    """Every error answer: a stable code and words for a person."""

    code: str
    detail: str
    expected_seq: int | None = None


class SignalsRequest(_Message):
    """Signals in the ingest contract (design.md §4), from an AI system."""

    signals: list[dict[str, Any]] = Field(max_length=MAX_SIGNALS)


class SignalResult(_Message):
    """What became of one posted signal."""

    index: int
    status: Literal["added", "duplicate", "rejected"]
    signal_id: str | None = None
    field: str | None = None
    reason: str | None = None


class SignalsResponse(_Message):
    """Counts and per-row results, in request order."""

    added: int
    duplicates: int
    rejected: int
    results: list[SignalResult]


class HealthResponse(_Message):
    status: Literal["ok"]
    version: str
    database: str
    server_epoch: str


class ClientStatus(_Message):
    client_id: str
    kind: str
    last_seen_at: datetime
    last_processed_seq: int
    last_pull_cursor: int
    rejections: int


class StatusResponse(_Message):
    plant_id: str
    server_epoch: str
    global_version: int
    clients: list[ClientStatus]


def iso(when: datetime) -> str:
    """A time as merge states hold it: ISO 8601 in UTC."""
    return when.astimezone(timezone.utc).isoformat()


def mutation_of(wire: WireMutation, *, origin: str, stamp: str | None = None) -> Mutation:
    """The mutation as the merge rules take it, made the same way on the server and on the
    device (so both derive identical changes); ``stamp`` replaces a clamped clock."""
    return Mutation(name=wire.name, entity=wire.entity, entity_id=wire.entity_id, args=wire.args, hlc=stamp or wire.hlc,
                    origin=origin, actor=wire.actor, created_at=iso(wire.created_at), context=wire.context)
