"""Governance use cases: the sweep of breached windows, the kill switch, and the review
of what autonomous models decided alone (design.md §3).

The sweep is idempotent and safe to run every minute beside kiosks that are writing: it
works in batches of BEGIN IMMEDIATE transactions, each moved signal with its own audit
entry and sync mutation (an escalation, or a reopen for shelving that ended), and a
signal it moved has a new window that is not breached, so running it again at the same
moment finds nothing to do.

A sweep after an outage may move tens of thousands of signals, so it works on plain rows
rather than ORM objects: it reads the columns it needs, computes each signal's new state
in Python (the policy decides its next window), and writes each table with one
executemany per batch (``Tx.record_many`` for the audit entries and mutations).
"""

import gc
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import literal_column, or_, select, text, union_all

from tiermeet.domain import rights
from tiermeet.domain.enums import SignalStatus
from tiermeet.domain.errors import DomainError
from tiermeet.domain.policy import deadline, window_for
from tiermeet.domain.refs import short_ref
from tiermeet.services.context import Context
from tiermeet.services.lookup import load_record
from tiermeet.services.signals import LIFECYCLE, context_packets, deadline_at_tier, facts_of, lifecycle_image, require_text
from tiermeet.services.unit import Change, Tx, insert_many, new_id, update_many
from tiermeet.store.queries import ACTIVE_SQL, AREAS_SQL
from tiermeet.store.models import Decision, DecisionReview, Escalation, ModelSuspension, Signal

SWEEP_ACTOR = "system:sweep"
#: Signals one sweep transaction moves at most: ten thousand take well under a second, so
#: kiosks waiting for the write lock (busy timeout ≥ 5 s) are not turned away, and a
#: backlog after an outage is worked off in several transactions.
BATCH = 10_000
#: The tiers the sweep looks at, and the most (tier, area) boards it merges in one statement.
SWEPT_TIERS = (1, 2, 3, 4)
MAX_BOARDS = 100
BREACH_REASON = "response window breached at tier {tier}"
REVIEW_OUTCOMES = ("confirmed", "overturned")
OPEN = SignalStatus.OPEN.value

_SIGNALS = Signal.__table__
#: What the sweep reads of a signal: its lifecycle (for the audit images and the context
#: packet), what the policy matches on, and where it stands.
_SWEPT = (_SIGNALS.c.id, *(_SIGNALS.c[name] for name in LIFECYCLE), _SIGNALS.c.tier_entered_at,
          *(_SIGNALS.c[name] for name in ("category", "severity", "source", "kind", "area", "line", "confidence")))


@dataclass
class SweepReport:
    """What one sweep did."""

    escalated: list[uuid.UUID] = field(default_factory=list)
    flagged: list[uuid.UUID] = field(default_factory=list)
    unshelved: list[uuid.UUID] = field(default_factory=list)

    def summary(self) -> str:
        """``N escalated, M flagged at the top tier, K back from shelving``."""
        return (f"{len(self.escalated)} escalated, {len(self.flagged)} flagged at the top tier, "
                f"{len(self.unshelved)} back from shelving")


