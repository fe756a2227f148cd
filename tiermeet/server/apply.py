"""What the server does with a request: apply a push, serve a pull page, take in signals.

Push (sync-protocol §2.4): one transaction per request. Mutations are taken in ``seq``
order; one already processed is answered from ``processed_mutations`` (a different
payload under a used seq is refused as ``seq_reused``); a gap stops the batch. Each new
mutation is turned into record changes (``sync.mutations``), checked (the record exists,
belongs to the plant, a reopen names the current epoch, a write-once record is not
rewritten) and merged (``sync.merge``); every record it changes gets a new ``server_seq``
in the ``changes`` log. A mutation that can never apply is recorded as rejected and still
advances the device's seq. The answer is sent only after the commit.

Pull (§2.5): the changes after a cursor that the plant may see — its own records, and for
an enterprise plant the signals escalated to tier 4 (with everything hanging off them).
"""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from uuid_utils.compat import uuid7

from tiermeet.domain import hlc
from tiermeet.server.db import lock_version, read_meta, save_version, transaction, write_transaction
from tiermeet.server.tokens import PlantAuth
from tiermeet.store.types import to_db_text
from tiermeet.store.models_sync import Change, ProcessedMutation, SignalKey, SyncClient, SyncEntity
from tiermeet.sync import jsonutil, merge
from tiermeet.sync.mutations import Delta, Mutation, MutationError, deltas_of, signal_ingest_state
from tiermeet.sync.protocol import AUDIT_ENTITY, PROTOCOL_VERSION, AuditRecord, PushRequest, iso, mutation_of

ENT = SyncEntity.__table__
CHG = Change.__table__
PM = ProcessedMutation.__table__
CL = SyncClient.__table__
SK = SignalKey.__table__
_CHUNK = 500
#: The columns of a row of the ``changes`` log, in the order ``_Work.put`` makes them.
_CHANGE_COLUMNS = ("server_seq", "plant_id", "shared", "entity", "entity_id", "state", "origin_client_id", "origin_seq",
                   "hlc", "committed_at")
SERVER_ORIGIN = "server"
#: Most audit entries one change of the pull log holds (a page is sized in changes).
AUDIT_PER_CHANGE = 200
#: Who the audit log names for signals AI systems post to the server, and for the
#: server's refusal of a pushed change.
API_ACTOR = "system:api"
SERVER_ACTOR = "system:server"
#: Groups that, once a record has them, make it "created".
_CREATED = {"signal": "payload"}


