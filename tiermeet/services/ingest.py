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
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, tuple_

from tiermeet.domain.enums import SignalStatus
from tiermeet.domain.policy import SignalFacts, deadline, place, window_for
from tiermeet.ingest.contract import Plan, RecordError, check_record
from tiermeet.ingest.readers import Problem, Row
from tiermeet.services.context import Context
from tiermeet.services.unit import jsonable, new_id
from tiermeet.store.models import Signal

BATCH = 500
INGEST_ACTOR = "system:ingest"


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
        config = self.ctx.config
        policy, calendar, top = config.governance, config.calendar, config.top_tier
        with self.ctx.tx(actor) as tx:
            keys = [(r["source"], r["external_id"]) for r in records]
            existing = set(tx.session.execute(
                select(Signal.source, Signal.external_id).where(tuple_(Signal.source, Signal.external_id).in_(keys))
            ).all())
            fresh = [r for r in records if (r["source"], r["external_id"]) not in existing]
            report.duplicates += len(records) - len(fresh)
            if not fresh:
                return
            stamp = tx.stamp()
            version = policy.version
            for record in fresh:
                facts = SignalFacts(record["category"], record["severity"], record["source"], record["kind"],
                                    record["area"], record["line"], record["confidence"])
                placement = place(policy, facts, top)
                start = min(record["detected_at"], tx.now)
                record.update(
                    id=new_id(), ingested_at=tx.now, status=SignalStatus.OPEN.value, status_epoch=0,
                    tier=placement.start_tier, tier_entered_at=start,
                    deadline=deadline(window_for(policy, facts, placement.start_tier), start, calendar),
                    autonomy=placement.autonomy.value, policy_rule=placement.rule, policy_version=version,
                    updated_at=tx.now, updated_hlc=stamp,
                )
            tx.session.connection().execute(insert(Signal.__table__), fresh)
            ids = [r["id"] for r in fresh]
            tx.record(entity="signal", entity_id=ids[0], op="ingest", mutation="signal.ingest",
                      args={"signal_ids": ids}, after={"origin": origin, "count": len(ids), "last_id": jsonable(ids[-1])})
            report.added += len(fresh)
