"""The tables of a tiermeet database (kiosk, plant hub or central).

Ids are UUIDv7 made by the client that created the record, so records made offline on
different kiosks never collide and keys arrive in time order (cheap index inserts).
Signal payload columns are written once at ingest and never updated; lifecycle columns
change only through the services, which write an audit entry and an outbox mutation in
the same transaction. The audit log is append-only: triggers refuse UPDATE and DELETE.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from tiermeet.store.queries import ACTIVE_SQL, SHELVED_SQL
from tiermeet.store.types import UTCDateTime


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw: Any) -> Any:
    # none_as_null: a missing value is SQL NULL, not the JSON text 'null'.
    return Field(sa_type=JSON(none_as_null=True), **kw)


class Person(SQLModel, table=True):
    """Someone who signs in, decides and owns actions; reference data from the config."""

    id: str = Field(primary_key=True)
    name: str
    badge: str = Field(unique=True)
    role: str
    scope: str
    active: bool = True


class Signal(SQLModel, table=True):
    """One item on a tier board: an immutable AI payload plus its lifecycle at a tier."""

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_signal_source_external_id"),
        Index("ix_signal_board_line", "tier", "line", "deadline", "severity_rank", "id", sqlite_where=text(ACTIVE_SQL), postgresql_where=text(ACTIVE_SQL)),
        Index("ix_signal_board_area", "tier", "area", "deadline", "severity_rank", "id", sqlite_where=text(ACTIVE_SQL), postgresql_where=text(ACTIVE_SQL)),
        Index("ix_signal_shelved", "shelved_until", sqlite_where=text(SHELVED_SQL), postgresql_where=text(SHELVED_SQL)),
        # Migration 0005 also orders signals by the time to their first acknowledgement and
        # decision (ix_signal_ack_time, ix_signal_decide_time: partial expression indexes,
        # which SQLAlchemy cannot declare portably; a batch migration of this table must
        # create them again).
    )

    id: uuid.UUID = Field(primary_key=True)
    # Payload: written once at ingest.
    external_id: str
    source: str
    model_version: str | None = None
    kind: str = "anomaly"
    detected_at: datetime = _when()
    ingested_at: datetime = _when()
    area: str
    line: str | None = None
    asset: str | None = None
    category: str
    severity: str
    severity_rank: int
    confidence: float | None = None
    title: str
    detail: str | None = None
    suggested_action: str | None = None
    evidence_url: str | None = None
    extra: dict | None = _json(default=None)
    # Lifecycle: changed only by the services.
    status: str = "open"
    status_epoch: int = 0
    tier: int
    tier_entered_at: datetime = _when()
    deadline: datetime = _when()
    autonomy: str
    policy_rule: str
    policy_version: str
    acknowledged_at: datetime | None = _when(default=None)
    acknowledged_by: str | None = None
    shelved_until: datetime | None = _when(default=None)
    disposition: str | None = None
    resolved_at: datetime | None = _when(default=None)
    outcome: dict | None = _json(default=None)
    updated_at: datetime = _when()
    updated_hlc: str
    # Governance facts, kept on the signal so the report aggregates without joins.
    first_deadline: datetime | None = _when(default=None, description="Deadline of the first window (start tier).")
    first_acknowledged_at: datetime | None = _when(default=None)
    first_decided_at: datetime | None = _when(default=None, description="First decision by a person.")
    flagged_at: datetime | None = _when(default=None, description="Window breached at the top tier (the sweep).")


class Meeting(SQLModel, table=True):
    """One run of a tier meeting."""

    __table_args__ = (Index("ix_meeting_tier_scope_started", "tier", "scope", "started_at"),)

    id: uuid.UUID = Field(primary_key=True)
    tier: int
    scope: str
    facilitator_id: str = Field(foreign_key="person.id")
    started_at: datetime = _when()
    ended_at: datetime | None = _when(default=None)
    timebox_minutes: int
    notes: str | None = None


class MeetingAttendance(SQLModel, table=True):
    """Who attended a meeting; keyed by (meeting, person) so concurrent adds merge."""

    __tablename__ = "meeting_attendance"

    meeting_id: uuid.UUID = Field(foreign_key="meeting.id", primary_key=True)
    person_id: str = Field(foreign_key="person.id", primary_key=True)
    present: bool = True
    joined_at: datetime = _when()


class Decision(SQLModel, table=True):
    """What was decided on a signal: immutable, never overwritten."""

    # The governance report counts decisions by model, maker, kind and disposition: it
    # reads them in this index's order, without sorting and without the signals.
    __table_args__ = (Index("ix_decision_report", "source", "decided_by", "kind", "disposition"),)

    id: uuid.UUID = Field(primary_key=True)
    signal_id: uuid.UUID = Field(foreign_key="signal.id", index=True)
    source: str | None = Field(default=None, description="The signal's source (model), copied: immutable on both. "
                                                         "Filled in from the signal by a trigger when an insert leaves it out.")
    kind: str
    rationale: str
    disposition: str | None = None
    shelved_until: datetime | None = _when(default=None)
    decided_by: str = Field(description="A person id, or ai:<source> for an autonomous decision.")
    decided_at: datetime = _when()
    tier: int
    meeting_id: uuid.UUID | None = Field(default=None, foreign_key="meeting.id", index=True)
    policy_version: str
    ai_snapshot: dict = _json(description="The signal's AI output as it was when decided.")
    supersedes: uuid.UUID | None = Field(default=None, foreign_key="decision.id")
    hlc: str


class Action(SQLModel, table=True):
    """Follow-up work with one owner and a due time."""

    __table_args__ = (Index("ix_action_owner_status_due", "owner_id", "status", "due_at"),)

    id: uuid.UUID = Field(primary_key=True)
    signal_id: uuid.UUID | None = Field(default=None, foreign_key="signal.id", index=True)
    decision_id: uuid.UUID | None = Field(default=None, foreign_key="decision.id")
    title: str
    owner_id: str = Field(foreign_key="person.id")
    due_at: datetime = _when()
    status: str = "open"
    status_epoch: int = 0
    created_by: str
    created_at: datetime = _when()
    started_at: datetime | None = _when(default=None)
    done_at: datetime | None = _when(default=None)
    verified_at: datetime | None = _when(default=None)
    updated_at: datetime = _when()
    updated_hlc: str


class Escalation(SQLModel, table=True):
    """A signal moving up a tier, with the context packet of what the lower tier saw and did."""

    __table_args__ = (Index("ix_escalation_to_tier_raised", "to_tier", "raised_at"),)

    id: uuid.UUID = Field(primary_key=True)
    signal_id: uuid.UUID = Field(foreign_key="signal.id", index=True)
    from_tier: int
    to_tier: int
    reason: str
    automatic: bool = False
    raised_by: str
    raised_at: datetime = _when()
    context: dict = _json()
    hlc: str


class Comment(SQLModel, table=True):
    """A remark on a signal or an action; append-only."""

    __table_args__ = (Index("ix_comment_target", "target", "target_id", "created_at"),)

    id: uuid.UUID = Field(primary_key=True)
    target: str
    target_id: uuid.UUID
    author_id: str = Field(foreign_key="person.id")
    body: str
    created_at: datetime = _when()
    hlc: str


class AuditEntry(SQLModel, table=True):
    """One change, who made it, where and when; never updated or deleted.

    Entries travel to the other replicas with the outbox mutation named by ``mutation_id``
    (written in the same transaction); an entry pulled from another device has none."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id", "hlc"),)

    id: uuid.UUID = Field(primary_key=True)
    at: datetime = _when()
    actor: str
    device: str
    entity: str
    entity_id: str
    op: str
    before: dict | None = _json(default=None)
    after: dict | None = _json(default=None)
    hlc: str
    mutation_id: uuid.UUID | None = Field(default=None, index=True)