class GovernanceService:
    """The sweep, the kill switch and reviews of autonomous decisions."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ----- the sweep -----
    def sweep(self, at: datetime | None = None) -> SweepReport:
        """Escalate undecided signals (open or acknowledged) whose window closed before
        ``at`` (default now) one tier, flag those already at the top tier, and bring back
        signals whose shelving ended. Actioned signals have their decision: not breached."""
        report = SweepReport()
        at = at or self.ctx.clock.now()
        with _cycle_collector_paused():
            while self._sweep_batch(at, report):
                pass
        return report

    def _sweep_batch(self, at: datetime, report: SweepReport) -> bool:
        """One transaction's worth; False when nothing is left to do. A batch that was not
        full was the last: whatever it moved has a new window still open at ``at``."""
        top = self.ctx.config.top_tier
        with self.ctx.tx(SWEEP_ACTOR) as tx:
            tx.now = at
            breached = _plain(tx.session.execute(_breached(tx.session, at)))
            shelved = _plain(tx.session.execute(
                select(*_SWEPT).where(Signal.status == SignalStatus.SHELVED.value, Signal.shelved_until <= at)
                .order_by(Signal.shelved_until).limit(BATCH)))
            if not breached and not shelved:
                return False
            due = _Deadlines(self.ctx.config, at)
            to_escalate = [s for s in breached if s.tier < top]
            flagged = [s for s in breached if s.tier >= top]
            self._escalate(tx, to_escalate, at, due)
            # A local flag for the plant's own review; the sync protocol does not carry it.
            if flagged:
                update_many(tx.session, _SIGNALS, [{"id": s.id, "flagged_at": at, "updated_at": at} for s in flagged])
            tx.record_many(entity="signal", op="flag", mutation=None,
                           changes=[Change(s.id, after={"flagged_at": at, "tier": s.tier}) for s in flagged])
            self._unshelve(tx, shelved, at, due)
            report.escalated += [s.id for s in to_escalate]
            report.flagged += [s.id for s in flagged]
            report.unshelved += [s.id for s in shelved]
        return len(breached) == BATCH or len(shelved) == BATCH

    def _escalate(self, tx: Tx, signals: Sequence, at: datetime, due: "_Deadlines") -> None:
        """Each signal one tier up, open there with a new window, with its escalation
        record (the context packet of what its tier saw and did)."""
        if not signals:
            return
        packets = context_packets(tx.session, signals, at)
        escalations, updates, changes = [], [], []
        for signal in signals:
            stamp = tx.stamp()
            tier = signal.tier + 1
            # The columns of an Escalation, in its fields' order: the mutation carries them all.
            escalation = {"id": new_id(), "signal_id": signal.id, "from_tier": signal.tier, "to_tier": tier,
                          "reason": BREACH_REASON.format(tier=signal.tier), "automatic": True, "raised_by": SWEEP_ACTOR,
                          "raised_at": at, "context": packets[signal.id], "hlc": stamp}
            moved = {"tier": tier, "status": OPEN, "tier_entered_at": at, "acknowledged_at": None, "acknowledged_by": None,
                     "deadline": due(signal, tier), "updated_at": at, "updated_hlc": stamp}
            before = lifecycle_image(signal)
            escalations.append(escalation)
            updates.append({"id": signal.id, **moved})
            changes.append(Change(signal.id, args={"escalation": escalation}, before=before, after=_after(before, moved),
                                  stamp=stamp))
        insert_many(tx.session, Escalation.__table__, escalations)
        update_many(tx.session, _SIGNALS, updates)
        tx.record_many(entity="signal", op="escalate", mutation="signal.escalate", changes=changes)

    def _unshelve(self, tx: Tx, signals: Sequence, at: datetime, due: "_Deadlines") -> None:
        """Shelving that ended: each signal open again at its tier with a new window. To
        sync it is a reopen, into a new status epoch."""
        if not signals:
            return
        updates, changes = [], []
        for signal in signals:
            stamp = tx.stamp()
            moved = {"status": OPEN, "status_epoch": signal.status_epoch + 1, "shelved_until": None, "acknowledged_at": None,
                     "acknowledged_by": None, "tier_entered_at": at, "deadline": due(signal, signal.tier), "updated_at": at,
                     "updated_hlc": stamp}
            before = lifecycle_image(signal)
            updates.append({"id": signal.id, **moved})
            changes.append(Change(signal.id, args={"signal_id": signal.id, "expected_epoch": signal.status_epoch,
                                                   "reason": "shelving ended"},
                                  before=before, after=_after(before, moved), stamp=stamp))
        update_many(tx.session, _SIGNALS, updates)
        tx.record_many(entity="signal", op="unshelve", mutation="signal.reopen", changes=changes)

    # ----- the kill switch -----
    def suspended_sources(self) -> dict[str, ModelSuspension]:
        """Models whose autonomy is suspended now, with who, when and why."""
        with self.ctx.read() as session:
            return {s.source: s for s in session.scalars(select(ModelSuspension).where(ModelSuspension.resumed_at.is_(None)))}

    def suspend(self, source: str, *, actor: str, reason: str) -> ModelSuspension:
        """Stop a model acting alone: its signals need a person's sign-off until resumed."""
        reason = require_text("the reason", reason)
        with self.ctx.tx(actor) as tx:
            rights.check(self.ctx.config.governance.rights, "suspend_model", role=tx.role, tier=None, who=tx.actor)
            if tx.role is None:
                raise DomainError("only a person may suspend a model's autonomy")
            active = tx.session.scalars(select(ModelSuspension).where(ModelSuspension.source == source,
                                                                      ModelSuspension.resumed_at.is_(None))).first()
            if active is not None:
                raise DomainError(f"{source}'s autonomy is already suspended (by {active.suspended_by} "
                                  f"at {active.suspended_at:%Y-%m-%d %H:%M} UTC)")
            stamp = tx.stamp()
            row = ModelSuspension(id=new_id(), source=source, suspended_by=tx.actor, suspended_at=tx.now, reason=reason, hlc=stamp)
            tx.session.add(row)
            # The kill switch is this plant's own setting; the sync protocol does not carry it yet.
            tx.audit_only(entity="model", entity_id=source, op="suspend", after={"source": source, "reason": reason})
            return row

    def resume(self, source: str, *, actor: str, reason: str) -> ModelSuspension:
        """Give a suspended model its autonomy back."""
        reason = require_text("the reason", reason)
        with self.ctx.tx(actor) as tx:
            rights.check(self.ctx.config.governance.rights, "suspend_model", role=tx.role, tier=None, who=tx.actor)
            row = tx.session.scalars(select(ModelSuspension).where(ModelSuspension.source == source,
                                                                   ModelSuspension.resumed_at.is_(None))).first()
            if row is None:
                raise DomainError(f"{source}'s autonomy is not suspended")
            row.resumed_by, row.resumed_at, row.resume_reason = tx.actor, tx.now, reason
            row.hlc = tx.stamp()
            tx.audit_only(entity="model", entity_id=source, op="resume", after={"source": source, "reason": reason})
            return row

    # ----- reviews of autonomous decisions -----
    def review(self, decision_key: "uuid.UUID | str", *, actor: str, outcome: str, note: str = "",
               meeting_id: uuid.UUID | None = None) -> DecisionReview:
        """A person confirms or overturns what a model decided alone; overturning reopens
        the signal for a person's decision."""
        if outcome not in REVIEW_OUTCOMES:
            raise DomainError(f"a review is confirmed or overturned, not {outcome!r}")
        if outcome == "overturned":
            note = require_text("the reason for overturning", note)
        with self.ctx.tx(actor) as tx:
            decision = load_record(tx.session, Decision, "decision", decision_key)
            if not decision.decided_by.startswith("ai:"):
                raise DomainError(f"decision {short_ref('decision', decision.id)} was made by a person; only a model's decisions are reviewed")
            rights.check(self.ctx.config.governance.rights, "decide", role=tx.role, tier=decision.tier, who=tx.actor)
            if tx.session.get(DecisionReview, decision.id) is not None:
                raise DomainError(f"decision {short_ref('decision', decision.id)} has already been reviewed")
            stamp = tx.stamp()
            review = DecisionReview(decision_id=decision.id, outcome=outcome, reviewed_by=tx.actor, reviewed_at=tx.now,
                                    note=note.strip(), meeting_id=meeting_id, hlc=stamp)
            tx.session.add(review)
            signal = tx.session.get(Signal, decision.signal_id)
            tx.audit_only(entity="signal", entity_id=signal.id, op=f"review:{outcome}",
                          after={"decision_id": decision.id, "outcome": outcome, "note": review.note})
            if outcome == "overturned" and signal.status == SignalStatus.ACTIONED.value:
                # The signal comes back for a person: to sync, a reopen into a new status epoch.
                before = lifecycle_image(signal)
                signal.status = SignalStatus.OPEN.value
                signal.status_epoch += 1
                signal.tier_entered_at = tx.now
                signal.deadline = deadline_at_tier(self.ctx.config, signal, signal.tier, tx.now)
                signal.updated_at, signal.updated_hlc = tx.now, stamp
                tx.record(entity="signal", entity_id=signal.id, op="reopen", mutation="signal.reopen",
                          args={"signal_id": signal.id, "expected_epoch": before["status_epoch"],
                                "reason": f"AI decision overturned: {review.note}"},
                          before=before, after=lifecycle_image(signal), stamp=stamp)
            return review


