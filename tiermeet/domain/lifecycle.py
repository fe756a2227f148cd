"""Allowed transitions of signals and actions (design.md §2, sync-protocol §2.6).

Each verb lists the states it may start from and the state it leads to. Everything else
is refused with a message that says what state the record is in and what to do instead.
Statuses only move forward, except through the explicit ``reopen`` verb, which starts a
new ``status_epoch`` so that sync can tell a deliberate reopen from a stale write.
"""

from tiermeet.domain.enums import ActionStatus, DecisionKind, SignalStatus
from tiermeet.domain.errors import DomainError

S = SignalStatus
A = ActionStatus


SIGNAL_VERBS: dict[str, tuple[frozenset[SignalStatus], SignalStatus]] = {
    "acknowledge": (frozenset({S.OPEN}), S.ACKNOWLEDGED),
    "decide:act": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.ACTIONED),
    "decide:monitor": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.ACTIONED),
    "decide:dismiss": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.DISMISSED),
    "decide:shelve": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.SHELVED),
    "decide:escalate": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.OPEN),
    "escalate": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.ACTIONED}), S.OPEN),
    "resolve": (frozenset({S.ACTIONED}), S.RESOLVED),
    "unshelve": (frozenset({S.SHELVED}), S.OPEN),
    "reopen": (frozenset({S.RESOLVED, S.DISMISSED, S.SHELVED}), S.OPEN),
}

ACTION_VERBS: dict[str, tuple[frozenset[ActionStatus], ActionStatus | None]] = {
    "start": (frozenset({A.OPEN}), A.IN_PROGRESS),
    "done": (frozenset({A.OPEN, A.IN_PROGRESS}), A.DONE),
    "verify": (frozenset({A.DONE}), A.VERIFIED),
    "cancel": (frozenset({A.OPEN, A.IN_PROGRESS, A.DONE}), A.CANCELLED),
    "reassign": (frozenset({A.OPEN, A.IN_PROGRESS, A.DONE}), None),
    "change_due": (frozenset({A.OPEN, A.IN_PROGRESS}), None),
    "reopen": (frozenset({A.DONE, A.VERIFIED, A.CANCELLED}), A.OPEN),
}

#: Rank of an action status in the sync lattice: within one epoch it only goes up.
ACTION_RANK = {A.OPEN: 0, A.IN_PROGRESS: 1, A.DONE: 2, A.VERIFIED: 3, A.CANCELLED: 4}

_SIGNAL_ADVICE = {
    S.DISMISSED: "reopen it first",
    S.RESOLVED: "reopen it first",
    S.SHELVED: "unshelve or reopen it first",
    S.OPEN: "record a decision first",
    S.ACKNOWLEDGED: "record a decision first",
    S.ACTIONED: "resolve it or record another decision",
}

#: How each action verb reads in "cannot … it".
_ACTION_PHRASE = {
    "start": "start it",
    "done": "mark it done",
    "verify": "verify it",
    "cancel": "cancel it",
    "reassign": "reassign it",
    "change_due": "change its due time",
    "reopen": "reopen it",
}

_ACTION_ADVICE = {
    A.OPEN: "start it or mark it done",
    A.IN_PROGRESS: "mark it done or cancel it",
    A.DONE: "verify it, or reopen it to change it",
    A.VERIFIED: "reopen it first",
    A.CANCELLED: "reopen it first",
}


def signal_verb_for_decision(kind: DecisionKind) -> str:
    """The lifecycle verb a decision of this kind performs."""
    return f"decide:{kind.value}"


def next_signal_status(verb: str, current: SignalStatus, ref: str) -> SignalStatus:
    """The status a signal moves to, or a DomainError naming why it may not."""
    allowed, to = SIGNAL_VERBS[verb]
    if current in allowed:
        return to
    if verb == "reopen":
        raise DomainError(
            f"signal {ref} is {current.value}; only resolved, dismissed or shelved signals can be reopened"
        )
    if verb == "unshelve":
        raise DomainError(f"signal {ref} is {current.value}, not shelved")
    if verb == "acknowledge" and current in (S.ACKNOWLEDGED, S.ACTIONED):
        raise DomainError(f"signal {ref} is already {current.value}")
    what = verb.split(":")[-1]
    if current in (S.DISMISSED, S.RESOLVED, S.SHELVED):
        raise DomainError(f"signal {ref} is {current.value}; {_SIGNAL_ADVICE[current]}")
    raise DomainError(f"signal {ref} is {current.value}; cannot {what} it yet — {_SIGNAL_ADVICE[current]}")


def next_action_status(verb: str, current: ActionStatus, ref: str) -> ActionStatus:
    """The status an action moves to (unchanged for edits), or a DomainError saying why not."""
    allowed, to = ACTION_VERBS[verb]
    if current not in allowed:
        state = current.value.replace("_", " ")
        raise DomainError(f"action {ref} is {state}; cannot {_ACTION_PHRASE[verb]} — {_ACTION_ADVICE[current]}")
    return current if to is None else to