class HttpError(Exception):
    """A request the server answers with an error status."""

    def __init__(self, status: int, code: str, detail: str, *, expected_seq: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.expected_seq = expected_seq
        self.headers = headers


class Reset(Exception):
    """The device must resync from the start (410)."""

    def __init__(self, reason: str, server_epoch: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.server_epoch = server_epoch


class Reject(Exception):
    """A mutation that can never apply; recorded as rejected with ``code``."""

    def __init__(self, code: str, detail: str, records: Iterable["_Rec"] = ()) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.records = list(records)


@dataclass
class _Rec:
    entity: str
    entity_id: str
    plant_id: str
    parent_id: str | None
    shared: bool
    state: dict | None
    new: bool
    dirty: bool = False
    server_seq: int = 0


@dataclass
class Hooks:
    """Test-only fault points around the commit of a push."""

    before_commit: Callable[[], None] | None = None
    after_commit: Callable[[], None] | None = None


@dataclass
class _Work:
    """One request's reads and writes, cached so each record is read and written once."""

    conn: Connection
    plant: PlantAuth
    now: datetime
    version: int
    clock: hlc.Timestamp
    cache: dict[tuple[str, str], _Rec | None] = field(default_factory=dict)
    changes: list[tuple] = field(default_factory=list)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    new_keys: list[tuple] = field(default_factory=list)
    _copy: Any = None

    def __post_init__(self) -> None:
        self.now_db = to_db_text(self.now) if self.conn.dialect.name == "sqlite" else self.now

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _recs(rows) -> list[_Rec]:
        loads = jsonutil.loads
        return [_Rec(entity, entity_id, plant_id, parent_id, bool(shared), loads(state), False, False, seq)
                for entity, entity_id, plant_id, parent_id, shared, state, seq in rows]

    def _rows(self, where) -> list[_Rec]:
        """Records with their current state: the state of each one's latest change, looked up
        by its key for each record (a join let PostgreSQL plan, on young statistics, a scan
        of the whole change log for every batch)."""
        state = select(CHG.c.state).where(CHG.c.server_seq == ENT.c.server_seq).scalar_subquery()
        return self._recs(self.conn.execute(select(ENT.c.entity, ENT.c.entity_id, ENT.c.plant_id, ENT.c.parent_id,
                                                   ENT.c.shared, state, ENT.c.server_seq).where(where)))

    def _records(self, entity: str, ids: list[str]) -> list[_Rec]:
        """The stored records of one kind among ``ids``. On PostgreSQL, one index probe per
        id whatever the statistics say: given the ids as an array filter, the plan prepared
        while the tables were young reads every record of the kind and compares it with
        each id, a cost that grows with the table."""
        if self.conn.dialect.name != "postgresql":
            return self._rows(and_(ENT.c.entity == entity, ENT.c.entity_id.in_(ids)))
        return self._recs(self.conn.exec_driver_sql(
            "SELECT e.entity, e.entity_id, e.plant_id, e.parent_id, e.shared, "
            "(SELECT c.state FROM changes c WHERE c.server_seq = e.server_seq), e.server_seq "
            "FROM json_array_elements_text(%(ids)s::json) AS v(entity_id) CROSS JOIN LATERAL (SELECT * FROM sync_entities s "
            "WHERE s.entity = %(entity)s AND s.entity_id = v.entity_id LIMIT 1) AS e", {"ids": _dumps(ids), "entity": entity}))

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        by_entity: dict[str, list[str]] = {}
        for entity, entity_id in keys:
            if (entity, entity_id) not in self.cache:
                by_entity.setdefault(entity, []).append(entity_id)
        for entity, ids in by_entity.items():
            ids = list(dict.fromkeys(ids))
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                for rec in self._records(entity, chunk):
                    self.cache[(rec.entity, rec.entity_id)] = rec
                for entity_id in chunk:
                    self.cache.setdefault((entity, entity_id), None)

    def get(self, entity: str, entity_id: str) -> _Rec | None:
        k = (entity, entity_id)
        if k not in self.cache:
            self.prefetch([k])
        return self.cache[k]

    def children(self, entity: str, parent_id: str) -> list[_Rec]:
        found = {}
        for rec in self._rows(and_(ENT.c.parent_id == parent_id, ENT.c.entity == entity) if entity else ENT.c.parent_id == parent_id):
            k = (rec.entity, rec.entity_id)
            cached = self.cache.get(k)
            found[k] = cached if cached is not None else rec
            self.cache.setdefault(k, rec)
        for k, rec in self.cache.items():
            if rec is not None and rec.parent_id == parent_id and (not entity or rec.entity == entity):
                found[k] = rec
        return list(found.values())

    def signal_keys(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        missing = [k for k in wanted if k not in self.keys]
        by_source: dict[str, list[str]] = {}
        for source, external_id in missing:
            by_source.setdefault(source, []).append(external_id)
        for source, ids in by_source.items():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                if self.conn.dialect.name == "postgresql":
                    # One index probe per key, whatever the statistics say: given the keys as
                    # an array filter, the planner reads every key of the source (a sequential
                    # scan, or a hash of them all) until the table is very large.
                    found = self.conn.exec_driver_sql(
                        "SELECT v.external_id, k.signal_id FROM json_array_elements_text(%(ids)s::json) AS v(external_id) "
                        "CROSS JOIN LATERAL (SELECT signal_id FROM signal_keys WHERE plant_id = %(plant)s "
                        "AND source = %(source)s AND external_id = v.external_id LIMIT 1) AS k",
                        {"ids": _dumps(chunk), "plant": self.plant.id, "source": source})
                else:
                    found = self.conn.execute(select(SK.c.external_id, SK.c.signal_id).where(
                        SK.c.plant_id == self.plant.id, SK.c.source == source, SK.c.external_id.in_(chunk)))
                for external_id, signal_id in found:
                    self.keys[(source, external_id)] = signal_id
        return {k: self.keys[k] for k in wanted if k in self.keys}

    def add_key(self, source: str, external_id: str, signal_id: str) -> None:
        self.keys[(source, external_id)] = signal_id
        self.new_keys.append((self.plant.id, source, external_id, signal_id))

    # -- writing -------------------------------------------------------------------------

    def put(self, rec: _Rec, state: dict, *, origin: str | None, origin_seq: int | None, stamp: str) -> int:
        rec.state = state
        rec.dirty = True
        rec.server_seq = self.log(rec.entity, rec.entity_id, _dumps(state), plant_id=rec.plant_id, shared=rec.shared,
                                  origin=origin, origin_seq=origin_seq, stamp=stamp)
        self.cache[(rec.entity, rec.entity_id)] = rec
        return rec.server_seq

    def log(self, entity: str, entity_id: str, state: str, *, plant_id: str, shared: bool, origin: str | None,
            origin_seq: int | None, stamp: str) -> int:
        """Append one change (``state`` as JSON text) to the pull log; returns its ``server_seq``."""
        self.version += 1
        change = (self.version, plant_id, shared, entity, entity_id, state, origin, origin_seq, stamp, self.now_db)
        if self._copy is not None:
            self._copy.write_row(change)
        else:
            self.changes.append(change)
        return self.version

    def log_audit(self, entries: list[AuditRecord], *, origin: str | None, origin_seq: int | None) -> None:
        """Audit entries for the plant's devices to pull, in changes of up to
        ``AUDIT_PER_CHANGE`` (they are append-only and keyed by their own ids, so no record
        state merges them)."""
        for i in range(0, len(entries), AUDIT_PER_CHANGE):
            chunk = entries[i:i + AUDIT_PER_CHANGE]
            state = '{"entries":[' + ",".join(entry.model_dump_json() for entry in chunk) + "]}"
            self.log(AUDIT_ENTITY, str(chunk[0].id), state, plant_id=self.plant.id, shared=False,
                     origin=origin, origin_seq=origin_seq, stamp=self.clock.pack())

    @contextmanager
    def streaming_changes(self) -> Iterator[None]:
        """Within the block, send each change to the database as it is made instead of at
        ``flush``. On PostgreSQL one COPY stays open for the block, and the server stores the
        first changes while the next are still being built; the block must therefore not
        run other statements. On SQLite the changes wait for ``flush`` as usual."""
        if self.conn.dialect.name != "postgresql":
            yield
            return
        with self.conn.connection.driver_connection.cursor() as cursor, cursor.copy(_copy_sql("changes", _CHANGE_COLUMNS)) as copy:
            self._copy = copy
            try:
                yield
            finally:
                self._copy = None

    def flush(self) -> None:
        new = [r for r in self.cache.values() if r is not None and r.dirty and r.new]
        old = [r for r in self.cache.values() if r is not None and r.dirty and not r.new]
        if new:
            _insert_many(self.conn, "sync_entities", ("entity", "entity_id", "plant_id", "parent_id", "shared", "server_seq"),
                         [(r.entity, r.entity_id, r.plant_id, r.parent_id, r.shared, r.server_seq) for r in new])
        if old:
            _move_to_latest(self.conn, old)
        for r in new + old:
            r.new = r.dirty = False
        if self.new_keys:
            _insert_many(self.conn, "signal_keys", ("plant_id", "source", "external_id", "signal_id"), self.new_keys)
            self.new_keys = []
        if self.changes:
            _insert_many(self.conn, "changes", _CHANGE_COLUMNS, self.changes)
            self.changes = []

    # -- applying ------------------------------------------------------------------------

    def may_write(self, rec: _Rec) -> bool:
        return rec.plant_id == self.plant.id or (rec.shared and self.plant.enterprise)

    def apply(self, m: Mutation, deltas: list[Delta], *, origin: str | None, origin_seq: int | None) -> tuple[int | None, dict]:
        """Check then merge every delta of one mutation; raises Reject before changing anything."""
        plan = []
        made_here: set[tuple[str, str]] = set()
        for d in deltas:
            rec = self.get(d.entity, d.entity_id)
            parent = self.get(*d.parent) if d.parent else None
            if d.parent and parent is None and d.parent in made_here:
                made_here.add((d.entity, d.entity_id))
                plan.append((d, rec, None))
                continue
            made_here.add((d.entity, d.entity_id))
            if rec is not None and d.entity == "signal" and "payload" in d.state:
                continue  # ingested again under the same id (an idempotent re-ingest): nothing to do
            if d.parent and parent is None:
                raise Reject("unknown_record", f"{d.entity} {d.entity_id} refers to {d.parent[0]} {d.parent[1]}, "
                                               "which this server does not have")
            if d.must_exist and (rec is None or _CREATED.get(d.entity, "record") not in (rec.state or {})):
                raise Reject("unknown_record", f"this server has no {d.entity} {d.entity_id}")
            target = rec if rec is not None else parent
            if target is not None and not self.may_write(target):
                raise Reject("forbidden", f"{d.entity} {d.entity_id} belongs to another plant")
            if d.expect_epoch is not None:
                current = merge.signal_epoch(rec.state) if d.entity == "signal" else merge.action_epoch(rec.state)
                if current != d.expect_epoch:
                    raise Reject("stale_epoch", f"the {d.entity} was changed elsewhere first: it is in status epoch {current}, "
                                                f"the reopen was made in epoch {d.expect_epoch}", [rec])
            if rec is not None and rec.state is not None and _rewrites_once(d.entity, rec.state, d.state):
                raise Reject("immutable", f"{d.entity} {d.entity_id} is already recorded differently; "
                                          "it is never overwritten", [rec])
            plan.append((d, rec, parent))
        result: dict = {}
        first = None
        ingest = [(d, rec) for d, rec, _ in plan if d.entity == "signal" and "payload" in d.state]
        skip: set[str] = set()
        if ingest:
            payloads = {d.entity_id: merge.value(d.state, "payload") for d, _ in ingest}
            known = self.signal_keys([(p["source"], p["external_id"]) for p in payloads.values()])
            for signal_id, p in payloads.items():
                owner = known.get((p["source"], p["external_id"]))
                if owner is None:
                    self.add_key(p["source"], p["external_id"], signal_id)
                elif owner != signal_id:
                    skip.add(signal_id)
                    result.setdefault("duplicates", {})[signal_id] = owner
        for d, rec, parent in plan:
            if d.entity_id in skip and d.entity == "signal":
                continue
            if parent is None and d.parent:
                parent = self.get(*d.parent)
            if rec is None:
                parent_id = None
                if parent is not None:
                    parent_id = parent.entity_id if parent.entity in ("signal", "meeting") else (parent.parent_id or parent.entity_id)
                rec = _Rec(d.entity, d.entity_id, parent.plant_id if parent else self.plant.id, parent_id,
                           parent.shared if parent else False, None, True)
                self.cache[(d.entity, d.entity_id)] = rec
            state = merge.join(d.entity, rec.state, d.state)
            if state == rec.state:
                continue
            seq = self.put(rec, state, origin=origin, origin_seq=origin_seq, stamp=m.hlc)
            first = first or seq
            if d.entity == "decision":
                self._flag_siblings(rec, m.hlc, origin, origin_seq)
            elif d.entity == "signal" and not rec.shared and (merge.signal_tier(state) or 0) >= 4:
                self._share(rec, m.hlc, origin, origin_seq)
        return first, result

    def _flag_siblings(self, rec: _Rec, stamp: str, origin, origin_seq) -> None:
        decision = merge.project("decision", rec.state)
        if merge.sibling_key(decision) is None:
            return
        signal_id = str(decision["signal_id"])
        decisions = [merge.project("decision", r.state) for r in self.children("decision", signal_id) if r.state]
        for group, members in merge.sibling_groups(decisions).items():
            if rec.entity_id not in members:
                continue
            conflict_id = merge.conflict_id(group)
            current = self.get("conflict", conflict_id)
            if current is None:
                signal = self.get("signal", signal_id)
                current = _Rec("conflict", conflict_id, rec.plant_id, signal_id, signal.shared if signal else rec.shared, None, True)
                self.cache[("conflict", conflict_id)] = current
            state = merge.join("conflict", current.state, merge.conflict_state(group, members, stamp, SERVER_ORIGIN))
            if state != current.state:
                self.put(current, state, origin=origin, origin_seq=origin_seq, stamp=stamp)

    def _share(self, signal: _Rec, stamp: str, origin, origin_seq) -> None:
        """A signal reached tier 4: the enterprise sees it and everything hanging off it."""
        signal.shared = True
        self.put(signal, signal.state, origin=origin, origin_seq=origin_seq, stamp=stamp)
        for child in self.children("", signal.entity_id):
            if not child.shared and child.state is not None:
                child.shared = True
                self.put(child, child.state, origin=origin, origin_seq=origin_seq, stamp=stamp)


def _result(seq: int, status: str, server_seq: int | None = None, reason: str | None = None, detail: str | None = None,
            server_state: list[dict] | None = None) -> dict:
    """One ``MutationResult`` as plain JSON values: the server builds it from values it has
    checked itself, so validating it again as a model would only cost time."""
    return {"seq": seq, "status": status, "server_seq": server_seq, "reason": reason, "detail": detail,
            "server_state": server_state}


def _processed_with_ids(conn: Connection, ids: list[str]) -> Iterable:
    """Processed mutations with these ids. On PostgreSQL one index probe per id, as for
    records, with the ids as one JSON parameter: the statement is prepared once whatever
    their number, and lists of values travel as JSON throughout, since the driver builds an
    array parameter value by value in Python, several times slower."""
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(
            "SELECT p.mutation_id, p.status, p.reason, p.server_seq FROM json_array_elements_text(%s::json) AS v(id) "
            "CROSS JOIN LATERAL (SELECT * FROM processed_mutations WHERE mutation_id = v.id LIMIT 1) AS p", (_dumps(ids),))
    return conn.execute(select(PM.c.mutation_id, PM.c.status, PM.c.reason, PM.c.server_seq).where(PM.c.mutation_id.in_(ids)))


def _insert_many(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert prepared rows: the values are already what the driver takes (JSON as text,
    times as stored), so no per-row type processing is spent on them. PostgreSQL gets one
    COPY stream (one round trip, no statement per row); SQLite a plain executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(_copy_sql(table, columns)) as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.exec_driver_sql(f'INSERT INTO "{table}" ({_names(columns)}) VALUES ({", ".join("?" for _ in columns)})', rows)


def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    return f'COPY "{table}" ({_names(columns)}) FROM STDIN'


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _move_to_latest(conn: Connection, recs: list["_Rec"]) -> None:
    """Point records that were already stored at their new latest change (whose row holds
    the merged state): on PostgreSQL one UPDATE joined to the new values passed as arrays,
    on SQLite an executemany."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "UPDATE sync_entities AS e SET shared = v.shared, server_seq = v.server_seq "
            "FROM json_to_recordset(%s::json) AS v(entity text, entity_id text, shared boolean, server_seq bigint) "
            "WHERE e.entity = v.entity AND e.entity_id = v.entity_id",
            (_dumps([{"entity": r.entity, "entity_id": r.entity_id, "shared": r.shared, "server_seq": r.server_seq}
                     for r in recs]),))
        return
    conn.exec_driver_sql("UPDATE sync_entities SET shared = ?, server_seq = ? WHERE entity = ? AND entity_id = ?",
                         [(r.shared, r.server_seq, r.entity, r.entity_id) for r in recs])


def _dumps(state) -> str:
    return jsonutil.dumps(state)


#: Records whose second, different version is a conflict to refuse. (An attendance row
#: added on two kiosks at once merges: the earliest arrival is kept.)
_WRITE_ONCE = frozenset({"decision", "escalation", "comment", "action", "meeting"})


def _rewrites_once(entity: str, current: dict, change: dict) -> bool:
    if entity not in _WRITE_ONCE:
        return False
    rules = merge.RULES.get(entity, {})
    for group, reg in change.items():
        if rules.get(group) == merge.ONCE and group in current and current[group][1] != reg[1]:
            return True
    return False


# --------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------

def _is_lock_error(exc: Exception) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("55P03", "40001", "40P01")


def _lock_client(conn: Connection, req: PushRequest, plant: PlantAuth, now: datetime) -> int:
    query = select(CL.c.plant_id, CL.c.last_processed_seq).where(CL.c.client_id == req.client_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(nowait=True)
    try:
        row = conn.execute(query).first()
        if row is None:
            conn.execute(CL.insert().values(client_id=req.client_id, plant_id=plant.id, kind=req.client_kind,
                                            last_processed_seq=0, last_pull_cursor=0, last_seen_at=now,
                                            app_version=req.app_version, schema_version=req.schema_version))
            return 0
    except (OperationalError, IntegrityError) as exc:
        if isinstance(exc, IntegrityError) or _is_lock_error(exc):
            raise HttpError(409, "push_in_progress", "another push from this device is being applied; retry shortly",
                            headers={"Retry-After": "1"}) from None
        raise
    if row.plant_id != plant.id:
        raise HttpError(403, "wrong_plant", "this device is enrolled under another plant than the token's")
    return int(row.last_processed_seq)


def push(engine: Engine, plant: PlantAuth, req: PushRequest, *, now: datetime, hooks: Hooks | None = None) -> dict:
    """Apply one push request in one transaction; the answer (a ``PushResponse`` as plain
    JSON values) is built after the commit."""
    if req.protocol_version > PROTOCOL_VERSION:
        raise HttpError(400, "protocol_version", f"this server speaks sync protocol {PROTOCOL_VERSION}, not {req.protocol_version}")
    now_ms = int(now.timestamp() * 1000)
    client_id = req.client_id
    results: list[dict] = []
    expected = None
    with transaction(engine) as conn:
        last = _lock_client(conn, req, plant, now)
        version, epoch, clock = lock_version(conn)
        work = _Work(conn, plant, now, version, hlc.Timestamp.unpack(clock))
        seen_here: dict[int, str] = {}
        old = {m.seq for m in req.mutations if m.seq <= last}
        processed = {}
        if old:
            # A range of the primary key, not a list of seqs: the index is walked once, and no
            # plan can compare each of the device's mutations with every seq of the list.
            for row in conn.execute(select(PM.c.seq, PM.c.payload_sha256, PM.c.status, PM.c.reason, PM.c.server_seq)
                                    .where(PM.c.client_id == client_id, PM.c.seq.between(min(old), max(old)))):
                if row.seq in old:
                    processed[row.seq] = row
        fresh = [m for m in req.mutations if m.seq > last]
        by_mutation_id = {}
        ids = [m.mutation_id for m in fresh]
        for i in range(0, len(ids), _CHUNK):
            for row in _processed_with_ids(conn, ids[i:i + _CHUNK]):
                by_mutation_id[row.mutation_id] = row
        # Work out every delta first (pure), so the records they touch are read in a few queries.
        planned: dict[int, tuple[Mutation, list[Delta] | MutationError, bool]] = {}
        keys = []
        for m in fresh:
            remote = hlc.Timestamp.unpack(m.hlc)
            skew = remote.l > now_ms + hlc.MAX_DRIFT_MS
            work.clock = hlc.receive(work.clock, remote, now_ms)
            stamp = work.clock.pack() if skew else m.hlc
            mutation = mutation_of(m, origin=client_id, stamp=stamp)
            try:
                deltas: list[Delta] | MutationError = deltas_of(mutation)
                for d in deltas:
                    keys.append((d.entity, d.entity_id))
                    if d.parent:
                        keys.append(d.parent)
            except MutationError as exc:
                deltas = exc
            planned[m.seq] = (mutation, deltas, skew)
        work.prefetch(keys)
        rows = []
        # The audit entries of every mutation processed here, applied or rejected (each
        # happened on the device, and the audit log of every replica keeps it), and for a
        # rejected one the server's own entry saying so.
        audit: list[AuditRecord] = []
        for m in req.mutations:
            if m.seq <= last:
                record = processed.get(m.seq)
                sha = record.payload_sha256 if record is not None else seen_here.get(m.seq)
                if sha is not None and sha != m.payload_sha256:
                    raise HttpError(422, "seq_reused", f"seq {m.seq} was already used by a different change from this device; "
                                    "it lost local state and must renumber its pending changes", expected_seq=last + 1)
                results.append(_result(m.seq, "duplicate", record.server_seq if record else None,
                                       record.reason if record else None))
                continue
            if m.seq != last + 1:
                expected = last + 1
                break
            last = m.seq
            seen_here[m.seq] = m.payload_sha256
            earlier = by_mutation_id.get(m.mutation_id)
            if earlier is not None:  # the same change, renumbered by the device after a seq_reused recovery
                results.append(_result(m.seq, "duplicate", earlier.server_seq, earlier.reason))
                continue
            mutation, deltas, skew = planned[m.seq]
            audit.extend(m.audit)
            status, reason, detail, server_seq, extra, server_state = "applied", None, None, None, {}, None
            try:
                if isinstance(deltas, MutationError):
                    raise Reject(deltas.code, deltas.detail)
                server_seq, extra = work.apply(mutation, deltas, origin=client_id, origin_seq=m.seq)
                if skew:
                    reason = "clock_skew"
                    extra["original_hlc"] = m.hlc
                if "duplicates" in extra:
                    reason = reason or "duplicate_signals"
            except Reject as rejection:
                status, reason, detail = "rejected", rejection.code, rejection.detail
                # after the device's own entries, so every history shows the change was refused
                work.clock = hlc.tick(work.clock, now_ms)
                audit.append(AuditRecord(
                    id=uuid7(), at=now, actor=SERVER_ACTOR, device=SERVER_ORIGIN, entity=m.entity, entity_id=m.entity_id,
                    op=f"refuse:{reason}", after={"mutation": m.name, "mutation_id": m.mutation_id, "detail": detail},
                    hlc=work.clock.pack()))
                recs = rejection.records or [r for r in (work.get(d.entity, d.entity_id) for d in
                                                          (deltas if isinstance(deltas, list) else [])) if r is not None]
                server_state = [{"entity": r.entity, "entity_id": r.entity_id, "state": r.state}
                                for r in recs if r is not None and r.state is not None and work.may_write(r)]
            rows.append((client_id, m.seq, m.mutation_id, m.name, m.payload_sha256, status, reason, server_seq,
                         _dumps({"detail": detail, **extra}) if (detail or extra) else None, skew, work.now_db))
            results.append(_result(m.seq, status, server_seq, reason, detail, server_state))
        work.log_audit(audit, origin=client_id, origin_seq=last)
        work.flush()
        _insert_many(conn, "processed_mutations", ("client_id", "seq", "mutation_id", "name", "payload_sha256", "status",
                                                   "reason", "server_seq", "result", "clock_skew", "processed_at"), rows)
        conn.execute(update(CL).where(CL.c.client_id == client_id).values(
            last_processed_seq=last, last_seen_at=now, kind=req.client_kind, app_version=req.app_version,
            schema_version=req.schema_version))
        server_clock = work.clock.pack()
        save_version(conn, work.version, server_clock)
        if hooks and hooks.before_commit:
            hooks.before_commit()
    if hooks and hooks.after_commit:
        hooks.after_commit()
    return {"last_processed_seq": last, "server_epoch": epoch, "server_hlc": server_clock, "server_wall_ms": now_ms,
            "results": results, "expected_seq": expected}


# --------------------------------------------------------------------------------------
# Pull
# --------------------------------------------------------------------------------------


def _record_pull(engine: Engine, plant: PlantAuth, client_id: str, cursor: int, now: datetime) -> None:
    """Enrol a device at its first pull, or note where it has pulled to and when."""
    with transaction(engine) as conn:
        row = conn.execute(select(CL.c.plant_id).where(CL.c.client_id == client_id)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(CL.insert().values(client_id=client_id, plant_id=plant.id, kind="kiosk", last_processed_seq=0,
                                                    last_pull_cursor=cursor, last_seen_at=now))
            except IntegrityError:
                row = conn.execute(select(CL.c.plant_id).where(CL.c.client_id == client_id)).first()
            else:
                return
        if row.plant_id != plant.id:
            raise HttpError(403, "wrong_plant", "this device is enrolled under another plant than the token's")
        conn.execute(update(CL).where(CL.c.client_id == client_id).values(last_pull_cursor=cursor, last_seen_at=now))


def pull_page(engine: Engine, plant: PlantAuth, client_id: str, cursor: int, epoch: str | None, limit: int,
              *, now: datetime) -> str:
    """The page after ``cursor`` as JSON text, ready to send; Reset when the device must resync.

    A page is read in one read-only transaction. Only a new device's first page and the
    last page of a pull (the device has caught up) write: the enrolment, or where it has
    pulled to and when (for the status) — so a long pull does not take the write lock and
    wait for a disk flush once per page."""
    with engine.connect() as conn, conn.begin():
        version, server_epoch, clock = read_meta(conn)
        device = conn.execute(select(CL.c.plant_id, CL.c.last_processed_seq).where(CL.c.client_id == client_id)).first()
        if device is not None and device.plant_id != plant.id:
            raise HttpError(403, "wrong_plant", "this device is enrolled under another plant than the token's")
        if epoch is not None and epoch != server_epoch:
            raise Reset("epoch_changed", server_epoch)
        if cursor > version:
            raise Reset("cursor_ahead", server_epoch)
        scope = CHG.c.plant_id == plant.id
        if plant.enterprise:
            # The column itself, not "IS TRUE": PostgreSQL then reads the shared changes from
            # their partial index (whose predicate is the column) beside the plant's own.
            scope = or_(scope, CHG.c.shared)
        rows = conn.execute(
            select(CHG.c.server_seq, CHG.c.entity, CHG.c.entity_id, CHG.c.state, CHG.c.origin_client_id,
                   CHG.c.origin_seq)
            .where(CHG.c.server_seq > cursor, CHG.c.server_seq <= version, scope)
            .order_by(CHG.c.server_seq).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1][0] if has_more else version
    # As of the page's own snapshot, so the device never drops an acknowledged change from
    # its outbox before the page that holds the server's version of it.
    last_processed = int(device.last_processed_seq) if device is not None else 0
    if device is None or not has_more:
        _record_pull(engine, plant, client_id, next_cursor, now)
    dumps = json.dumps
    parts = [
        f'{{"server_seq":{seq},"entity":{dumps(entity)},"entity_id":{dumps(entity_id)},"state":{state},'
        f'"origin_client_id":{dumps(origin)},"origin_seq":{"null" if origin_seq is None else int(origin_seq)}}}'
        for seq, entity, entity_id, state, origin, origin_seq in rows
    ]
    head = {"next_cursor": next_cursor, "has_more": has_more, "last_processed_seq": last_processed,
            "server_epoch": server_epoch, "server_hlc": clock, "server_wall_ms": int(now.timestamp() * 1000)}
    body = '{"changes":[' + ",".join(parts) + "]," + dumps(head)[1:]
    return body


# --------------------------------------------------------------------------------------
# Signals from AI systems
# --------------------------------------------------------------------------------------

_CONFIGS: dict[tuple[str, int], Any] = {}


def plant_config(conn: Connection, plant_id: str):
    """The plant's config as registered on the server (cached while it is unchanged)."""
    from tiermeet.server.tokens import plant_config_toml
    from tiermeet.settings import parse_config

    text = plant_config_toml(conn, plant_id)
    if text is None:
        return None
    k = (plant_id, hash(text))
    if k not in _CONFIGS:
        _CONFIGS[k] = parse_config(text, f"plant {plant_id}")
    return _CONFIGS[k]


def placement(config, record: dict, now: datetime, version: str | None = None) -> dict:
    """Where a new signal starts under the plant's policy: the same rules as local ingest
    (first matching rule's autonomy and start tier, the window at that tier from the
    earlier of detection and arrival)."""
    from tiermeet.domain.policy import first_window

    policy = config.governance
    where, start, due = first_window(policy, record, now, config.top_tier, config.calendar)
    return {"tier": where.start_tier, "tier_entered_at": start, "deadline": due,
            "autonomy": where.autonomy.value, "policy_rule": where.rule, "policy_version": version or policy.version}


def _signal_result(index: int, status: str, *, signal_id: str | None = None, field: str | None = None,
                   reason: str | None = None) -> dict:
    """One ``SignalResult`` as plain JSON values."""
    return {"index": index, "status": status, "signal_id": signal_id, "field": field, "reason": reason}


def post_signals(engine: Engine, plant: PlantAuth, records: list[dict], *, now: datetime) -> dict:
    """Check each record against the plant's config, store the new ones with one audit
    entry for them (as a device's ingest does), report per row (a ``SignalsResponse`` as
    plain JSON values)."""
    from tiermeet.ingest.prepare import checked as checked_records, new_signal_id, plan_of

    added = duplicates = 0
    results: list[dict | None] = [None] * len(records)
    # One connection for the whole request; the records are checked before the write
    # transaction begins, so other requests wait only for the writing.
    with engine.connect() as conn:
        config = plant_config(conn, plant.id)
        conn.rollback()
        if config is None:
            raise HttpError(409, "no_plant_config", f"plant {plant.id!r} has no config on this server; "
                            "register it (tiermeet token create --plant … with its --config) before posting signals")
        rejected: list[tuple[int, str, str]] = []
        checked = list(checked_records(enumerate(records), plan_of(config), rejected, "at index"))
        for index, name, reason in rejected:
            results[index] = _signal_result(index, "rejected", field=name, reason=reason)
        if not checked:
            return {"added": 0, "duplicates": 0, "rejected": len(records), "results": results}
        with write_transaction(conn):
            version, _epoch, clock = lock_version(conn)
            work = _Work(conn, plant, now, version, hlc.tick(hlc.Timestamp.unpack(clock), int(now.timestamp() * 1000)))
            stamp = work.clock.pack()
            version = config.governance.version
            arrived = iso(now)
            known = work.signal_keys([(r["source"], r["external_id"]) for _, r in checked])
            with work.streaming_changes():
                for index, row in checked:
                    k = (row["source"], row["external_id"])
                    if k in known:
                        duplicates += 1
                        results[index] = _signal_result(index, "duplicate", signal_id=known[k])
                        continue
                    signal_id = new_signal_id()
                    where = placement(config, row, now, version)
                    detected = iso(row["detected_at"])
                    entered = detected if where["tier_entered_at"] == row["detected_at"] else iso(where["tier_entered_at"])
                    initial = {**row, **where, "id": signal_id, "ingested_at": arrived, "detected_at": detected,
                               "tier_entered_at": entered, "deadline": iso(where["deadline"])}
                    state = signal_ingest_state(initial, [stamp, SERVER_ORIGIN])
                    rec = _Rec("signal", signal_id, plant.id, None, False, None, True)
                    work.cache[("signal", signal_id)] = rec
                    work.put(rec, state, origin=None, origin_seq=None, stamp=stamp)
                    work.add_key(k[0], k[1], signal_id)
                    results[index] = _signal_result(index, "added", signal_id=signal_id)
                    added += 1
            if added:
                first_id = next(r["signal_id"] for r in results if r is not None and r["status"] == "added")
                work.log_audit([AuditRecord(
                    id=uuid7(), at=now, actor=API_ACTOR, device=SERVER_ORIGIN, entity="signal", entity_id=first_id,
                    op="ingest", after={"origin": "POST /v1/signals", "count": added, "last_id": signal_id}, hlc=stamp)],
                    origin=None, origin_seq=None)
            work.flush()
            save_version(conn, work.version, stamp)
    return {"added": added, "duplicates": duplicates, "rejected": len(records) - added - duplicates, "results": results}


# --------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------


def plant_status(engine: Engine, plant: PlantAuth) -> dict:
    """Per device of the plant: last seen, last processed seq, rejections."""
    with engine.connect() as conn:
        version, epoch, _clock = read_meta(conn)
        rejected = dict(conn.execute(select(PM.c.client_id, func.count()).where(PM.c.status == "rejected")
                                     .join(CL, CL.c.client_id == PM.c.client_id).where(CL.c.plant_id == plant.id)
                                     .group_by(PM.c.client_id)).all())
        clients = [{"client_id": r.client_id, "kind": r.kind, "last_seen_at": r.last_seen_at,
                    "last_processed_seq": r.last_processed_seq, "last_pull_cursor": r.last_pull_cursor,
                    "rejections": rejected.get(r.client_id, 0)}
                   for r in conn.execute(select(CL).where(CL.c.plant_id == plant.id).order_by(CL.c.client_id))]
    return {"plant_id": plant.id, "server_epoch": epoch, "global_version": version, "clients": clients}


