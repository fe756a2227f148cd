"""Bulk ingest of signals: validated rows in, batches of Core inserts out.

Rows are checked one by one (a bad row is reported with its line and never stops the
good ones), then written in batches: each batch is one transaction holding the new
signals, one audit entry and one ``signal.ingest`` sync mutation naming the ids. The
payload of a signal is immutable, so the sync client reads it from the signal table when
it pushes instead of copying it into the outbox. Re-ingesting the same (source,
external_id) is a no-op, counted as a duplicate.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from tiermeet.domain.enums import Autonomy, DecisionKind, SignalStatus
from tiermeet.domain.policy import first_window
from tiermeet.ingest.contract import Plan, RecordError, check_record
from tiermeet.ingest.readers import Problem, Row
from tiermeet.services.context import Context
from tiermeet.services.unit import jsonable, new_id
from tiermeet.services.signals import PAYLOAD
from tiermeet.store.models import Decision, ModelSuspension, Signal
from tiermeet.store.types import to_db_text

BATCH = 2000
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
        first_line: dict[tuple[str, str], int] = {}
        batch: list[dict] = []
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
                self._write(batch, report, origin, actor)
                batch = []
        if batch:
            self._write(batch, report, origin, actor)
        return report

    def _write(self, records: list[dict], report: IngestReport, origin: str, actor: str) -> None:
        with self.ctx.tx(actor) as tx:
            connection = tx.session.connection()
            fast = _SqliteRows.for_dialect(connection.dialect)
            existing = fast.existing(connection, records) if fast else _existing(connection, records)
            fresh = [r for r in records if (r["source"], r["external_id"]) not in existing] if existing else records
            report.duplicates += len(records) - len(fresh)
            if not fresh:
                return
            stamp = tx.stamp()
            placed = self._placements(tx.session, fresh, tx.now)
            version = self.ctx.config.governance.version
            if fast:
                ids, autonomous = fast.insert(connection, placed, tx.now, stamp, version)
            else:
                rows = [_row(p, tx.now, stamp, version) for p in placed]
                connection.execute(insert(Signal.__table__), rows)
                ids, autonomous = [row["id"] for row in rows], [row for row in rows if row["autonomy"] == AUTONOMOUS]
            decisions = [_autonomous_decision(row, tx.now, stamp) for row in autonomous]
            if decisions:
                connection.execute(insert(Decision.__table__), decisions)
                for decision in decisions:  # each model decision in its signal's own history
                    tx.audit_only(entity="signal", entity_id=decision["signal_id"], op="decide:act",
                                  after={"decision_id": decision["id"], "by": decision["decided_by"]})
            tx.record(entity="signal", entity_id=ids[0], op="ingest", mutation="signal.ingest",
                      args={"signal_ids": ids, "autonomous_decisions": [d["id"] for d in decisions]},
                      after={"origin": origin, "count": len(ids), "last_id": jsonable(ids[-1]), "autonomous": len(decisions)},
                      stamp=stamp)
            report.added += len(fresh)

    def _placements(self, session, fresh: list[dict], now: datetime) -> list[tuple]:
        """Where each new signal goes: ``(record, id, status, tier, start, due, autonomy,
        rule)``, placed by the policy (a suspended model loses its autonomy), with its first
        window; autonomous ones are already actioned."""
        config = self.ctx.config
        policy, calendar, top = config.governance, config.calendar, config.top_tier
        suspended = set(session.scalars(select(ModelSuspension.source).where(ModelSuspension.resumed_at.is_(None))))
        placed = []
        for r in fresh:
            placement, start, due = first_window(policy, r, now, top, calendar)
            autonomy, rule = placement.autonomy.value, placement.rule
            if autonomy == AUTONOMOUS and r["source"] in suspended:
                autonomy, rule = SIGN_OFF, f"{rule} (autonomy suspended)"
            placed.append((r, new_id(), ACTIONED if autonomy == AUTONOMOUS else OPEN, placement.start_tier, start, due,
                           autonomy, rule))
        return placed


def _row(placed: tuple, now: datetime, stamp: str, version: str) -> dict:
    """A new signal's row, column by column."""
    r, signal_id, status, tier, start, due, autonomy, rule = placed
    return {**r, "id": signal_id, "ingested_at": now, "status": status, "status_epoch": 0, "tier": tier,
            "tier_entered_at": start, "deadline": due, "first_deadline": due, "autonomy": autonomy, "policy_rule": rule,
            "policy_version": version, "updated_at": now, "updated_hlc": stamp}


def _autonomous_decision(row: dict, now: datetime, stamp: str) -> dict:
    """The decision an autonomous model makes alone at ingest, kept for a person's review."""
    action = row["suggested_action"] or "act on its own signal"
    return {"id": new_id(), "signal_id": row["id"], "kind": DecisionKind.ACT.value,
            "rationale": f"autonomous under rule {row['policy_rule']!r}: {action}", "disposition": None,
            "shelved_until": None, "decided_by": f"ai:{row['source']}", "decided_at": now, "tier": row["tier"],
            "meeting_id": None, "policy_version": row["policy_version"],
            "ai_snapshot": jsonable({name: row[name] for name in PAYLOAD}), "supersedes": None, "hlc": stamp}