class OutboxMutation(SQLModel, table=True):
    """A named mutation waiting to be pushed to the server, written with the change it describes."""

    __tablename__ = "outbox"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    mutation_id: uuid.UUID = Field(unique=True)
    name: str
    entity: str
    entity_id: str
    args: dict = _json()
    hlc: str
    actor: str
    created_at: datetime = _when()
    payload_sha256: str
    attempts: int = 0
    last_error: str | None = None


class SyncState(SQLModel, table=True):
    """Small key/value facts about this database as a sync client (client id, next seq, HLC)."""

    __tablename__ = "sync_state"

    key: str = Field(primary_key=True)
    value: str




class ArchivedMutation(SQLModel, table=True):
    """A mutation the server acknowledged, kept for a while so it can be pushed again if
    the server is restored from an older backup (sync-protocol §2.2, §2.5)."""

    __tablename__ = "outbox_archive"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    mutation_id: uuid.UUID = Field(unique=True)
    name: str
    entity: str
    entity_id: str
    args: dict = _json()
    hlc: str
    actor: str
    created_at: datetime = _when()
    payload_sha256: str
    acked_at: datetime = _when(index=True)


class Rejection(SQLModel, table=True):
    """A change the server refused for good; shown to the people who made it, never dropped."""

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    mutation_id: uuid.UUID = Field(unique=True)
    name: str
    entity: str
    entity_id: str
    actor: str
    reason_code: str
    detail: str
    server_state: dict | None = _json(default=None)
    rejected_at: datetime = _when()
    seen_at: datetime | None = _when(default=None)


class DecisionReview(SQLModel, table=True):
    """A person confirming or overturning a decision an autonomous model made alone.
    Kept apart from the decision, which is never changed."""

    __tablename__ = "decision_review"

    decision_id: uuid.UUID = Field(foreign_key="decision.id", primary_key=True)
    outcome: str = Field(description="confirmed or overturned")
    reviewed_by: str = Field(foreign_key="person.id")
    reviewed_at: datetime = _when()
    note: str = ""
    meeting_id: uuid.UUID | None = Field(default=None, foreign_key="meeting.id")
    hlc: str


class ModelSuspension(SQLModel, table=True):
    """The kill switch: a model's autonomy suspended (its signals need sign-off) until resumed."""

    __tablename__ = "model_suspension"
    __table_args__ = (Index("ix_model_suspension_source", "source", "resumed_at"),)

    id: uuid.UUID = Field(primary_key=True)
    source: str
    suspended_by: str = Field(foreign_key="person.id")
    suspended_at: datetime = _when()
    reason: str
    resumed_by: str | None = Field(default=None, foreign_key="person.id")
    resumed_at: datetime | None = _when(default=None)
    resume_reason: str | None = None
    hlc: str
