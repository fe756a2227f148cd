"""One unit of work: a write transaction that records what it changed, twice.

Every change a service makes goes through ``Tx.record``, which appends an audit entry
(who, where, when, before/after) and a named mutation to the sync outbox with the next
per-device sequence number and a hybrid-logical-clock stamp. They share the transaction
with the change itself, so after a crash either all three are there or none is.
``Tx.record_many`` does the same for thousands of changes of one kind at once (the sweep),
with one executemany per table (``insert_many``) instead of one ORM object per row.

Each audit entry names the mutation that carries it to the other replicas. Entries for
facts that sync nothing else (a model suspended, a review) ride on another mutation of
their transaction, or on one ``audit.append`` written when it ends. Changes of the
config's reference data, which every device loads for itself, stay local.
"""

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import JSON, Engine, Table, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from tiermeet.domain import hlc
from tiermeet.domain.clock import Clock
from tiermeet.services.context import Device
from tiermeet.services.lookup import resolve_actor
from tiermeet.store.engine import write_session
from tiermeet.store.models import AuditEntry, OutboxMutation, SyncState
from tiermeet.sync import jsonutil

STATE_KEYS = ("client_id", "next_seq", "hlc")


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: unique without coordination, and in creation-time order."""
    return uuid7()


def jsonable(value: Any) -> Any:
    """``value`` with UUIDs, datetimes and enums turned into JSON-ready text."""
    return to_jsonable_python(value)


def payload_sha256(name: str, args: Any) -> str:
    """A stable hash of a mutation's meaning, so the server can spot a reused seq."""
    return hashlib.sha256(jsonutil.canonical({"name": name, "args": args})).hexdigest()


@dataclass(frozen=True)
class Change:
    """One entity's change in a ``Tx.record_many`` call: its mutation's args, the audit
    before/after images, and the HLC its own rows already carry (None: a fresh one)."""

    entity_id: Any
    args: dict | None = None
    before: dict | None = None
    after: dict | None = None
    stamp: str | None = None


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
        #: Audit entries without a mutation of their own ride on the transaction's last
        #: mutation so far; before there is one, on the id reserved here for the next one
        #: (or, if none comes, for an ``audit.append``), with their ids for its args.
        self._last_mutation: uuid.UUID | None = None
        self._carrier: uuid.UUID | None = None
        self._carried: list[str] = []

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
        outbox = self._outbox_row(entity, entity_key, mutation, args, stamp)
        self.session.add(AuditEntry(**self._audit_row(entity, entity_key, op, before, after, stamp, outbox["mutation_id"])))
        self.session.add(OutboxMutation(**outbox))
        return stamp

    def audit_only(self, *, entity: str, entity_id: Any, op: str, before: dict | None = None, after: dict | None = None) -> None:
        """An audit entry for a fact that syncs nothing else (a model suspended, a review):
        another mutation of the transaction carries it, or an ``audit.append``."""
        self.session.add(AuditEntry(**self._audit_row(entity, str(entity_id), op, before, after, self.stamp())))

    def audit_local(self, *, entity: str, entity_id: Any, op: str, before: dict | None = None, after: dict | None = None) -> None:
        """An audit entry that stays on this device: a change of the config's reference data,
        which every device loads for itself."""
        self.session.add(AuditEntry(**self._audit_row(entity, str(entity_id), op, before, after, self.stamp(), travels=False)))

    def record_many(self, *, entity: str, op: str, mutation: str | None, changes: Sequence[Change]) -> list[str]:
        """``record`` for many changes of one kind: each still gets its own audit entry and,
        unless ``mutation`` is None (its entries then travel as in ``audit_only``), its own
        outbox mutation with the next sequence number — but each table is written with one
        executemany, not an ORM object per row, so thousands cost milliseconds. Returns each
        change's HLC, in order."""
        audits, mutations, stamps = [], [], []
        for change in changes:
            stamp = change.stamp or self.stamp()
            entity_key = str(change.entity_id)
            carrier = None
            if mutation is not None:
                mutations.append(self._outbox_row(entity, entity_key, mutation, change.args or {}, stamp))
                carrier = mutations[-1]["mutation_id"]
            audits.append(self._audit_row(entity, entity_key, op, change.before, change.after, stamp, carrier))
            stamps.append(stamp)
        insert_many(self.session, AuditEntry.__table__, audits)
        insert_many(self.session, OutboxMutation.__table__, mutations)
        return stamps

    def _audit_row(self, entity: str, entity_key: str, op: str, before: dict | None, after: dict | None, stamp: str,
                   mutation_id: uuid.UUID | None = None, *, travels: bool = True) -> dict:
        """An audit entry, carried by ``mutation_id``, else (unless it stays here) by the
        mutation ``_carrier_for`` names."""
        entry_id = new_id()
        if mutation_id is None and travels:
            mutation_id = self._carrier_for(entry_id)
        return {"id": entry_id, "at": self.now, "actor": self.actor, "device": self.device.name, "entity": entity,
                "entity_id": entity_key, "op": op, "before": jsonable(before), "after": jsonable(after), "hlc": stamp,
                "mutation_id": mutation_id}

    def _carrier_for(self, entry_id: uuid.UUID) -> uuid.UUID:
        """The mutation that carries an audit entry of no mutation of its own."""
        if self._last_mutation is not None:
            return self._last_mutation
        if self._carrier is None:
            self._carrier = new_id()
        self._carried.append(str(entry_id))
        return self._carrier

    def _outbox_row(self, entity: str, entity_key: str, mutation: str, args: dict, stamp: str) -> dict:
        """The next outbox mutation; takes its sequence number, and the id that audit entries
        written before it reserved."""
        args = jsonable(args)
        mutation_id = self._carrier or new_id()
        row = {"seq": self._next_seq, "mutation_id": mutation_id, "name": mutation, "entity": entity,
               "entity_id": entity_key, "args": args, "hlc": stamp, "actor": self.actor, "created_at": self.now,
               "payload_sha256": payload_sha256(mutation, args), "attempts": 0, "last_error": None}
        self._next_seq += 1
        self._last_mutation, self._carrier, self._carried = mutation_id, None, []
        return row

    def save_state(self) -> None:
        """Write the ``audit.append`` mutation if audit entries still wait for a carrier, and
        persist the sequence counter and clock with the transaction they were used in."""
        if self._carrier is not None:
            carried = self._carried
            self.session.add(OutboxMutation(**self._outbox_row(
                "audit", carried[0], "audit.append", {"audit_ids": carried}, self.stamp())))
        if not self._dirty:
            return
        rows = [{"key": "client_id", "value": self.client_id}, {"key": "next_seq", "value": str(self._next_seq)},
                {"key": "hlc", "value": self._clock.pack()}]
        upsert = sqlite_insert(SyncState).values(rows)
        self.session.execute(upsert.on_conflict_do_update(index_elements=["key"], set_={"value": upsert.excluded.value}))