def _existing(connection, records: list[dict]) -> set[tuple[str, str]]:
    """The (source, external_id) pairs of ``records`` already stored, asked per source.

    ``source = ? AND external_id IN (...)`` is answered from the unique index; a row-value
    ``(source, external_id) IN (...)`` makes SQLite scan the whole index, which on a table
    of a million signals costs more than the insert."""
    found: set[tuple[str, str]] = set()
    for source, chunk in _by_source(records):
        found.update(connection.execute(
            select(Signal.source, Signal.external_id).where(Signal.source == source, Signal.external_id.in_(chunk))
        ).all())
    return found


#: Most external ids looked up in one statement (old SQLite builds allow 999 parameters).
_LOOKUP_CHUNK = 500


def _by_source(records: list[dict]):
    """(source, up to _LOOKUP_CHUNK external ids of that source), covering ``records``."""
    by_source: dict[str, list[str]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record["external_id"])
    for source, external_ids in by_source.items():
        for i in range(0, len(external_ids), _LOOKUP_CHUNK):
            yield source, external_ids[i:i + _LOOKUP_CHUNK]


#: Columns of a newly ingested signal, in the order ``_SqliteRows.insert`` writes them.
_COLUMNS = ("id", "external_id", "source", "model_version", "kind", "detected_at", "ingested_at", "area", "line",
            "asset", "category", "severity", "severity_rank", "confidence", "title", "detail", "suggested_action",
            "evidence_url", "extra", "status", "status_epoch", "tier", "tier_entered_at", "deadline", "autonomy",
            "policy_rule", "policy_version", "updated_at", "updated_hlc", "first_deadline")
_TIMES = frozenset({"detected_at", "ingested_at", "tier_entered_at", "deadline", "updated_at", "first_deadline"})
#: Columns whose types change the Python value on the way to SQLite; ``_SqliteRows`` does
#: that itself, once per value rather than through a bind processor per column per row.
#: (``confidence`` is a Float, whose processor makes a float: the contract already did.)
_CONVERTED = {"id", "extra", "confidence", *_TIMES}


class _SqliteRows:
    """The SQLite write path: rows as the driver takes them, one prepared INSERT compiled
    from the Signal table, run with ``executemany`` on the session's connection (so in the
    transaction that also writes the audit entry and the outbox mutation).

    Going through the Core insert with dicts costs about 7 µs per row in parameter
    processing alone (UUID to hex, datetime to text, JSON), more than SQLite needs to store
    the row. Here each value is converted once, exactly as the column type would convert
    it: ids as 32 hex digits, times by ``to_db_text``, ``extra`` by the JSON type's own bind
    processor. A column type that starts converting values some other way makes this path
    step aside (``for_dialect`` returns None) rather than store something different."""

    _by_dialect: dict[str, "_SqliteRows | None"] = {}

    def __init__(self, dialect) -> None:
        table = Signal.__table__
        compiled = insert(table).compile(dialect=dialect, column_keys=list(_COLUMNS))
        if tuple(compiled.positiontup or ()) != _COLUMNS:
            raise ValueError("the compiled INSERT does not take the columns in _COLUMNS order")
        for name in _COLUMNS:
            if name not in _CONVERTED and table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"column {name} converts its values")
        self.sql = compiled.string
        self.json = table.c.extra.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
        self.json_none = self.json(None)

    @classmethod
    def for_dialect(cls, dialect) -> "_SqliteRows | None":
        """The SQLite write path, or None where the Core insert is used as it is."""
        if dialect.name != "sqlite":
            return None
        if dialect.name not in cls._by_dialect:
            try:
                cls._by_dialect[dialect.name] = cls(dialect)
            except ValueError:
                cls._by_dialect[dialect.name] = None
        return cls._by_dialect[dialect.name]

    def existing(self, connection, records: list[dict]) -> set[tuple[str, str]]:
        """``_existing``, without compiling a statement per batch."""
        found: set[tuple[str, str]] = set()
        for source, chunk in _by_source(records):
            sql = f"SELECT source, external_id FROM signal WHERE source = ? AND external_id IN ({', '.join('?' * len(chunk))})"
            found.update(connection.exec_driver_sql(sql, (source, *chunk)).all())
        return found

    def insert(self, connection, placed: list[tuple], now: datetime, stamp: str, version: str) -> tuple[list, list[dict]]:
        """Insert the placed signals; returns their ids and the rows of the autonomous ones."""
        json, json_none = self.json, self.json_none
        now_text = to_db_text(now)
        ids, autonomous, rows = [], [], []
        for p in placed:
            r, signal_id, status, tier, start, due, autonomy, rule = p
            detected = r["detected_at"]
            detected_text = to_db_text(detected)
            due_text = to_db_text(due)
            extra = r["extra"]
            rows.append((
                signal_id.hex, r["external_id"], r["source"], r["model_version"], r["kind"], detected_text, now_text,
                r["area"], r["line"], r["asset"], r["category"], r["severity"], r["severity_rank"], r["confidence"],
                r["title"], r["detail"], r["suggested_action"], r["evidence_url"],
                json_none if extra is None else json(extra), status, 0, tier,
                detected_text if start is detected else to_db_text(start), due_text,
                autonomy, rule, version, now_text, stamp, due_text,
            ))
            ids.append(signal_id)
            if autonomy == AUTONOMOUS:
                autonomous.append(_row(p, now, stamp, version))
        connection.exec_driver_sql(self.sql, rows)
        return ids, autonomous
