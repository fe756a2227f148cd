"""Read models for the app's views: a signal's full story, actions by owner, escalations
that came up today, and what a shift hands over. Read-only; one short transaction each."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tiermeet.domain.enums import ACTIVE_STATUSES, ActionStatus, SignalStatus
from tiermeet.services.board import BoardService
from tiermeet.services.context import Context
from tiermeet.services.lookup import load_record
from tiermeet.store.models import Action, AuditEntry, Comment, Decision, DecisionReview, Escalation, Person, Signal
from tiermeet.store.queries import Scope

ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
#: Action statuses that still need someone (done waits for verification).
OPEN_ACTIONS = (ActionStatus.OPEN.value, ActionStatus.IN_PROGRESS.value, ActionStatus.DONE.value)


@dataclass(frozen=True)
class SignalStory:
    """Everything known about one signal, for the detail pane."""

    signal: Signal
    decisions: list[Decision]
    actions: list[Action]
    escalations: list[Escalation]
    comments: list[Comment]
    audit: list[AuditEntry]
    names: dict[str, str]


@dataclass(frozen=True)
class ActionRow:
    """An open action with its owner's name and what it is about."""

    action: Action
    owner_name: str
    signal_title: str | None
    overdue: bool


@dataclass(frozen=True)
class EscalationRow:
    """An escalation that arrived at this tier, with its signal."""

    escalation: Escalation
    signal: Signal


@dataclass(frozen=True)
class AgendaItem:
    """One line of a meeting's agenda: a signal to decide on, or an overdue action."""

    section: str
    signal: Signal | None = None
    action: ActionRow | None = None
    decision: Decision | None = None


#: SQDC(+P) order in which a meeting walks its signals.
SQDC = ("safety", "quality", "delivery", "cost", "people")


def _names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Person.id, Person.name)).all())


def scope_condition(scope: Scope):
    """The SQL condition that keeps signals in ``scope``'s line or area (None: the plant)."""
    if scope.line is not None:
        return Signal.line == scope.line
    if scope.area is not None:
        return Signal.area == scope.area
    return None


