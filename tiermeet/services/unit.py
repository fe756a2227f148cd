"""One unit of work: a write transaction that records what it changed, twice.

Every change a service makes goes through ``Tx.record``, which appends an audit entry
(who, where, when, before/after) and a named mutation to the sync outbox with the next
per-device sequence number and a hybrid-logical-clock stamp. They share the transaction
with the change itself, so after a crash either all three are there or none is.
"""

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Engine, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from tiermeet.domain import hlc
from tiermeet.domain.clock import Clock
from tiermeet.services.context import Device
from tiermeet.services.lookup import resolve_actor
from tiermeet.store.engine import write_session
from tiermeet.store.models import AuditEntry, OutboxMutation, SyncState

STATE_KEYS = ("client_id", "next_seq", "hlc")


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: unique without coordination, and in creation-time order."""
    return uuid7()


def jsonable(value: Any) -> Any:
    """``value`` with UUIDs, datetimes and enums turned into JSON-ready text."""
    return to_jsonable_python(value)


def payload_sha256(name: str, args: Any) -> str:
    """A stable hash of a mutation's meaning, so the server can spot a reused seq."""
    text = json.dumps({"name": name, "args": args}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Tx:
    """A write transaction in progress, with the actor and the moment it acts at."""

    def __init__(self, session: Session, *, actor: str, role: str | None, device: Device, now: datetime, wall_ms: int) -> None:
        self.session = session
        self.actor = actor
        self.role = role
        self.device = device
        self.now = now
        self._wall_ms = wall_ms
        state = dict(session.execute(select(SyncState.key, SyncState.value).where(SyncState.key.in_(STATE_KEYS))).all())
        self.client_id = state.get("client_id") or str(new_id())
        self._next_seq = int(state.get("next_seq", "1"))
        self._clock = hlc.Timestamp.unpack(state["hlc"]) if "hlc" in state else hlc.ZERO
        self._dirty = "client_id" not in state

    def stamp(self) -> str:
        """The next HLC timestamp of this device, packed."""
        self._clock = hlc.tick(self._clock, self._wall_ms)
        self._dirty = True
        return self._clock.pack()

    def record(
        self,
        *,
        entity: str,
        entity_id: Any,
        op: str,
        mutation: str,
        args: dict,
        before: dict | None = None,
        after: dict | None = None,
        stamp: str | None = None,
    ) -> str:
        """Append the audit entry and the outbox mutation for one change; returns its HLC.

        ``stamp`` is the HLC the change's own rows already carry (from ``Tx.stamp``)."""
        stamp = stamp or self.stamp()
        entity_key = str(entity_id)
        self.session.add(
            AuditEntry(
                id=new_id(), at=self.now, actor=self.actor, device=self.device.name, entity=entity,
                entity_id=entity_key, op=op, before=jsonable(before), after=jsonable(after), hlc=stamp,
            )
        )
        args = jsonable(args)
        self.session.add(
            OutboxMutation(
                seq=self._next_seq, mutation_id=new_id(), name=mutation, entity=entity, entity_id=entity_key,
                args=args, hlc=stamp, actor=self.actor, created_at=self.now, payload_sha256=payload_sha256(mutation, args),
            )
        )
        self._next_seq += 1
        return stamp

    def audit_only(self, *, entity: str, entity_id: Any, op: str, before: dict | None = None, after: dict | None = None) -> None:
        """An audit entry without a sync mutation, for local-only facts (config reference data)."""
        self.session.add(
            AuditEntry(
                id=new_id(), at=self.now, actor=self.actor, device=self.device.name, entity=entity,
                entity_id=str(entity_id), op=op, before=jsonable(before), after=jsonable(after), hlc=self.stamp(),
            )
        )

    def save_state(self) -> None:
        """Persist the sequence counter and clock with the transaction they were used in."""
        if not self._dirty:
            return
        rows = [{"key": "client_id", "value": self.client_id}, {"key": "next_seq", "value": str(self._next_seq)},
                {"key": "hlc", "value": self._clock.pack()}]
        upsert = sqlite_insert(SyncState).values(rows)
        self.session.execute(upsert.on_conflict_do_update(index_elements=["key"], set_={"value": upsert.excluded.value}))


@contextmanager
def unit_of_work(engine: Engine, clock: Clock, device: Device, who: str) -> Iterator[Tx]:
    """A BEGIN IMMEDIATE transaction as a Tx acting for ``who`` (a person's id or badge, or
    a system actor); commits on success, leaves nothing on error."""
    now = clock.now()
    with write_session(engine) as session:
        actor, role = resolve_actor(session, who)
        tx = Tx(session, actor=actor, role=role, device=device, now=now, wall_ms=int(now.timestamp() * 1000))
        yield tx
        tx.save_state()
