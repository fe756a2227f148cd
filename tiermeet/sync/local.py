"""The device side of sync, in its own database: what to push, and applying what comes back.

- ``pending`` reads outbox rows in seq order, each with its context (the audit images of a
  lifecycle change; the payload of ingested signals) and the audit entries written with
  it, as they go on the wire.
- ``apply_push_response`` moves acknowledged rows to ``outbox_archive``, copies rejections
  to ``rejection`` and puts back the server's version of what a rejected change touched.
- ``apply_pull_page`` merges a page of changes, moves the cursor and drops acknowledged
  outbox rows, all in one transaction (a crash leaves the page either applied or not).

A record's local row is always ``project(shadow ⊔ pending)``: the newest server state
(``sync_shadow``) merged with this device's own changes not yet acknowledged, re-derived
with the same merge rules the server uses — so local edits survive an older server value,
and once the server has them the device shows exactly what the server shows.
"""

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, Text, cast, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tiermeet.domain import hlc
from tiermeet.store.engine import read_session, write_session
from tiermeet.store.models import (
    Action, AuditEntry, Comment, Decision, Escalation, Meeting, MeetingAttendance, Person, Rejection, Signal,
    SyncState,
)
from tiermeet.store.models_sync import SyncConflict, SyncShadow
from tiermeet.store.types import UTCDateTime, to_db_text
from tiermeet.sync import jsonutil, merge
from tiermeet.sync.mutations import NEEDS_IMAGES, Mutation, MutationError, deltas_of
from tiermeet.sync.protocol import AUDIT_ENTITY, iso

#: How long acknowledged mutations are kept for a re-push after a server restore.
ARCHIVE_DAYS = 30
#: Target size of one push body; a single larger mutation still goes alone.
PUSH_BYTES = 4 * 1024 * 1024

#: Entity → table, in the order a page is written (records before those that refer to them).
TABLES = {
    "signal": Signal.__table__, "meeting": Meeting.__table__, "decision": Decision.__table__,
    "action": Action.__table__, "escalation": Escalation.__table__, "comment": Comment.__table__,
    "attendance": MeetingAttendance.__table__, "conflict": SyncConflict.__table__,
}
#: Columns that stay as first written when a pulled record is already here.
_KEYS = {"attendance": ("meeting_id", "person_id")}
_IMMUTABLE = {"signal": {
    "external_id", "source", "model_version", "kind", "detected_at", "ingested_at", "area", "line", "asset", "category",
    "severity", "severity_rank", "confidence", "title", "detail", "suggested_action", "evidence_url", "extra"}}
_PERSON_COLUMNS = {"action": ("owner_id",), "comment": ("author_id",), "meeting": ("facilitator_id",),
                   "attendance": ("person_id",)}

STATE_KEYS = ("client_id", "next_seq", "hlc", "pull_cursor", "server_epoch", "last_acked_seq", "last_sync_ok_at",
              "last_sync_error", "last_attempt_at", "server_clock_offset_ms", "server_last_processed_seq")


def _converters(table) -> dict[str, Any]:
    out = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, UTCDateTime):
            out[column.name] = lambda v: None if v is None else _parse_time(v)
        elif kind.__class__.__name__ == "Uuid":
            out[column.name] = lambda v: None if v is None else (v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))
        else:
            out[column.name] = None
    return out


def _parse_time(value) -> datetime:
    if isinstance(value, datetime):
        return value
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


_CONVERT = {entity: _converters(table) for entity, table in TABLES.items()}


# --------------------------------------------------------------------------------------
# Sync state
# --------------------------------------------------------------------------------------


def read_state(engine: Engine) -> dict[str, str]:
    """The device's sync facts (client id, cursor, epoch, last sync …)."""
    with read_session(engine) as session:
        return dict(session.execute(select(SyncState.key, SyncState.value)).all())


