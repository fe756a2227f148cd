"""Signal use cases: acknowledge, decide, escalate, resolve, reopen (design.md §2).

Each call loads the signal, asks the domain lifecycle whether the move is allowed, applies
it, and records audit + outbox in the same transaction. Decisions keep a snapshot of the
AI output as it was when decided; escalations carry a context packet of what the lower
tier saw and did.
"""

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tiermeet.domain import rights
from tiermeet.domain.durations import parse_duration
from tiermeet.domain.enums import DecisionKind, Disposition, SignalStatus
from tiermeet.domain.errors import DomainError
from tiermeet.domain.lifecycle import next_signal_status, signal_verb_for_decision
from tiermeet.domain.policy import SignalFacts, response_deadline
from tiermeet.domain.refs import short_ref
from tiermeet.ingest.contract import PAYLOAD
from tiermeet.services.context import Context
from tiermeet.services.lookup import find_person, load_record
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.services.unit import Tx, jsonable, new_id
from tiermeet.settings import Config
from tiermeet.store.models import Action, Comment, Decision, Escalation, Signal

#: Lifecycle columns shown in audit before/after images.
LIFECYCLE = ("status", "status_epoch", "tier", "deadline", "acknowledged_by", "shelved_until", "disposition", "resolved_at")

MAX_TEXT = 10_000


def facts_of(signal: Signal) -> SignalFacts:
    """What the policy matches on, from a stored signal."""
    return SignalFacts(signal.category, signal.severity, signal.source, signal.kind, signal.area, signal.line, signal.confidence)


def lifecycle_image(signal: Signal) -> dict:
    """The signal's lifecycle fields, for audit before/after."""
    return {name: getattr(signal, name) for name in LIFECYCLE}


def snapshot(signal: Signal) -> dict:
    """The AI output as it stands, kept with a decision."""
    return {name: getattr(signal, name) for name in PAYLOAD}


def require_text(field: str, value: str | None, *, limit: int = MAX_TEXT) -> str:
    """Trimmed text that must be present and within ``limit`` characters."""
    text = (value or "").strip()
    if not text:
        raise DomainError(f"{field} is required")
    if len(text) > limit:
        raise DomainError(f"{field} is {len(text)} characters; the limit is {limit}")
    return text


def load_signal(session: Session, key: "uuid.UUID | str") -> Signal:
    """A signal by id or short reference (``S-1a2b3c4d``), or a DomainError."""
    return load_record(session, Signal, "signal", key)


def deadline_at_tier(config: Config, signal: Signal, tier: int, start: datetime) -> datetime:
    """When the response window of ``signal`` at ``tier`` closes, if it got there at ``start``."""
    return response_deadline(config.governance, facts_of(signal), tier, start, config.calendar)