class ViewService:
    """What the app's screens show."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def story(self, key: "uuid.UUID | str") -> SignalStory:
        """A signal with its decisions, actions, escalations, comments and audit history."""
        with self.ctx.read() as session:
            signal = load_record(session, Signal, "signal", key)
            sid = signal.id
            return SignalStory(
                signal=signal,
                decisions=list(session.scalars(select(Decision).where(Decision.signal_id == sid).order_by(Decision.hlc))),
                actions=list(session.scalars(select(Action).where(Action.signal_id == sid).order_by(Action.created_at))),
                escalations=list(session.scalars(select(Escalation).where(Escalation.signal_id == sid).order_by(Escalation.raised_at))),
                comments=list(session.scalars(select(Comment).where(Comment.target == "signal", Comment.target_id == sid).order_by(Comment.hlc))),
                audit=list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "signal", AuditEntry.entity_id == str(sid)).order_by(AuditEntry.hlc))),
                names=_names(session),
            )

    def open_actions(self, scope: Scope, now: datetime) -> list[ActionRow]:
        """Open actions in scope: overdue first, then by owner and due time."""
        with self.ctx.read() as session:
            stmt = (select(Action, Person.name, Signal.title).join(Person, Person.id == Action.owner_id)
                    .outerjoin(Signal, Signal.id == Action.signal_id).where(Action.status.in_(OPEN_ACTIONS)))
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(or_(condition, Action.signal_id.is_(None)))
            rows = [ActionRow(a, name, title, a.due_at < now and a.status != ActionStatus.DONE.value)
                    for a, name, title in session.execute(stmt)]
        return sorted(rows, key=lambda r: (not r.overdue, r.owner_name, r.action.due_at))

    def escalations_in(self, tier: int, scope: Scope, since: datetime) -> list[EscalationRow]:
        """Escalations that reached ``tier`` in scope since ``since``, newest first."""
        with self.ctx.read() as session:
            stmt = (select(Escalation, Signal).join(Signal, Signal.id == Escalation.signal_id)
                    .where(Escalation.to_tier == tier, Escalation.raised_at >= since).order_by(Escalation.raised_at.desc()))
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(condition)
            return [EscalationRow(e, s) for e, s in session.execute(stmt)]

    def autonomous_to_review(self, tier: int, scope: Scope, limit: int = 50) -> list[tuple[Decision, Signal]]:
        """Decisions autonomous models made alone at this tier and scope, not yet reviewed."""
        with self.ctx.read() as session:
            stmt = (select(Decision, Signal).join(Signal, Signal.id == Decision.signal_id)
                    .outerjoin(DecisionReview, DecisionReview.decision_id == Decision.id)
                    .where(Decision.decided_by.like("ai:%"), DecisionReview.decision_id.is_(None), Decision.tier == tier))
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(condition)
            return [(d, s) for d, s in session.execute(stmt.order_by(Decision.decided_at).limit(limit))]

    def active_sources(self, scope: Scope) -> list[str]:
        """The models with active signals on a board, for its source filter."""
        with self.ctx.read() as session:
            stmt = select(Signal.source).where(Signal.status.in_(ACTIVE)).distinct()
            if scope.tier is not None:
                stmt = stmt.where(Signal.tier == scope.tier)
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(condition)
            return sorted(session.scalars(stmt))

    def agenda(self, tier: int, scope: Scope, now: datetime, zone) -> list[AgendaItem]:
        """A meeting's agenda: signals by SQDC category, then escalations in today, then
        overdue actions, then shelved signals due for review before tomorrow."""
        board = BoardService(self.ctx).page(scope, limit=200)
        escalated = self.escalations_in(tier, scope, local_midnight(now, zone))
        escalated_ids = {row.signal.id for row in escalated}
        items = [AgendaItem(s.category.capitalize(), signal=s)
                 for s in sorted((s for s in board if s.id not in escalated_ids), key=lambda s: SQDC.index(s.category))]
        seen: set = set()
        for row in escalated:
            if row.signal.id not in seen and row.signal.tier == tier and row.signal.status in ACTIVE:
                seen.add(row.signal.id)
                items.append(AgendaItem("Escalations in", signal=row.signal))
        items += [AgendaItem("AI decided alone — review", signal=s, decision=d)
                  for d, s in self.autonomous_to_review(tier, scope)]
        items += [AgendaItem("Overdue actions", action=row) for row in self.open_actions(scope, now) if row.overdue]
        items += [AgendaItem("Shelved, due for review", signal=s) for s in self.shelved_for_review(scope, now + timedelta(days=1))]
        return items

    def shelved_for_review(self, scope: Scope, until: datetime) -> list[Signal]:
        """Shelved signals in scope whose shelving ends before ``until``: up for review."""
        with self.ctx.read() as session:
            stmt = select(Signal).where(Signal.status == SignalStatus.SHELVED.value, Signal.shelved_until <= until)
            if scope.tier is not None:
                stmt = stmt.where(Signal.tier == scope.tier)
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(condition)
            return list(session.scalars(stmt.order_by(Signal.shelved_until).limit(200)))

    def handover(self, scope: Scope, now: datetime) -> tuple[list[tuple[Signal, str | None]], list[ActionRow]]:
        """Everything still open: active signals with the owner of their latest open action,
        and open actions, for the shift that takes over."""
        with self.ctx.read() as session:
            stmt = select(Signal).where(Signal.status.in_(ACTIVE))
            if scope.tier is not None:
                stmt = stmt.where(Signal.tier == scope.tier)
            condition = scope_condition(scope)
            if condition is not None:
                stmt = stmt.where(condition)
            signals = list(session.scalars(stmt.order_by(Signal.deadline, Signal.severity_rank).limit(500)))
            owners: dict[uuid.UUID, str] = {}
            if signals:
                for sid, name in session.execute(
                    select(Action.signal_id, Person.name).join(Person, Person.id == Action.owner_id)
                    .where(and_(Action.signal_id.in_([s.id for s in signals]), Action.status.in_(OPEN_ACTIONS)))
                    .order_by(Action.created_at)
                ):
                    owners[sid] = name
        return [(s, owners.get(s.id)) for s in signals], self.open_actions(scope, now)


def local_midnight(now: datetime, zone) -> datetime:
    """The start of the plant's local day containing ``now``."""
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