def _set(session: Session, **values) -> None:
    for key, value in values.items():
        if value is None:
            session.execute(text("DELETE FROM sync_state WHERE key = :k"), {"k": key})
        else:
            session.execute(text("INSERT INTO sync_state (key, value) VALUES (:k, :v) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), {"k": key, "v": str(value)})


def _state(session: Session) -> dict[str, str]:
    return dict(session.execute(select(SyncState.key, SyncState.value)).all())


def ensure_client_id(engine: Engine) -> str:
    """This device's client id (made now if it has never written anything)."""
    state = read_state(engine)
    if "client_id" in state:
        return state["client_id"]
    from tiermeet.services.unit import new_id

    with write_session(engine) as session:
        current = _state(session).get("client_id")
        if current:
            return current
        client_id = str(new_id())
        _set(session, client_id=client_id)
        return client_id


def _receive_clock(session: Session, state: dict, server_hlc: str | None, wall_ms: int) -> None:
    if not server_hlc:
        return
    mine = hlc.Timestamp.unpack(state["hlc"]) if "hlc" in state else hlc.ZERO
    _set(session, hlc=hlc.receive(mine, hlc.Timestamp.unpack(server_hlc), wall_ms).pack())


def record_outcome(engine: Engine, *, ok: bool, error: str | None, now: datetime) -> None:
    """Remember how the last round went (for the status indicator)."""
    with write_session(engine) as session:
        values = {"last_attempt_at": iso(now), "last_sync_error": error}
        if ok:
            values["last_sync_ok_at"] = iso(now)
        _set(session, **values)


# --------------------------------------------------------------------------------------
# Outgoing
# --------------------------------------------------------------------------------------


def _contexts(session: Session, rows: list["_Row"]) -> list[dict]:
    """Each row's context, as the server needs it beside the mutation: the audit entry's
    lifecycle images (found for all rows in a few queries), the payload of ingested signals."""
    wanted = list({(r.entity, r.entity_id, r.hlc) for r in rows if r.name in NEEDS_IMAGES})
    # By the change's record and clock; among entries that share them (another device's,
    # pulled, may carry the same clock), the one the mutation itself carries. Only an
    # entry written before entries named their mutation has none.
    images: dict[tuple[str, str, str], dict[str | None, dict]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        for entity, entity_id, stamp, mutation_id, before, after in session.execute(
                select(AuditEntry.entity, AuditEntry.entity_id, AuditEntry.hlc, AuditEntry.mutation_id, AuditEntry.before,
                       AuditEntry.after)
                .where(AuditEntry.entity_id.in_({k[1] for k in chunk}), AuditEntry.hlc.in_({k[2] for k in chunk}))):
            images.setdefault((entity, entity_id, stamp), {}).setdefault(
                None if mutation_id is None else str(mutation_id), {"before": before or {}, "after": after or {}})
    out = []
    for row in rows:
        if row.name in NEEDS_IMAGES:
            found = images.get((row.entity, row.entity_id, row.hlc), {})
            out.append(found.get(row.mutation_id) or found.get(None) or {})
        elif row.name == "signal.ingest":
            out.append({"signals": _ingested(session, [str(i) for i in row.args.get("signal_ids", [])])})
        else:
            out.append({})
    return out


_PAYLOAD = ("external_id", "source", "model_version", "kind", "detected_at", "ingested_at", "area", "line", "asset",
            "category", "severity", "severity_rank", "confidence", "title", "detail", "suggested_action", "evidence_url",
            "extra", "autonomy", "policy_rule", "policy_version", "tier", "deadline", "tier_entered_at")


def _ingested(session: Session, ids: list[str]) -> list[dict]:
    """Each signal's payload and its placement at ingest (from the first lifecycle audit
    entry's 'before' image when it has moved since)."""
    out = []
    table = Signal.__table__
    first_before: dict[str, dict] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for entity_id, before, _stamp in session.execute(
                select(AuditEntry.entity_id, AuditEntry.before, AuditEntry.hlc)
                .where(AuditEntry.entity == "signal", AuditEntry.entity_id.in_(chunk), AuditEntry.op != "ingest")
                .order_by(AuditEntry.hlc.desc())):
            if before:
                first_before[entity_id] = before
        rows = session.execute(select(*[table.c[n] for n in ("id", *_PAYLOAD)])
                               .where(table.c.id.in_([uuid.UUID(x) for x in chunk]))).mappings().all()
        for row in rows:
            record = {name: row[name] for name in _PAYLOAD}
            record["id"] = str(row["id"])
            before = first_before.get(record["id"])
            if before:
                record["tier"], record["deadline"] = before["tier"], before["deadline"]
                record["tier_entered_at"] = min(row["detected_at"], row["ingested_at"])
            for name in ("detected_at", "ingested_at", "tier_entered_at"):
                record[name] = iso(record[name])
            record["deadline"] = iso(_parse_time(record["deadline"]))
            out.append(record)
    return out


def _wires(session: Session, rows: list["_Row"]) -> list[dict]:
    """Outbox rows as they go on the wire."""
    return [{"seq": row.seq, "mutation_id": row.mutation_id, "name": row.name, "entity": row.entity,
             "entity_id": row.entity_id, "hlc": row.hlc, "actor": row.actor, "created_at": iso(row.created_at),
             "args": row.args, "payload_sha256": row.payload_sha256, "context": context}
            for row, context in zip(rows, _contexts(session, rows))]


#: Each mutation's audit entries as a JSON array, made by SQLite from the stored text
#: (the before/after images are JSON already), so a push does not decode and re-encode
#: the tens of thousands of entries a week offline holds.
_AUDIT_JSON = (
    "SELECT mutation_id, json_group_array(json_object("
    "'id', substr(id, 1, 8) || '-' || substr(id, 9, 4) || '-' || substr(id, 13, 4) || '-' || substr(id, 17, 4) || '-' "
    "|| substr(id, 21), 'at', at || '+00:00', 'actor', actor, 'device', device, 'entity', entity, 'entity_id', entity_id, "
    "'op', op, 'before', json(before), 'after', json(after), 'hlc', hlc)) FROM audit_log WHERE mutation_id IN ({}) "
    "GROUP BY mutation_id")


def _audit_json(session: Session, wires: list[dict]) -> dict[str, bytes]:
    """The audit entries written with each of ``wires``' mutations, as the JSON array they
    travel in, by mutation id (found for all in a few queries); entries are append-only,
    so every replica gets them."""
    ids = [uuid.UUID(w["mutation_id"]).hex for w in wires]
    out = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        rows = session.connection().exec_driver_sql(_AUDIT_JSON.format(", ".join("?" * len(chunk))), tuple(chunk))
        out.update((str(uuid.UUID(mid)), entries.encode()) for mid, entries in rows)
    return out


@dataclass(frozen=True)
class _Row:
    seq: int
    mutation_id: str
    name: str
    entity: str
    entity_id: str
    args: dict
    hlc: str
    actor: str
    created_at: datetime
    payload_sha256: str


def _rows(session: Session, table: str, where: str = "", params: dict | None = None, limit: int | None = None) -> list[_Row]:
    """Outbox (or archive) rows read as plain values: cheaper than ORM objects by the thousand."""
    sql = (f"SELECT seq, mutation_id, name, entity, entity_id, args, hlc, actor, created_at, payload_sha256 "
           f"FROM {table} {where} ORDER BY seq" + (f" LIMIT {int(limit)}" if limit else ""))
    loads = jsonutil.loads
    return [_Row(seq, str(uuid.UUID(mid)), name, entity, entity_id, loads(args), stamp, actor,
                 datetime.fromisoformat(created).replace(tzinfo=timezone.utc), sha)
            for seq, mid, name, entity, entity_id, args, stamp, actor, created, sha in session.execute(text(sql), params or {})]


@dataclass(frozen=True)
class Batch:
    """Mutations to push, in seq order: as wire dicts, and each as its JSON, encoded once
    (to measure the batch and to make the request body) and holding its audit entries."""

    mutations: list[dict]
    encoded: list[bytes]


def pending(engine: Engine, *, limit: int = 500, max_bytes: int = PUSH_BYTES, after_seq: int = 0,
            archived_from: int | None = None, archived_to: int | None = None) -> Batch:
    """The next mutations to push after ``after_seq``, in seq order (at most ``limit``, and
    about ``max_bytes`` of JSON). With ``archived_from``, acknowledged ones from the archive
    instead (to push again to a server that lost them)."""
    with read_session(engine) as session:
        if archived_from is None:
            rows = _rows(session, "outbox", "WHERE seq > :a", {"a": after_seq}, limit)
        else:
            rows = _rows(session, "outbox_archive", "WHERE seq >= :a AND seq <= :b",
                         {"a": archived_from, "b": archived_to if archived_to is not None else 2**62}, limit)
        wires = _wires(session, rows)
        audit = _audit_json(session, wires)
    mutations, encoded, size = [], [], 0
    for wire in wires:
        data = jsonutil.dumpb(wire)
        if wire["mutation_id"] in audit:
            data = data[:-1] + b',"audit":' + audit[wire["mutation_id"]] + b"}"
        size += len(data)
        if mutations and size > max_bytes:
            break
        mutations.append(wire)
        encoded.append(data)
    return Batch(mutations, encoded)


def pending_count(engine: Engine) -> int:
    """How many changes are waiting to be pushed."""
    with read_session(engine) as session:
        return session.execute(text("SELECT count(*) FROM outbox")).scalar_one()


def _archive(session: Session, up_to: int, now: datetime) -> int:
    moved = session.execute(text(
        "INSERT OR REPLACE INTO outbox_archive (seq, mutation_id, name, entity, entity_id, args, hlc, actor, created_at, "
        "payload_sha256, acked_at) SELECT seq, mutation_id, name, entity, entity_id, args, hlc, actor, created_at, "
        "payload_sha256, :now FROM outbox WHERE seq <= :n"), {"n": up_to, "now": to_db_text(now)}).rowcount
    session.execute(text("DELETE FROM outbox WHERE seq <= :n"), {"n": up_to})
    session.execute(text("DELETE FROM outbox_archive WHERE acked_at < :old"),
                    {"old": to_db_text(now - timedelta(days=ARCHIVE_DAYS))})
    return moved


def apply_push_response(engine: Engine, response: dict, sent: list[dict], *, now: datetime, wall_ms: int) -> dict:
    """Record what the server did with a push, in one transaction; returns counts."""
    counts = {"applied": 0, "duplicate": 0, "rejected": 0}
    by_seq = {m["seq"]: m for m in sent}
    last = int(response["last_processed_seq"])
    with write_session(engine) as session:
        state = _state(session)
        server_states = []
        for result in response.get("results", []):
            counts[result["status"]] += 1
            if result["status"] != "rejected":
                continue
            m = by_seq.get(result["seq"])
            if m is None:
                continue
            session.execute(sqlite_insert(Rejection.__table__).values(
                seq=m["seq"], mutation_id=uuid.UUID(m["mutation_id"]), name=m["name"], entity=m["entity"],
                entity_id=m["entity_id"], actor=m["actor"], reason_code=result.get("reason") or "rejected",
                detail=result.get("detail") or "", server_state={"records": result.get("server_state") or []},
                rejected_at=now).on_conflict_do_nothing())
            for item in result.get("server_state") or []:
                server_states.append((item["entity"], item["entity_id"], item["state"]))
        _archive(session, last, now)
        # Put back the server's version of what rejected changes touched (after the
        # rejected rows left the outbox, so they are no longer re-applied on top).
        if server_states:
            _apply_states(session, server_states, state.get("client_id", ""))
        _receive_clock(session, state, response.get("server_hlc"), wall_ms)
        acked = max(int(state.get("last_acked_seq", "0")), last)
        _set(session, last_acked_seq=acked, server_epoch=response.get("server_epoch") or state.get("server_epoch"),
             server_last_processed_seq=last,
             server_clock_offset_ms=(int(response["server_wall_ms"]) - wall_ms) if response.get("server_wall_ms") else None)
    return counts


def renumber_pending(engine: Engine, first_seq: int) -> int:
    """After the server reported ``seq_reused`` (this device lost local state): give the
    pending mutations new seqs from ``first_seq`` on, keeping their mutation ids, so the
    server sees them as new and nothing is dropped. Returns how many were renumbered."""
    with write_session(engine) as session:
        seqs = [r[0] for r in session.execute(text("SELECT seq FROM outbox ORDER BY seq"))]
        for seq in seqs:
            session.execute(text("UPDATE outbox SET seq = :new WHERE seq = :old"), {"new": -seq, "old": seq})
        for i, seq in enumerate(seqs):
            session.execute(text("UPDATE outbox SET seq = :new WHERE seq = :old"), {"new": first_seq + i, "old": -seq})
        _set(session, next_seq=first_seq + len(seqs), last_sync_error=f"renumbered {len(seqs)} pending changes from seq "
             f"{first_seq}: this device had lost changes the server already had")
    return len(seqs)


# --------------------------------------------------------------------------------------
# Incoming
# --------------------------------------------------------------------------------------


#: A pulled page is applied in slices, each its own transaction that moves the cursor with
#: it: a slice grows by steps of about ``APPLY_STEP`` rows until about this much work, so
#: the write lock is never held long enough to make a person recording a decision wait.
APPLY_BUDGET_S = 0.025
APPLY_STEP = 100


def _records_of(changes: list[dict]) -> tuple[list[tuple[str, str, dict]], list[int]]:
    """The page as one merged state per record, in the order of each record's first change,
    and for each record the index of that first change.

    A record changed many times in a page (a busy action) is merged and written once. A
    prefix of this list holds every record of the changes before the next record's first
    change, so once it is applied the cursor may move to just before that change."""
    merged: dict[tuple[str, str], list] = {}
    for index, change in enumerate(changes):
        k = (change["entity"], change["entity_id"])
        slot = merged.get(k)
        if slot is None:
            merged[k] = [index, change["state"]]
        else:
            slot[1] = merge.join(k[0], slot[1], change["state"])
    records = [(entity, entity_id, state) for (entity, entity_id), (_, state) in merged.items()]
    return records, [first for first, _ in merged.values()]


def _steps(records: list[tuple[str, str, dict]]) -> list[int]:
    """Where the steps of applying ``records`` begin, and the end: about ``APPLY_STEP``
    rows each, an audit change counting one row per entry it holds."""
    bounds, weight = [0], 0
    for i, (entity, _, state) in enumerate(records):
        weight += len(state["entries"]) if entity == AUDIT_ENTITY else 1
        if weight >= APPLY_STEP:
            bounds.append(i + 1)
            weight = 0
    if bounds[-1] != len(records):
        bounds.append(len(records))
    return bounds


def apply_pull_page(engine: Engine, page: dict, *, now: datetime, wall_ms: int) -> int:
    """Merge one pulled page and move the cursor with it, in short transactions; the last
    one also drops acknowledged outbox rows and records the server's clock. Each
    transaction moves the cursor only past changes whose records it (or an earlier one)
    has written, so a crash leaves the cursor where every change up to it is applied."""
    changes = page["changes"]
    records, firsts = _records_of(changes)
    bounds = _steps(records)
    step = 0
    while step < len(bounds) - 2:
        with write_session(engine) as session:
            client_id = _state(session).get("client_id", "")
            started = time.perf_counter()
            while True:
                _apply_states(session, records[bounds[step]:bounds[step + 1]], client_id)
                step += 1
                if step >= len(bounds) - 2 or time.perf_counter() - started >= APPLY_BUDGET_S:
                    break
            _set(session, pull_cursor=int(changes[firsts[bounds[step]] - 1]["server_seq"]), server_epoch=page["server_epoch"])
    with write_session(engine) as session:
        state = _state(session)
        if bounds[step] < len(records):
            _apply_states(session, records[bounds[step]:], state.get("client_id", ""))
        _archive(session, int(page["last_processed_seq"]), now)
        _receive_clock(session, state, page.get("server_hlc"), wall_ms)
        _set(session, pull_cursor=int(page["next_cursor"]), server_epoch=page["server_epoch"],
             server_last_processed_seq=int(page["last_processed_seq"]),
             server_clock_offset_ms=(int(page["server_wall_ms"]) - wall_ms) if page.get("server_wall_ms") else None)
    return len(changes)


def reset_for_resync(engine: Engine, server_epoch: str) -> None:
    """Start pulling again from the beginning under a new server epoch. The outbox, the
    archive and the rejections are kept; merging makes re-applying old changes harmless."""
    with write_session(engine) as session:
        _set(session, pull_cursor=0, server_epoch=server_epoch)


def _pending_deltas(session: Session, keys: set[tuple[str, str]], client_id: str) -> dict[tuple[str, str], list]:
    """This device's not-yet-acknowledged changes to ``keys``, as merge deltas."""
    if session.execute(text("SELECT 1 FROM outbox LIMIT 1")).first() is None:
        return {}
    ids = {entity_id for _, entity_id in keys} | {entity_id.split(":")[0] for entity, entity_id in keys if entity == "attendance"}
    ids = list(ids)
    rows = []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ", ".join(f":i{n}" for n in range(len(chunk)))
        rows.extend(_rows(session, "outbox", f"WHERE entity_id IN ({marks})", {f"i{n}": v for n, v in enumerate(chunk)}))
    rows.sort(key=lambda r: r.seq)
    out: dict[tuple[str, str], list] = {}
    for wire in _wires(session, rows):
        mutation = Mutation(name=wire["name"], entity=wire["entity"], entity_id=wire["entity_id"], args=wire["args"],
                            hlc=wire["hlc"], origin=client_id, actor=wire["actor"], created_at=wire["created_at"],
                            context=wire["context"])
        try:
            deltas = deltas_of(mutation)
        except MutationError:
            continue
        for d in deltas:
            if (d.entity, d.entity_id) in keys:
                out.setdefault((d.entity, d.entity_id), []).append(d.state)
    return out


def _apply_states(session: Session, items: list[tuple[str, str, dict]], client_id: str) -> None:
    """Merge server states into the shadow, re-apply pending local changes, write the rows;
    pulled audit entries are appended."""
    merged: dict[tuple[str, str], dict] = {}
    for entity, entity_id, state in items:
        if entity == AUDIT_ENTITY:
            _append_audit(session, state["entries"])
            continue
        k = (entity, entity_id)
        merged[k] = merge.join(entity, merged.get(k), state)
    keys = list(merged)
    shadows: dict[tuple[str, str], dict] = {}
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in keys:
        by_entity.setdefault(entity, []).append(entity_id)
    table = SyncShadow.__table__
    loads = jsonutil.loads
    for entity, ids in by_entity.items():
        for i in range(0, len(ids), 500):
            for entity_id, state in session.execute(select(table.c.entity_id, cast(table.c.state, Text)).where(
                    table.c.entity == entity, table.c.entity_id.in_(ids[i:i + 500]))):
                shadows[(entity, entity_id)] = loads(state)
    changed = {}
    for k, state in merged.items():
        new = merge.join(k[0], shadows.get(k), state)
        if new != shadows.get(k):
            changed[k] = new
    if not changed:
        return
    session.connection().exec_driver_sql(
        "INSERT INTO sync_shadow (entity, entity_id, state) VALUES (?, ?, ?) "
        "ON CONFLICT (entity, entity_id) DO UPDATE SET state = excluded.state",
        [(e, i, jsonutil.dumps(s)) for (e, i), s in changed.items()])
    pending = _pending_deltas(session, set(changed), client_id)
    rows: dict[str, list[dict]] = {}
    for (entity, entity_id), state in changed.items():
        if entity not in TABLES:
            continue
        local = merge.join_all(entity, [state, *pending.get((entity, entity_id), [])])
        row = merge.project(entity, local)
        if row is None:
            continue
        rows.setdefault(entity, []).append(row)
    for entity, table_rows in ((e, rows[e]) for e in TABLES if e in rows):
        _write_rows(session, entity, table_rows)


#: Pulled audit entries, each stored once (this device's own come back too), without a
#: mutation id: they are not this device's to push.
APPEND_AUDIT = ("INSERT INTO audit_log (id, at, actor, device, entity, entity_id, op, before, after, hlc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")


def audit_rows(entries: list[dict]) -> list[tuple]:
    """Audit entries as they travel (``AuditRecord``) as ``APPEND_AUDIT`` stores them."""
    return [(uuid.UUID(e["id"]).hex, to_db_text(_parse_time(e["at"])), e["actor"], e["device"], e["entity"],
             e["entity_id"], e["op"], None if e["before"] is None else jsonutil.dumps(e["before"]),
             None if e["after"] is None else jsonutil.dumps(e["after"]), e["hlc"]) for e in entries]


def _append_audit(session: Session, entries: list[dict]) -> None:
    session.connection().exec_driver_sql(APPEND_AUDIT, audit_rows(entries))


def _write_rows(session: Session, entity: str, rows: list[dict]) -> None:
    table = TABLES[entity]
    convert = _CONVERT[entity]
    columns = [c.name for c in table.columns]
    clean = []
    for row in rows:
        out = {}
        for name in columns:
            v = row.get(name)
            fn = convert[name]
            out[name] = fn(v) if fn is not None else v
        clean.append(out)
    people = {row[c] for row in clean for c in _PERSON_COLUMNS.get(entity, ()) if row.get(c)}
    if people:
        _ensure_people(session, people)
    if entity == "signal":
        clean = _without_key_clashes(session, clean)
    if entity == "decision":
        _drop_missing_refs(session, clean, "meeting_id", Meeting.__table__)
    for column, target in _REQUIRED_REFS.get(entity, ()):
        clean = _without_orphans(session, clean, column, target)
    if not clean:
        return
    sql, to_db = _upsert(session, entity)
    session.connection().exec_driver_sql(sql, [tuple(fn(row[name]) for name, fn in to_db) for row in clean])


_UPSERTS: dict[str, tuple[str, list]] = {}


def _upsert(session: Session, entity: str) -> tuple[str, list]:
    """The upsert of one table as plain SQL, and per column the conversion to what SQLite
    stores (the same values the column types would write), so a page of thousands of rows
    costs no per-row statement processing."""
    if entity not in _UPSERTS:
        table = TABLES[entity]
        dialect = session.get_bind().dialect
        columns = [c.name for c in table.columns]
        keys = list(_KEYS.get(entity, ("id",)))
        fixed = _IMMUTABLE.get(entity, set()) | set(keys)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in fixed)
        sql = (f'INSERT INTO "{table.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
               f'VALUES ({", ".join("?" for _ in columns)}) ON CONFLICT ({", ".join(keys)}) '
               + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
        to_db = []
        for column in table.columns:
            kind = column.type
            if isinstance(kind, UTCDateTime):
                to_db.append((column.name, lambda v: None if v is None else to_db_text(v)))
            elif kind.__class__.__name__ == "Uuid":
                to_db.append((column.name, lambda v: None if v is None else v.hex))
            else:
                process = kind.dialect_impl(dialect).bind_processor(dialect)
                if process is None:
                    to_db.append((column.name, lambda v: v))
                else:  # a missing value is SQL NULL (JSON columns too), as the column types write it
                    to_db.append((column.name, lambda v, process=process: None if v is None else process(v)))
        _UPSERTS[entity] = (sql, to_db)
    return _UPSERTS[entity]


def _ensure_people(session: Session, ids: Iterable[str]) -> None:
    """People named by pulled records but not in this plant's config (e.g. someone at the
    enterprise tier): kept as inactive entries so the records can refer to them."""
    table = Person.__table__
    have = set(session.scalars(select(table.c.id).where(table.c.id.in_(list(ids)))))
    missing = [i for i in ids if i not in have]
    if missing:
        session.execute(sqlite_insert(table).on_conflict_do_nothing(),
                        [{"id": i, "name": i, "badge": f"~{i}", "role": "operator", "scope": "plant", "active": False}
                         for i in missing])


def _without_key_clashes(session: Session, rows: list[dict]) -> list[dict]:
    """Leave out pulled signals whose (source, external_id) this device already has under
    another id (ingested here and at the server separately): the local one stays."""
    table = Signal.__table__
    ids = [r["id"] for r in rows]
    known = set()
    for i in range(0, len(ids), 500):
        known.update(session.scalars(select(table.c.id).where(table.c.id.in_(ids[i:i + 500]))))
    fresh = [r for r in rows if r["id"] not in known]
    if not fresh:
        return rows
    owners: dict[tuple[str, str], uuid.UUID] = {}
    external = list({r["external_id"] for r in fresh})
    for i in range(0, len(external), 500):
        for other, source, external_id in session.execute(select(table.c.id, table.c.source, table.c.external_id)
                                                          .where(table.c.external_id.in_(external[i:i + 500]))):
            owners[(source, external_id)] = other
    clash = {r["id"] for r in fresh if owners.get((r["source"], r["external_id"]), r["id"]) != r["id"]}
    return [r for r in rows if r["id"] not in clash]


#: References a pulled row cannot be written without. A row whose target is not here is
#: left out (its state stays in the shadow): this happens only for a signal this device
#: holds under another id (ingested here and at the server separately).
_REQUIRED_REFS = {
    "decision": (("signal_id", Signal.__table__),),
    "escalation": (("signal_id", Signal.__table__),),
    "action": (("signal_id", Signal.__table__), ("decision_id", Decision.__table__)),
    "attendance": (("meeting_id", Meeting.__table__),),
}


def _without_orphans(session: Session, rows: list[dict], column: str, target) -> list[dict]:
    ids = list({r[column] for r in rows if r.get(column) is not None})
    if not ids:
        return rows
    have = set()
    for i in range(0, len(ids), 500):
        have.update(session.scalars(select(target.c.id).where(target.c.id.in_(ids[i:i + 500]))))
    return [r for r in rows if r.get(column) is None or r[column] in have]


def _drop_missing_refs(session: Session, rows: list[dict], column: str, target) -> None:
    ids = {r[column] for r in rows if r.get(column) is not None}
    if not ids:
        return
    have = set(session.scalars(select(target.c.id).where(target.c.id.in_(list(ids)))))
    for r in rows:
        if r.get(column) is not None and r[column] not in have:
            r[column] = None


# --------------------------------------------------------------------------------------
# For the app: status and rejections
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncStatus:
    """What the status indicator shows."""

    configured: bool
    pending: int
    oldest_pending_at: datetime | None
    last_sync_ok_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    rejections_unseen: int
    rejections_total: int
    conflicts: int
    pull_cursor: int
    server_epoch: str | None
    clock_offset_ms: int | None


def status_of(engine: Engine, *, configured: bool = True) -> SyncStatus:
    """The device's sync status from its own database (no network)."""
    with read_session(engine) as session:
        state = _state(session)
        pending_n, oldest = session.execute(text("SELECT count(*), min(created_at) FROM outbox")).one()
        unseen, total = session.execute(text(
            "SELECT coalesce(sum(CASE WHEN seen_at IS NULL THEN 1 ELSE 0 END), 0), count(*) FROM rejection")).one()
        conflicts = session.execute(text("SELECT count(*) FROM sync_conflicts")).scalar_one()

    def when(key: str) -> datetime | None:
        return _parse_time(state[key]) if state.get(key) else None

    return SyncStatus(
        configured=configured, pending=pending_n, oldest_pending_at=_parse_time(oldest) if oldest else None,
        last_sync_ok_at=when("last_sync_ok_at"), last_attempt_at=when("last_attempt_at"),
        last_error=state.get("last_sync_error"), rejections_unseen=int(unseen), rejections_total=int(total),
        conflicts=int(conflicts), pull_cursor=int(state.get("pull_cursor", "0")), server_epoch=state.get("server_epoch"),
        clock_offset_ms=int(state["server_clock_offset_ms"]) if state.get("server_clock_offset_ms") else None,
    )


@dataclass(frozen=True)
class RejectionView:
    """A change the server refused, with why and what stands instead."""

    seq: int
    name: str
    entity: str
    entity_id: str
    actor: str
    reason_code: str
    detail: str
    winning: list[dict]
    rejected_at: datetime
    seen: bool


def rejections(engine: Engine) -> list[RejectionView]:
    """Every rejected change, newest first; ``winning`` is each touched record as the server has it."""
    with read_session(engine) as session:
        rows = session.scalars(select(Rejection).order_by(Rejection.rejected_at.desc(), Rejection.seq.desc())).all()
    views = []
    for r in rows:
        winning = []
        for item in (r.server_state or {}).get("records", []):
            row = merge.project(item["entity"], item["state"])
            if row is not None:
                winning.append({"entity": item["entity"], "entity_id": item["entity_id"], "record": row})
        views.append(RejectionView(r.seq, r.name, r.entity, r.entity_id, r.actor, r.reason_code, r.detail, winning,
                                   r.rejected_at, r.seen_at is not None))
    return views


def mark_rejections_seen(engine: Engine, now: datetime, seqs: Iterable[int] | None = None) -> None:
    """The people who made these changes have seen why they were refused."""
    with write_session(engine) as session:
        if seqs is None:
            session.execute(text("UPDATE rejection SET seen_at = :now WHERE seen_at IS NULL"), {"now": to_db_text(now)})
        else:
            for seq in seqs:
                session.execute(text("UPDATE rejection SET seen_at = :now WHERE seq = :s AND seen_at IS NULL"),
                                {"now": to_db_text(now), "s": seq})