class SignalService:
    """Moves signals through their lifecycle."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def get(self, key: "uuid.UUID | str") -> Signal:
        """One signal by id or short reference."""
        with self.ctx.read() as session:
            return load_signal(session, key)

    def _move(self, tx: Tx, signal: Signal, verb: str) -> SignalStatus:
        ref = short_ref("signal", signal.id)
        return next_signal_status(verb, SignalStatus(signal.status), ref)

    def _touch(self, tx: Tx, signal: Signal, stamp: str) -> None:
        signal.updated_at = tx.now
        signal.updated_hlc = stamp

    def acknowledge(self, key: "uuid.UUID | str", *, actor: str, note: str = "") -> Signal:
        """Someone has seen the signal; the clock keeps running until a decision."""
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            before = lifecycle_image(signal)
            signal.status = self._move(tx, signal, "acknowledge")
            signal.acknowledged_at, signal.acknowledged_by = tx.now, tx.actor
            signal.first_acknowledged_at = signal.first_acknowledged_at or tx.now
            stamp = tx.record(entity="signal", entity_id=signal.id, op="acknowledge", mutation="signal.acknowledge",
                              args={"signal_id": signal.id, "note": note}, before=before, after=lifecycle_image(signal))
            self._touch(tx, signal, stamp)
            return signal

    def decide(
        self,
        key: "uuid.UUID | str",
        *,
        actor: str,
        kind: DecisionKind,
        rationale: str = "",
        disposition: Disposition | None = None,
        shelve_until: datetime | None = None,
        action: ActionSpec | None = None,
        meeting_id: uuid.UUID | None = None,
    ) -> Decision:
        """Record a decision; dismiss needs a disposition, shelve a future time and reason,
        escalate a reason. ``act`` may create an action with an owner and a due time."""
        kind = DecisionKind(kind)
        if kind in (DecisionKind.DISMISS, DecisionKind.SHELVE, DecisionKind.ESCALATE):
            rationale = require_text("the reason", rationale)
        elif len(rationale) > MAX_TEXT:
            raise DomainError(f"the rationale is {len(rationale)} characters; the limit is {MAX_TEXT}")
        if kind is DecisionKind.DISMISS and disposition is None:
            raise DomainError("dismissing needs a disposition: false_positive, duplicate or not_actionable")
        if kind is not DecisionKind.DISMISS and disposition is not None:
            raise DomainError("a disposition is only recorded when dismissing")
        if kind is not DecisionKind.ACT and action is not None:
            raise DomainError("only an 'act' decision creates an action")
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            if kind is DecisionKind.SHELVE:
                if shelve_until is not None and shelve_until.tzinfo is None:
                    raise DomainError("shelving needs an end time with a time zone")
                if shelve_until is None or shelve_until <= tx.now:
                    raise DomainError("shelving needs an end time in the future")
            verb = signal_verb_for_decision(kind)
            new_status = self._move(tx, signal, verb)
            self._check_rights(tx, signal, kind, shelve_until)
            if kind is DecisionKind.ESCALATE:
                self._check_can_escalate(signal)
            before = lifecycle_image(signal)
            stamp = tx.stamp()
            decision = Decision(
                id=new_id(), signal_id=signal.id, source=signal.source, kind=kind.value, rationale=rationale.strip(),
                disposition=Disposition(disposition).value if disposition else None,
                shelved_until=shelve_until if kind is DecisionKind.SHELVE else None,
                decided_by=tx.actor, decided_at=tx.now, tier=signal.tier, meeting_id=meeting_id,
                policy_version=self.ctx.config.governance.version, ai_snapshot=jsonable(snapshot(signal)), hlc=stamp,
            )
            tx.session.add(decision)
            tx.session.flush()
            created = None
            if action is not None:
                created = _new_action(tx, action, signal_id=signal.id, decision_id=decision.id, stamp=stamp)
            if tx.role is not None:
                signal.first_decided_at = signal.first_decided_at or tx.now
            if kind is DecisionKind.ESCALATE:
                escalation = self._raise(tx, signal, rationale.strip(), automatic=False, stamp=stamp)
            else:
                signal.status = new_status
                if kind is DecisionKind.DISMISS:
                    signal.disposition = decision.disposition
                if kind is DecisionKind.SHELVE:
                    signal.shelved_until = shelve_until
            args = {"decision": fields_of(decision)}
            if created is not None:
                args["action"] = fields_of(created)
            if kind is DecisionKind.ESCALATE:
                args["escalation"] = fields_of(escalation)
            tx.record(entity="signal", entity_id=signal.id, op=f"decide:{kind.value}", mutation="signal.decide",
                      args=args, before=before, after=lifecycle_image(signal) | {"decision_id": decision.id}, stamp=stamp)
            self._touch(tx, signal, stamp)
            return decision

    def escalate(self, key: "uuid.UUID | str", *, actor: str, reason: str, automatic: bool = False) -> Escalation:
        """Move the signal to the next tier, open there, with a reason and a context packet."""
        reason = require_text("the reason", reason)
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            self._move(tx, signal, "escalate")
            self._check_can_escalate(signal)
            rights.check(self.ctx.config.governance.rights, "decide", role=tx.role, tier=signal.tier, who=tx.actor)
            if tx.role is not None:
                signal.first_decided_at = signal.first_decided_at or tx.now
            before = lifecycle_image(signal)
            stamp = tx.stamp()
            escalation = self._raise(tx, signal, reason, automatic=automatic, stamp=stamp)
            tx.record(entity="signal", entity_id=signal.id, op="escalate", mutation="signal.escalate",
                      args={"escalation": fields_of(escalation)}, before=before, after=lifecycle_image(signal), stamp=stamp)
            self._touch(tx, signal, stamp)
            return escalation

    def _check_rights(self, tx: Tx, signal: Signal, kind: DecisionKind, shelve_until: datetime | None) -> None:
        """The role rules: deciding at this tier, closing (dismiss), shelving and its limit."""
        policy = self.ctx.config.governance.rights
        rights.check(policy, "decide", role=tx.role, tier=signal.tier, who=tx.actor)
        if kind is DecisionKind.DISMISS:
            rights.check(policy, "close", role=tx.role, tier=signal.tier, who=tx.actor)
        if kind is DecisionKind.SHELVE:
            rights.check(policy, "shelve", role=tx.role, tier=signal.tier, who=tx.actor)
            if shelve_until - tx.now > parse_duration(policy.max_shelve):
                raise DomainError(f"shelving is limited to {policy.max_shelve} (rule governance.rights.max_shelve); "
                                  "pick an earlier end, or escalate it")

    def _check_can_escalate(self, signal: Signal) -> None:
        top = self.ctx.config.top_tier
        if signal.tier >= top:
            raise DomainError(f"signal {short_ref('signal', signal.id)} is already at tier {signal.tier}, the top tier of this plant")

    def _raise(self, tx: Tx, signal: Signal, reason: str, *, automatic: bool, stamp: str) -> Escalation:
        packet = context_packets(tx.session, [signal], tx.now)[signal.id]
        escalation = Escalation(
            id=new_id(), signal_id=signal.id, from_tier=signal.tier, to_tier=signal.tier + 1, reason=reason,
            automatic=automatic, raised_by=tx.actor, raised_at=tx.now, context=packet, hlc=stamp,
        )
        tx.session.add(escalation)
        signal.tier += 1
        signal.status = SignalStatus.OPEN.value
        signal.tier_entered_at = tx.now
        signal.acknowledged_at = signal.acknowledged_by = None
        signal.deadline = deadline_at_tier(self.ctx.config, signal, signal.tier, tx.now)
        return escalation

    def resolve(self, key: "uuid.UUID | str", *, actor: str, outcome: Outcome) -> Signal:
        """Close the signal with what acting on it achieved."""
        for name in ("downtime_minutes_avoided", "scrap_avoided"):
            value = getattr(outcome, name)
            if value is not None and value < 0:
                raise DomainError(f"{name.replace('_', ' ')} cannot be negative")
        if len(outcome.note) > MAX_TEXT:
            raise DomainError(f"the outcome note is {len(outcome.note)} characters; the limit is {MAX_TEXT}")
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            before = lifecycle_image(signal)
            signal.status = self._move(tx, signal, "resolve")
            rights.check(self.ctx.config.governance.rights, "close", role=tx.role, tier=signal.tier, who=tx.actor)
            signal.resolved_at = tx.now
            signal.outcome = {**outcome.__dict__, "note": outcome.note.strip()}
            stamp = tx.record(entity="signal", entity_id=signal.id, op="resolve", mutation="signal.resolve",
                              args={"signal_id": signal.id, "outcome": signal.outcome}, before=before, after=lifecycle_image(signal))
            self._touch(tx, signal, stamp)
            return signal

    def unshelve(self, key: "uuid.UUID | str", *, actor: str) -> Signal:
        """Bring a shelved signal back to the board before its time; its window starts again."""
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            before = lifecycle_image(signal)
            signal.status = self._move(tx, signal, "unshelve")
            signal.status_epoch += 1  # back from shelving: a new status epoch, like a reopen
            signal.shelved_until = None
            signal.tier_entered_at = tx.now
            signal.deadline = deadline_at_tier(self.ctx.config, signal, signal.tier, tx.now)
            stamp = tx.record(entity="signal", entity_id=signal.id, op="unshelve", mutation="signal.reopen",
                              args={"signal_id": signal.id, "expected_epoch": before["status_epoch"], "reason": "unshelved"},
                              before=before, after=lifecycle_image(signal))
            self._touch(tx, signal, stamp)
            return signal

    def reopen(self, key: "uuid.UUID | str", *, actor: str, reason: str) -> Signal:
        """Explicitly bring a closed or shelved signal back, in a new status epoch."""
        reason = require_text("the reason", reason)
        with self.ctx.tx(actor) as tx:
            signal = load_signal(tx.session, key)
            before = lifecycle_image(signal)
            signal.status = self._move(tx, signal, "reopen")
            rights.check(self.ctx.config.governance.rights, "reopen", role=tx.role, tier=signal.tier, who=tx.actor)
            signal.status_epoch += 1
            signal.disposition = signal.shelved_until = signal.resolved_at = None
            signal.acknowledged_at = signal.acknowledged_by = None
            signal.tier_entered_at = tx.now
            signal.deadline = deadline_at_tier(self.ctx.config, signal, signal.tier, tx.now)
            stamp = tx.record(entity="signal", entity_id=signal.id, op="reopen", mutation="signal.reopen",
                              args={"signal_id": signal.id, "expected_epoch": before["status_epoch"], "reason": reason},
                              before=before, after=lifecycle_image(signal) | {"reason": reason})
            self._touch(tx, signal, stamp)
            return signal


def fields_of(record) -> dict:
    """All columns of a new record, as the args of the mutation that created it."""
    return {name: getattr(record, name) for name in type(record).model_fields}


def _new_action(tx: Tx, spec: ActionSpec, *, signal_id: uuid.UUID | None, decision_id: uuid.UUID | None, stamp: str) -> Action:
    owner = find_person(tx.session, spec.owner)
    if spec.due_at.tzinfo is None:
        raise DomainError("the due time needs a time zone")
    if spec.due_at <= tx.now:
        raise DomainError("the due time is in the past; pick a time from now on")
    action = Action(
        id=new_id(), signal_id=signal_id, decision_id=decision_id, title=require_text("the action title", spec.title, limit=200),
        owner_id=owner.id, due_at=spec.due_at, created_by=tx.actor, created_at=tx.now, updated_at=tx.now, updated_hlc=stamp,
    )
    tx.session.add(action)
    return action


def context_packets(session: Session, signals: list, now: datetime) -> dict:
    """What each signal's current tier saw and did with it, carried up with an escalation;
    keyed by signal id. Three queries for any number of signals (the sweep escalates
    thousands at once)."""
    ids = [s.id for s in signals]
    decisions, actions, comments = defaultdict(list), defaultdict(list), defaultdict(list)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        for d in session.scalars(select(Decision).where(Decision.signal_id.in_(chunk)).order_by(Decision.decided_at)):
            decisions[d.signal_id].append(d)
        for a in session.scalars(select(Action).where(Action.signal_id.in_(chunk)).order_by(Action.created_at)):
            actions[a.signal_id].append(a)
        for c in session.scalars(select(Comment).where(Comment.target == "signal", Comment.target_id.in_(chunk))
                                 .order_by(Comment.created_at)):
            comments[c.target_id].append(c)
    return {s.id: jsonable({
        "from_tier": s.tier,
        "status": s.status,
        "at_tier_since": s.tier_entered_at,
        "deadline": s.deadline,
        "window_breached": now > s.deadline,
        "acknowledged_by": s.acknowledged_by,
        "decisions": [{"kind": d.kind, "by": d.decided_by, "at": d.decided_at, "rationale": d.rationale}
                      for d in decisions[s.id] if d.tier == s.tier],
        "actions": [{"title": a.title, "owner": a.owner_id, "status": a.status, "due_at": a.due_at} for a in actions[s.id]],
        "comments": [{"by": c.author_id, "at": c.created_at, "body": c.body}
                     for c in comments[s.id] if c.created_at >= s.tier_entered_at],
    }) for s in signals}
