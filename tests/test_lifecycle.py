"""Signal and action lifecycles: every allowed move, and every refusal with its message.

First the pure rules (every verb × every status), then the main moves through the
services on a real database file, where the refusal must also leave the record alone.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import NOW
from tiermeet.domain.enums import ActionStatus, DecisionKind, Disposition, SignalStatus
from tiermeet.domain.errors import DomainError
from tiermeet.domain.lifecycle import ACTION_VERBS, SIGNAL_VERBS, next_action_status, next_signal_status
from tiermeet.domain.refs import short_ref
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.store.models import Action, Decision, Escalation, Signal

S = SignalStatus
A = ActionStatus
REF = "S-1a2b3c4d"
AREF = "A-1a2b3c4d"

# --------------------------------------------------------------------------------------
# Pure domain: the whole signal matrix, written out by hand from design.md §2.
# --------------------------------------------------------------------------------------

DECIDE_VERBS = ("decide:act", "decide:monitor", "decide:dismiss", "decide:shelve", "decide:escalate", "escalate")
DECIDE_TARGET = {
    "decide:act": S.ACTIONED,
    "decide:monitor": S.ACTIONED,
    "decide:dismiss": S.DISMISSED,
    "decide:shelve": S.SHELVED,
    "decide:escalate": S.OPEN,
    "escalate": S.OPEN,
}
CLOSED_ADVICE = {
    S.RESOLVED: f"signal {REF} is resolved; reopen it first",
    S.DISMISSED: f"signal {REF} is dismissed; reopen it first",
    S.SHELVED: f"signal {REF} is shelved; unshelve or reopen it first",
}


def _signal_matrix():
    """(verb, from, expected) where expected is the new status or the refusal message."""
    rows = []
    # acknowledge: only an open signal.
    rows += [
        ("acknowledge", S.OPEN, S.ACKNOWLEDGED),
        ("acknowledge", S.ACKNOWLEDGED, f"signal {REF} is already acknowledged"),
        ("acknowledge", S.ACTIONED, f"signal {REF} is already actioned"),
    ]
    rows += [("acknowledge", s, msg) for s, msg in CLOSED_ADVICE.items()]
    # decisions and escalation: from any active status.
    for verb in DECIDE_VERBS:
        rows += [(verb, s, DECIDE_TARGET[verb]) for s in (S.OPEN, S.ACKNOWLEDGED, S.ACTIONED)]
        rows += [(verb, s, msg) for s, msg in CLOSED_ADVICE.items()]
    # resolve: after someone has looked at it.
    rows += [
        ("resolve", S.OPEN, f"signal {REF} is open; cannot resolve it yet — record a decision first"),
        ("resolve", S.ACKNOWLEDGED, f"signal {REF} is acknowledged; cannot resolve it yet — record a decision first"),
        ("resolve", S.ACTIONED, S.RESOLVED),
    ]
    rows += [("resolve", s, msg) for s, msg in CLOSED_ADVICE.items()]
    # unshelve: only a shelved signal.
    rows += [("unshelve", s, f"signal {REF} is {s.value}, not shelved") for s in S if s is not S.SHELVED]
    rows += [("unshelve", S.SHELVED, S.OPEN)]
    # reopen: only a closed or shelved one.
    rows += [
        ("reopen", s, f"signal {REF} is {s.value}; only resolved, dismissed or shelved signals can be reopened")
        for s in (S.OPEN, S.ACKNOWLEDGED, S.ACTIONED)
    ]
    rows += [("reopen", s, S.OPEN) for s in (S.RESOLVED, S.DISMISSED, S.SHELVED)]
    return rows


SIGNAL_MATRIX = _signal_matrix()


def test_signal_matrix_covers_every_verb_and_status():
    assert {(verb, status) for verb, status, _ in SIGNAL_MATRIX} == {(v, s) for v in SIGNAL_VERBS for s in S}
    assert len(SIGNAL_MATRIX) == len(SIGNAL_VERBS) * len(S)


@pytest.mark.parametrize(("verb", "status", "expected"), SIGNAL_MATRIX, ids=lambda v: getattr(v, "value", str(v))[:30])
def test_signal_transition(verb, status, expected):
    if isinstance(expected, SignalStatus):
        assert next_signal_status(verb, status, REF) is expected
    else:
        with pytest.raises(DomainError) as caught:
            next_signal_status(verb, status, REF)
        assert str(caught.value) == expected
        assert caught.value.message == expected


def test_resolving_an_acknowledged_signal_needs_a_decision_first():
    with pytest.raises(DomainError, match="record a decision first"):
        next_signal_status("resolve", S.ACKNOWLEDGED, REF)


# --------------------------------------------------------------------------------------
# Pure domain: the action matrix.
# --------------------------------------------------------------------------------------

ACTION_ADVICE = {
    A.OPEN: "start it or mark it done",
    A.IN_PROGRESS: "mark it done or cancel it",
    A.DONE: "verify it, or reopen it to change it",
    A.VERIFIED: "reopen it first",
    A.CANCELLED: "reopen it first",
}
#: How each verb reads in "cannot … it" (what a shift lead would say).
ACTION_PHRASE = {
    "start": "start it",
    "done": "mark it done",
    "verify": "verify it",
    "cancel": "cancel it",
    "reassign": "reassign it",
    "change_due": "change its due time",
    "reopen": "reopen it",
}
ACTION_ALLOWED = {
    ("start", A.OPEN): A.IN_PROGRESS,
    ("done", A.OPEN): A.DONE,
    ("done", A.IN_PROGRESS): A.DONE,
    ("verify", A.DONE): A.VERIFIED,
    ("cancel", A.OPEN): A.CANCELLED,
    ("cancel", A.IN_PROGRESS): A.CANCELLED,
    ("cancel", A.DONE): A.CANCELLED,
    ("reassign", A.OPEN): A.OPEN,
    ("reassign", A.IN_PROGRESS): A.IN_PROGRESS,
    ("reassign", A.DONE): A.DONE,
    ("change_due", A.OPEN): A.OPEN,
    ("change_due", A.IN_PROGRESS): A.IN_PROGRESS,
    ("reopen", A.DONE): A.OPEN,
    ("reopen", A.VERIFIED): A.OPEN,
    ("reopen", A.CANCELLED): A.OPEN,
}


def _action_matrix():
    rows = []
    for verb in ACTION_VERBS:
        for status in A:
            if (verb, status) in ACTION_ALLOWED:
                rows.append(pytest.param(verb, status, ACTION_ALLOWED[verb, status], id=f"{verb}-{status.value}"))
                continue
            message = f"action {AREF} is {status.value.replace('_', ' ')}; cannot {ACTION_PHRASE[verb]} — {ACTION_ADVICE[status]}"
            rows.append(pytest.param(verb, status, message, id=f"{verb}-{status.value}"))
    return rows


ACTION_MATRIX = _action_matrix()


def test_action_matrix_covers_every_verb_and_status():
    assert {(p.values[0], p.values[1]) for p in ACTION_MATRIX} == {(v, s) for v in ACTION_VERBS for s in A}
    assert set(ACTION_PHRASE) == set(ACTION_VERBS)


@pytest.mark.parametrize(("verb", "status", "expected"), ACTION_MATRIX)
def test_action_transition(verb, status, expected):
    if isinstance(expected, ActionStatus):
        assert next_action_status(verb, status, AREF) is expected
    else:
        with pytest.raises(DomainError) as caught:
            next_action_status(verb, status, AREF)
        assert str(caught.value) == expected


# --------------------------------------------------------------------------------------
# Through the services, on a real database.
# --------------------------------------------------------------------------------------


def _ref(signal) -> str:
    return short_ref("signal", signal.id)


def _stored(services, model, **where):
    with services.ctx.read() as session:
        stmt = select(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list(session.scalars(stmt))


def _refused(call, message: str) -> None:
    with pytest.raises(DomainError) as caught:
        call()
    assert str(caught.value) == message


def test_acknowledge_records_who_and_when(services, make_signal):
    signal = make_signal()
    assert signal.status == "open" and signal.tier == 1
    acknowledged = services.signals.acknowledge(signal.id, actor="anna")
    assert acknowledged.status == "acknowledged"
    stored = services.signals.get(signal.id)
    assert (stored.status, stored.acknowledged_by, stored.acknowledged_at) == ("acknowledged", "anna", NOW)


def test_acknowledge_by_badge(services, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="100231")  # Anna's badge
    assert services.signals.get(signal.id).acknowledged_by == "anna"


def test_records_by_full_id_text(services, make_signal):
    signal = make_signal()
    assert services.signals.get(str(signal.id)).id == signal.id
    assert services.signals.acknowledge(str(signal.id), actor="anna").status == "acknowledged"


def test_records_by_short_reference(services, make_signal):
    signal = make_signal()
    assert services.signals.get(_ref(signal)).id == signal.id
    services.signals.acknowledge(_ref(signal).lower(), actor="anna")
    assert services.signals.get(signal.id).acknowledged_by == "anna"
    with pytest.raises(DomainError, match="^no signal S-00000000$"):
        services.signals.get("S-00000000")


def test_acknowledge_twice_is_refused(services, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    _refused(lambda: services.signals.acknowledge(signal.id, actor="ben"), f"signal {_ref(signal)} is already acknowledged")
    assert services.signals.get(signal.id).acknowledged_by == "anna"


def test_decide_act_with_an_action(services, make_signal, clock):
    signal = make_signal()
    due = NOW + timedelta(hours=4)
    decision = services.signals.decide(
        signal.id, actor="anna", kind=DecisionKind.ACT, rationale="bearing preload is off",
        action=ActionSpec("Re-set bearing preload on SP-104", "100232", due),  # Ben, by badge
    )
    assert decision.kind == "act" and decision.decided_by == "anna" and decision.tier == 1
    assert decision.policy_version == services.ctx.config.governance.version
    assert services.signals.get(signal.id).status == "actioned"
    (action,) = _stored(services, Action, signal_id=signal.id)
    assert (action.owner_id, action.due_at, action.status, action.decision_id) == ("ben", due, "open", decision.id)
    assert action.title == "Re-set bearing preload on SP-104"


def test_decide_monitor(services, make_signal):
    signal = make_signal()
    decision = services.signals.decide(signal.id, actor="anna", kind="monitor", rationale="watch next shift")
    assert decision.kind == "monitor"
    assert services.signals.get(signal.id).status == "actioned"
    assert _stored(services, Action, signal_id=signal.id) == []


@pytest.mark.parametrize("disposition", list(Disposition))
def test_decide_dismiss_with_disposition(services, make_signal, disposition):
    signal = make_signal()
    decision = services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="sensor swap", disposition=disposition)
    stored = services.signals.get(signal.id)
    assert (stored.status, stored.disposition, decision.disposition) == ("dismissed", disposition.value, disposition.value)


def test_dismiss_without_disposition_is_refused(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="noise"),
             "dismissing needs a disposition: false_positive, duplicate or not_actionable")
    assert services.signals.get(signal.id).status == "open"
    assert _stored(services, Decision, signal_id=signal.id) == []


def test_dismiss_without_reason_is_refused(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="dismiss", disposition="duplicate"),
             "the reason is required")


def test_disposition_only_when_dismissing(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="monitor", disposition="duplicate"),
             "a disposition is only recorded when dismissing")


def test_only_act_creates_an_action(services, make_signal):
    signal = make_signal()
    spec = ActionSpec("x", "ben", NOW + timedelta(hours=1))
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="monitor", action=spec),
             "only an 'act' decision creates an action")


def test_action_due_in_the_past_is_refused(services, make_signal):
    signal = make_signal()
    spec = ActionSpec("x", "ben", NOW - timedelta(minutes=1))
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="act", action=spec),
             "the due time is in the past; pick a time from now on")
    assert services.signals.get(signal.id).status == "open"


def test_decide_shelve_until(services, make_signal):
    signal = make_signal()
    until = NOW + timedelta(days=2)
    decision = services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="line stopped for overhaul", shelve_until=until)
    stored = services.signals.get(signal.id)
    assert (stored.status, stored.shelved_until, decision.shelved_until) == ("shelved", until, until)


@pytest.mark.parametrize("until", [NOW - timedelta(hours=1), NOW, None], ids=["past", "now", "missing"])
def test_shelve_needs_a_future_end(services, make_signal, until):
    signal = make_signal()
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="r", shelve_until=until),
             "shelving needs an end time in the future")
    assert services.signals.get(signal.id).status == "open"


def test_shelve_needs_a_reason(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="shelve", shelve_until=NOW + timedelta(hours=1)),
             "the reason is required")


def test_shelve_with_naive_end_time_is_refused_clearly(services, make_signal):
    signal = make_signal()
    naive = (NOW + timedelta(hours=2)).replace(tzinfo=None)
    with pytest.raises(DomainError, match="time zone"):
        services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="r", shelve_until=naive)


def test_decide_escalate_moves_up_a_tier(services, make_signal):
    signal = make_signal(severity="critical")
    services.signals.acknowledge(signal.id, actor="anna")
    decision = services.signals.decide(signal.id, actor="anna", kind="escalate", rationale="needs maintenance planning")
    stored = services.signals.get(signal.id)
    assert (stored.tier, stored.status, stored.acknowledged_by) == (2, "open", None)
    assert stored.tier_entered_at == NOW
    assert stored.deadline == NOW + timedelta(hours=1)  # critical at tier 2 in the demo policy
    assert decision.kind == "escalate" and decision.tier == 1
    (escalation,) = _stored(services, Escalation, signal_id=signal.id)
    assert (escalation.from_tier, escalation.to_tier, escalation.reason, escalation.raised_by) == (1, 2, "needs maintenance planning", "anna")


def test_escalate_needs_a_reason(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.escalate(signal.id, actor="anna", reason="  "), "the reason is required")


def test_escalate_past_the_top_tier_is_refused(services, make_signal):
    signal = make_signal()
    assert services.signals.escalate(signal.id, actor="anna", reason="area must see it").to_tier == 2
    assert services.signals.escalate(signal.id, actor="julia", reason="plant must see it").to_tier == 3
    message = f"signal {_ref(signal)} is already at tier 3, the top tier of this plant"
    _refused(lambda: services.signals.escalate(signal.id, actor="lena", reason="higher"), message)
    _refused(lambda: services.signals.decide(signal.id, actor="lena", kind="escalate", rationale="higher"), message)
    assert services.signals.get(signal.id).tier == 3
    assert len(_stored(services, Escalation, signal_id=signal.id)) == 2
    assert [d.kind for d in _stored(services, Decision, signal_id=signal.id)] == []


def test_escalating_a_dismissed_signal_is_refused(services, make_signal):
    signal = make_signal()
    services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="dup", disposition="duplicate")
    _refused(lambda: services.signals.escalate(signal.id, actor="anna", reason="r"), f"signal {_ref(signal)} is dismissed; reopen it first")


def test_resolve_with_outcome(services, make_signal):
    signal = make_signal()
    services.signals.decide(signal.id, actor="anna", kind="act", rationale="fix it")
    outcome = Outcome(downtime_minutes_avoided=90, scrap_avoided=12, yield_effect=0.4, note="  bearing replaced  ")
    resolved = services.signals.resolve(signal.id, actor="anna", outcome=outcome)
    assert resolved.status == "resolved"
    stored = services.signals.get(signal.id)
    assert stored.resolved_at == NOW
    assert stored.outcome == {"downtime_minutes_avoided": 90, "scrap_avoided": 12, "yield_effect": 0.4, "note": "bearing replaced"}


def test_resolve_refusals(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.resolve(signal.id, actor="anna", outcome=Outcome()),
             f"signal {_ref(signal)} is open; cannot resolve it yet — record a decision first")
    _refused(lambda: services.signals.resolve(signal.id, actor="anna", outcome=Outcome(scrap_avoided=-1)),
             "scrap avoided cannot be negative")
    services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="noise", disposition="false_positive")
    _refused(lambda: services.signals.resolve(signal.id, actor="anna", outcome=Outcome()),
             f"signal {_ref(signal)} is dismissed; reopen it first")
    assert services.signals.get(signal.id).status == "dismissed"


@pytest.mark.parametrize("how", ["resolved", "dismissed", "shelved"])
def test_reopen_starts_a_new_epoch(services, make_signal, clock, how):
    signal = make_signal(severity="critical")
    if how == "resolved":
        services.signals.decide(signal.id, actor="anna", kind="act", rationale="r")
        services.signals.resolve(signal.id, actor="anna", outcome=Outcome(note="done"))
    elif how == "dismissed":
        services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="r", disposition="not_actionable")
    else:
        services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="r", shelve_until=NOW + timedelta(days=1))
    clock.at = NOW + timedelta(hours=3)
    reopened = services.signals.reopen(signal.id, actor="julia", reason="it came back")
    assert reopened.status == "open"
    stored = services.signals.get(signal.id)
    assert stored.status_epoch == 1
    assert (stored.disposition, stored.shelved_until, stored.resolved_at, stored.acknowledged_by) == (None, None, None, None)
    assert stored.tier_entered_at == clock.at
    assert stored.deadline == clock.at + timedelta(minutes=30)  # critical at tier 1


def test_reopen_refusals(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.reopen(signal.id, actor="anna", reason="r"),
             f"signal {_ref(signal)} is open; only resolved, dismissed or shelved signals can be reopened")
    services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="r", disposition="duplicate")
    _refused(lambda: services.signals.reopen(signal.id, actor="anna", reason=""), "the reason is required")


def test_shelved_advice_names_a_move_the_services_offer(services, make_signal):
    signal = make_signal()
    services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="r", shelve_until=NOW + timedelta(hours=4))
    with pytest.raises(DomainError) as caught:
        services.signals.acknowledge(signal.id, actor="anna")
    assert "unshelve" not in str(caught.value) or hasattr(services.signals, "unshelve")


@pytest.mark.parametrize(("who", "typed"), [("zoe", "zoe"), ("999999", "999999"), (" 123 ", "123")])
def test_unknown_person_is_refused(services, make_signal, who, typed):
    signal = make_signal()
    _refused(lambda: services.signals.acknowledge(signal.id, actor=who), f"no person with id or badge {typed!r}")
    _refused(lambda: services.signals.decide(signal.id, actor="anna", kind="act", rationale="r",
                                             action=ActionSpec("fix", who, NOW + timedelta(hours=1))),
             f"no person with id or badge {typed!r}")
    assert services.signals.get(signal.id).status == "open"


def test_a_name_that_merely_starts_with_system_is_not_a_system_actor(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.signals.acknowledge(signal.id, actor="systemic"), "no person with id or badge 'systemic'")


def test_system_and_ai_actors_are_recorded_as_named(services, make_signal):
    signal = make_signal(source="pdm-toolwear")
    decision = services.signals.decide(signal.id, actor="ai:pdm-toolwear", kind="act", rationale="autonomous tool change")
    assert decision.decided_by == "ai:pdm-toolwear"


def test_unknown_signal_reference(services, make_signal):
    make_signal()
    missing = "0190a6e0-0000-7000-8000-000000000000"
    _refused(lambda: services.signals.acknowledge(missing, actor="anna"), f"no signal {missing}")
    _refused(lambda: services.signals.acknowledge("banana", actor="anna"),
             "'banana' is not a signal id or reference (like S-1a2b3c4d)")


# --- actions through the services ----------------------------------------------------


def _action(services, owner="ben"):
    return services.actions.create(actor="anna", title="Replace coolant filter", owner=owner, due_at=NOW + timedelta(hours=8))


def test_action_lifecycle_through_the_services(services, clock):
    action = _action(services)
    assert (action.status, action.owner_id, action.created_by) == ("open", "ben", "anna")
    clock.at = NOW + timedelta(minutes=5)
    assert services.actions.start(action.id, actor="ben").status == "in_progress"
    assert services.actions.reassign(action.id, actor="anna", owner="100241").owner_id == "goran"
    new_due = NOW + timedelta(hours=12)
    assert services.actions.change_due(action.id, actor="anna", due_at=new_due).due_at == new_due
    clock.at = NOW + timedelta(hours=1)
    done = services.actions.done(action.id, actor="goran")
    assert (done.status, done.done_at) == ("done", clock.at)
    verified = services.actions.verify(action.id, actor="anna")
    assert verified.status == "verified" and verified.verified_at == clock.at
    reopened = services.actions.reopen(action.id, actor="anna")
    assert (reopened.status, reopened.status_epoch, reopened.done_at, reopened.verified_at) == ("open", 1, None, None)
    assert services.actions.cancel(action.id, actor="anna").status == "cancelled"
    with services.ctx.read() as session:
        stored = session.get(Action, action.id)
    assert (stored.status, stored.owner_id, stored.due_at, stored.status_epoch) == ("cancelled", "goran", new_due, 1)


def test_action_refusals_through_the_services(services):
    action = _action(services)
    ref = short_ref("action", action.id)
    _refused(lambda: services.actions.verify(action.id, actor="anna"),
             f"action {ref} is open; cannot verify it — start it or mark it done")
    _refused(lambda: services.actions.change_due(action.id, actor="anna", due_at=NOW - timedelta(hours=1)),
             "the due time is in the past; pick a time from now on")
    _refused(lambda: services.actions.reassign(action.id, actor="anna", owner="zoe"), "no person with id or badge 'zoe'")
    services.actions.cancel(action.id, actor="anna")
    _refused(lambda: services.actions.start(action.id, actor="ben"),
             f"action {ref} is cancelled; cannot start it — reopen it first")
    with services.ctx.read() as session:
        assert session.get(Action, action.id).owner_id == "ben"


def test_action_owner_must_be_known(services):
    _refused(lambda: _action(services, owner="nobody"), "no person with id or badge 'nobody'")
    with services.ctx.read() as session:
        assert session.scalars(select(Action)).all() == []


def test_comment_needs_text(services, make_signal):
    signal = make_signal()
    _refused(lambda: services.comments.add("signal", signal.id, actor="anna", body="   "), "the comment is required")
    comment = services.comments.add("signal", signal.id, actor="anna", body="  vibration sensor loose  ")
    assert comment.body == "vibration sensor loose" and comment.author_id == "anna"


def test_signal_status_unchanged_after_every_refusal(services, make_signal):
    """A refused move leaves the stored signal exactly as it was."""
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    before = services.signals.get(signal.id)
    for call in (
        lambda: services.signals.acknowledge(signal.id, actor="anna"),
        lambda: services.signals.reopen(signal.id, actor="anna", reason="r"),
        lambda: services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="r"),
        lambda: services.signals.decide(signal.id, actor="zoe", kind="monitor"),
    ):
        with pytest.raises(DomainError):
            call()
    after = services.signals.get(signal.id)
    assert after.model_dump() == before.model_dump()
    with services.ctx.read() as session:
        assert session.get(Signal, signal.id).updated_hlc == before.updated_hlc
