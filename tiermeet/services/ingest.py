"""Bulk ingest of signals: validated rows in, batches of prepared inserts out.

Rows are checked one by one (a bad row is reported with its line and never stops the
good ones), then written in batches: each batch is one transaction holding the new
signals, one audit entry and one ``signal.ingest`` sync mutation naming the ids. The
payload of a signal is immutable, so the sync client reads it from the signal table when
it pushes instead of copying it into the outbox. Re-ingesting the same (source,
external_id) is a no-op, counted as a duplicate.

Reading, checking and placing rows is Python work; storing a batch is mostly SQLite's,
which runs without the interpreter lock. So one batch is written on a writer thread while
the next is read and checked, and a large file takes about as long as the slower of the
two instead of their sum. Batches are still written one at a time and in file order.
"""

import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tiermeet.domain.enums import Autonomy, DecisionKind, SignalStatus
from tiermeet.domain.policy import first_window
from tiermeet.ingest.contract import Plan, RecordError, check_record
from tiermeet.ingest.readers import Problem, Row
from tiermeet.services.context import Context
from tiermeet.services.unit import Change, jsonable, new_id, new_id_text
from tiermeet.services.signals import PAYLOAD
from tiermeet.store.models import Decision, ModelSuspension, Signal
from tiermeet.store.types import to_db_text

#: Rows per transaction. Each new signal enters the (source, external_id) index at a random
#: place, so a batch rewrites about one index page per row; the larger the batch, the more
#: rows share a page. At 10,000 a batch holds the write lock for about a tenth of a second.
BATCH = 10_000
INGEST_ACTOR = "system:ingest"
AUTONOMOUS, SIGN_OFF = Autonomy.AUTONOMOUS.value, Autonomy.SIGN_OFF.value
OPEN, ACTIONED = SignalStatus.OPEN.value, SignalStatus.ACTIONED.value


@dataclass
class IngestReport:
    """What one ingest run did; ``rejected`` holds (line, field, reason) per refused row."""

    added: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """``N added, M duplicates, K rejected``."""
        return f"{self.added} added, {self.duplicates} duplicates, {len(self.rejected)} rejected"

    def merge(self, other: "IngestReport") -> None:
        """Add another file's counts to this one (its rejections stay with that file)."""
        self.added += other.added
        self.duplicates += other.duplicates


def plan_of(ctx: Context) -> Plan:
    """The areas, lines and zone that records are checked against."""
    config = ctx.config
    return Plan({a.id: frozenset(ln.id for ln in a.lines) for a in config.areas}, ZoneInfo(config.plant.timezone))