def insert_many(session: Session, table: Table, rows: Sequence[dict]) -> None:
    """Insert ``rows`` (each a dict of every column of ``table``) with one executemany.

    Each value goes through its column type's own bind processor, as SQLAlchemy would do
    it, but straight to the driver: SQLAlchemy's per-row parameter bookkeeping costs more
    than SQLite's own work when a statement carries thousands of rows. JSON values are
    written by pydantic-core (compact, and it takes UUIDs and datetimes as ``jsonable``
    does), several times faster than the standard library."""
    if rows:
        columns, processors = _processors(session, table, rows[0])
        sql = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
        session.connection().exec_driver_sql(sql, _converted(rows, processors))


def update_many(session: Session, table: Table, rows: Sequence[dict], *, key: str = "id") -> None:
    """``UPDATE table SET … WHERE key = ?`` once per row with one executemany; every row
    sets the same columns (those of the first row other than ``key``), converted as in
    ``insert_many``."""
    if rows:
        columns, processors = _processors(session, table, rows[0], key=key)
        sql = f'UPDATE "{table.name}" SET {", ".join(f"{c} = ?" for c in columns[:-1])} WHERE {columns[-1]} = ?'
        session.connection().exec_driver_sql(sql, _converted(rows, processors))


def _processors(session: Session, table: Table, row: dict, *, key: str | None = None) -> tuple[list[str], list]:
    """The columns ``row`` names (``key`` last) and, for each, its name and the column
    type's bind processor (None when the driver takes the value as it is)."""
    dialect = session.get_bind().dialect
    names = [name for name in row if name != key] + ([key] if key else [])
    processors = [(name, _json_text if isinstance(table.c[name].type, JSON)
                   else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    return [f'"{name}"' for name in names], processors


def _json_text(value: Any) -> str | None:
    return None if value is None else to_json(value).decode()


def _converted(rows: Sequence[dict], processors: list) -> list[tuple]:
    """The rows as tuples of stored values, converted column by column."""
    columns = [[row[name] for row in rows] if process is None else [process(row[name]) for row in rows]
               for name, process in processors]
    return list(zip(*columns))

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