class _Deadlines:
    """Deadlines of the windows one sweep opens. They all open at the same moment, so a
    deadline depends on the window alone: each is worked out once (an end-of-shift
    window asks the shift calendar), however many signals share it."""

    def __init__(self, config, at: datetime) -> None:
        self.config, self.at = config, at
        self._by_window: dict[str, datetime] = {}

    def __call__(self, signal, tier: int) -> datetime:
        """The deadline of ``signal``'s window at ``tier``, opening at the sweep's moment."""
        window = window_for(self.config.governance, facts_of(signal), tier)
        if window not in self._by_window:
            self._by_window[window] = deadline(window, self.at, self.config.calendar)
        return self._by_window[window]


def _breached(session, at: datetime):
    """The statement for the next signals whose window closed before ``at``, earliest first.

    Read board by board — each (tier, area) with active signals, in the order of the area
    index — and merged, so that only the breached signals are read, not every active one.
    A plant of more boards than one statement merges well is read in one sorted statement."""
    conditions = (text(ACTIVE_SQL), Signal.status != SignalStatus.ACTIONED.value, Signal.deadline < at,
                  # flagged once per stay at the top tier (a reopen starts a new stay)
                  or_(Signal.flagged_at.is_(None), Signal.flagged_at <= Signal.tier_entered_at))
    connection = session.connection()
    boards = [(tier, area) for tier in SWEPT_TIERS for (area,) in connection.exec_driver_sql(AREAS_SQL, (tier,))]
    if not 0 < len(boards) <= MAX_BOARDS:
        return select(*_SWEPT).where(Signal.tier.in_(SWEPT_TIERS), *conditions).order_by(Signal.deadline).limit(BATCH)
    arms = [select(*_SWEPT).where(Signal.tier == tier, Signal.area == area, *conditions) for tier, area in boards]
    return union_all(*arms).order_by(literal_column("deadline")).limit(BATCH)


def _plain(result) -> list[SimpleNamespace]:
    """Result rows as plain objects: each swept signal's columns are read some thirty
    times, and a namespace answers an attribute ten times faster than a result row."""
    return [SimpleNamespace(**row) for row in result.mappings()]


def _after(before: dict, moved: dict) -> dict:
    """The audit's after image: the before image with the moved lifecycle columns."""
    return {name: moved.get(name, value) for name, value in before.items()}


@contextmanager
def _cycle_collector_paused():
    """Python's cycle collector paused for a sweep. A batch makes a few dozen short-lived
    dicts and tuples per signal, none in a reference cycle (reference counting frees
    them), yet every few hundred allocations start a collection that walks the objects
    already alive — a fifth of a large sweep's time. The collector's state is restored
    afterwards, whatever it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