class IngestService:
    """Adds signals from files or the API."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def ingest(self, rows: Iterable[Row | Problem], *, origin: str, actor: str = INGEST_ACTOR) -> IngestReport:
        """Check and store ``rows``; ``origin`` (a file name) goes into the audit entry."""
        report = IngestReport()
        plan = plan_of(self.ctx)
        prepare = _Preparer(self.ctx)
        first_line: dict[tuple[str, str], int] = {}
        batch: list[dict] = []
        with self.ctx.bulk() as bulk, _BatchWriter(bulk, report, origin, actor) as writer:
            for row in rows:
                if isinstance(row, Problem):
                    report.rejected.append((row.line, row.field, row.reason))
                    continue
                try:
                    record = check_record(row.data, plan)
                except RecordError as exc:
                    report.rejected.append((row.line, exc.field, exc.reason))
                    continue
                key = (record["source"], record["external_id"])
                if key in first_line:
                    report.rejected.append((row.line, "external_id",
                                            f"{key[1]!r} from source {key[0]!r} already appears on line {first_line[key]}"))
                    continue
                first_line[key] = row.line
                batch.append(record)
                if len(batch) >= BATCH:
                    writer.write(prepare(batch))
                    batch = []
            if batch:
                writer.write(prepare(batch))
        return report


#: Columns of a newly ingested signal, in the order the prepared rows hold them; the last
#: three belong to the transaction that writes the batch and are added there.
_COLUMNS = ("id", "external_id", "source", "model_version", "kind", "detected_at", "area", "line", "asset", "category",
            "severity", "severity_rank", "confidence", "title", "detail", "suggested_action", "evidence_url", "extra",
            "status", "status_epoch", "tier", "tier_entered_at", "deadline", "first_deadline", "autonomy", "policy_rule",
            "policy_version", "ingested_at", "updated_at", "updated_hlc")
_STATUS, _TIER, _AUTONOMY, _RULE, _VERSION = (_COLUMNS.index(name) for name in (
    "status", "tier", "autonomy", "policy_rule", "policy_version"))
#: A signal already stored under its (source, external_id) is left as it is and counted as a
#: duplicate: the unique index finds it while inserting, with no lookup of its own.
_INSERT = (f"INSERT INTO signal ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (source, external_id) DO NOTHING")
_TIMES = frozenset({"detected_at", "ingested_at", "tier_entered_at", "deadline", "updated_at", "first_deadline"})
#: Columns whose types change the Python value on the way to SQLite; the preparer does that
#: itself, once per value rather than through a bind processor per column per row.
#: (``confidence`` is a Float, whose processor makes a float: the contract already did.)
_CONVERTED = {"id", "extra", "confidence", *_TIMES}


@dataclass
class _Prepared:
    """A batch ready to store: its records, the driver rows (all but the transaction's own
    columns), the new ids (as text, as sync names them), and which rows the policy lets
    their model act on alone."""

    records: list[dict]
    rows: list[tuple]
    ids: list[str]
    autonomous: list[int]


class _Preparer:
    """Places checked records by the policy and turns them into rows as the driver takes
    them, converting each value exactly as its column type would (ids as 32 hex digits,
    times by ``to_db_text``, ``extra`` by the JSON type's own bind processor): going through
    the Core insert with dicts costs more in parameter processing than SQLite needs to store
    the row. A column type that starts converting values some other way stops ingest with
    an error here, rather than letting it store something different."""

    def __init__(self, ctx: Context) -> None:
        config = ctx.config
        self.clock = ctx.clock
        self.policy, self.calendar, self.top = config.governance, config.calendar, config.top_tier
        self.version = config.governance.version
        dialect = ctx.engine.dialect
        table = Signal.__table__
        for name in _COLUMNS:
            if name not in _CONVERTED and table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise RuntimeError(f"signal.{name} converts its values; ingest's prepared rows would store them unconverted")
        self.json = table.c.extra.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)

    def __call__(self, records: list[dict]) -> _Prepared:
        json, json_none = self.json, self.json(None)
        policy, calendar, top, version = self.policy, self.calendar, self.top, self.version
        now = self.clock.now()
        rows, ids, autonomous = [], [], []
        for r in records:
            placement, start, due = first_window(policy, r, now, top, calendar)
            autonomy = placement.autonomy.value
            signal_id = new_id_text()
            detected = r["detected_at"]
            detected_text = to_db_text(detected)
            due_text = to_db_text(due)
            extra = r["extra"]
            if autonomy == AUTONOMOUS:
                autonomous.append(len(rows))
            rows.append((
                signal_id.replace("-", ""), r["external_id"], r["source"], r["model_version"], r["kind"], detected_text, r["area"],
                r["line"], r["asset"], r["category"], r["severity"], r["severity_rank"], r["confidence"], r["title"],
                r["detail"], r["suggested_action"], r["evidence_url"], json_none if extra is None else json(extra),
                ACTIONED if autonomy == AUTONOMOUS else OPEN, 0, placement.start_tier,
                detected_text if start is detected else to_db_text(start), due_text, due_text, autonomy, placement.rule,
                version,
            ))
            ids.append(signal_id)
        return _Prepared(records, rows, ids, autonomous)


class _BatchWriter:
    """Stores prepared batches on one writer thread, one transaction each, in order.

    ``write`` waits for the batch before (so at most one is in flight, and its error
    surfaces at once), and leaving the block waits for the last one, also when the reading
    side fails: a batch is committed whole or not at all, never abandoned midway."""

    def __init__(self, ctx: Context, report: IngestReport, origin: str, actor: str) -> None:
        self.ctx, self.report, self.origin, self.actor = ctx, report, origin, actor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: Future | None = None

    def __enter__(self) -> "_BatchWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._wait()
        finally:
            self._pool.shutdown()

    def write(self, batch: _Prepared) -> None:
        self._wait()
        self._pending = self._pool.submit(self._store, batch)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _store(self, batch: _Prepared) -> None:
        report = self.report
        with self.ctx.tx(self.actor) as tx:
            connection = tx.session.connection()
            stamp = tx.stamp()
            tail = (to_db_text(tx.now), to_db_text(tx.now), stamp)
            rows = batch.rows
            suspended = set(tx.session.scalars(select(ModelSuspension.source).where(ModelSuspension.resumed_at.is_(None))))
            for i in batch.autonomous:
                if batch.records[i]["source"] in suspended:
                    rows[i] = _without_autonomy(rows[i])
            added = connection.exec_driver_sql(_INSERT, [row + tail for row in rows]).rowcount
            report.duplicates += len(rows) - added
            if not added:
                return
            keep = range(len(rows)) if added == len(rows) else _stored(connection, rows)
            ids = [batch.ids[i] for i in keep]
            kept = set(keep)
            acting = [i for i in batch.autonomous if i in kept and rows[i][_STATUS] == ACTIONED]
            decisions = [_autonomous_decision(batch.records[i], batch.ids[i], rows[i], tx.now, stamp) for i in acting]
            if decisions:
                connection.execute(Decision.__table__.insert(), decisions)
                # each model decision in its signal's own history (local: the ingest mutation carries them)
                tx.record_many(entity="signal", op="decide:act", mutation=None, changes=[
                    Change(d["signal_id"], after={"decision_id": d["id"], "by": d["decided_by"]}) for d in decisions])
            tx.record(entity="signal", entity_id=ids[0], op="ingest", mutation="signal.ingest",
                      args={"signal_ids": ids, "autonomous_decisions": [d["id"] for d in decisions]},
                      after={"origin": self.origin, "count": len(ids), "last_id": ids[-1], "autonomous": len(decisions)},
                      stamp=stamp)
            report.added += len(ids)


def _without_autonomy(row: tuple) -> tuple:
    """A prepared row whose model is suspended: open for a person's sign-off instead."""
    changed = list(row)
    changed[_STATUS], changed[_AUTONOMY] = OPEN, SIGN_OFF
    changed[_RULE] = f"{row[_RULE]} (autonomy suspended)"
    return tuple(changed)


def _autonomous_decision(record: dict, signal_id: str, row: tuple, now: datetime, stamp: str) -> dict:
    """The decision an autonomous model makes alone at ingest, kept for a person's review."""
    action = record["suggested_action"] or "act on its own signal"
    tier, rule, version = row[_TIER], row[_RULE], row[_VERSION]
    return {"id": new_id(), "signal_id": uuid.UUID(signal_id), "source": record["source"], "kind": DecisionKind.ACT.value,
            "rationale": f"autonomous under rule {rule!r}: {action}", "disposition": None,
            "shelved_until": None, "decided_by": f"ai:{record['source']}", "decided_at": now, "tier": tier,
            "meeting_id": None, "policy_version": version,
            "ai_snapshot": jsonable({name: record[name] for name in PAYLOAD}), "supersedes": None, "hlc": stamp}


#: Most ids looked up in one statement (old SQLite builds allow 999 parameters).
_LOOKUP_CHUNK = 500


def _stored(connection, rows: list[tuple]) -> list[int]:
    """The positions of ``rows`` the insert stored (the others were duplicates), found by
    their new ids: asked only when a batch held duplicates."""
    found: set[str] = set()
    ids = [row[0] for row in rows]
    for i in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[i:i + _LOOKUP_CHUNK]
        sql = f"SELECT id FROM signal WHERE id IN ({', '.join('?' * len(chunk))})"
        found.update(value for (value,) in connection.exec_driver_sql(sql, tuple(chunk)))
    return [i for i, signal_id in enumerate(ids) if signal_id in found]
