"""Merge rules for sync (design.md §6, sync-protocol §2.6): one pure module, used by the
server when it applies a mutation and by a device when it applies a pulled change.

A record's sync *state* is a small set of named registers, ``{group: [key, value]}``. A
change to a record is itself a state holding only the registers it sets, and merging is
the *join* of two states: per register, the entry with the greatest key wins (or, for
write-once registers, the smallest; for sets, the union). A join of this kind is
commutative, associative and idempotent, so replicas that have seen the same changes in
any order, any number of times, hold the same state. The keys carry the rules:

- last-writer-wins fields (an action's owner, due time, title; a meeting's end):
  ``[hlc, origin]`` — the hybrid logical clock, ties broken by the origin device;
- status lattices (action status; a signal's lifecycle): ``[epoch, (tier,) rank, hlc,
  origin]`` — within an epoch a status only moves up its rank; an explicit reopen starts
  epoch n+1, which beats everything in epoch n, so a stale write can never undo it, and a
  concurrent close in epoch n loses to the reopen by design;
- write-once records (signal payload, decisions, escalations, comments): the first by
  ``[hlc, origin]``; the server refuses a second, different version, so in practice the
  value is never replaced;
- sets (the members of a decision conflict): union.

Sub-registers tied to a status (when a signal was acknowledged and by whom, the outcome,
when an action was started or done) are keyed by the epoch (and tier) they belong to and
only shown while the status register is in the same epoch (and tier): a reopen or an
escalation clears them without having to delete anything.

Decisions are never overwritten. Two decisions on the same signal made from the same
undecided state (or superseding the same decision) are *siblings*: both are kept and
``sibling_groups`` names them, so the server can flag the signal for the next tier.
"""

import json
import uuid
from collections.abc import Iterable
from typing import Any

from tiermeet.domain.enums import SignalStatus
from tiermeet.domain.lifecycle import ACTION_RANK

State = dict[str, list]

MAX = "max"
ONCE = "once"
UNION = "union"

#: Register rules per record type; a group not listed merges as MAX (forward compatible).
RULES: dict[str, dict[str, str]] = {
    "signal": {"payload": ONCE, "life": MAX, "ack": MAX, "entered": MAX, "outcome": MAX, "touch": MAX},
    "action": {"record": ONCE, "title": MAX, "owner": MAX, "due": MAX, "status": MAX,
               "started_at": MAX, "done_at": MAX, "verified_at": MAX, "touch": MAX},
    "decision": {"record": ONCE},
    "escalation": {"record": ONCE},
    "comment": {"record": ONCE},
    "meeting": {"record": ONCE, "end": MAX},
    "attendance": {"record": ONCE, "present": MAX},
    "conflict": {"record": ONCE, "members": UNION},
}
ENTITIES = tuple(RULES)

#: Rank of a signal status inside one (epoch, tier): open < acknowledged < actioned <
#: the three ways a signal leaves the board. Escalation moves to a higher tier, reopen to
#: a higher epoch; both restart at ``open``.
SIGNAL_RANK = {
    SignalStatus.OPEN: 0, SignalStatus.ACKNOWLEDGED: 1, SignalStatus.ACTIONED: 2,
    SignalStatus.SHELVED: 3, SignalStatus.DISMISSED: 4, SignalStatus.RESOLVED: 5,
}
ACTION_STATUS_RANK = {status.value: rank for status, rank in ACTION_RANK.items()}
SIGNAL_STATUS_RANK = {status.value: rank for status, rank in SIGNAL_RANK.items()}
#: Signal statuses from which a decision is a first decision (nothing decided yet).
UNDECIDED = frozenset({SignalStatus.OPEN.value, SignalStatus.ACKNOWLEDGED.value})

_CONFLICT_NS = uuid.UUID("6f6b3c1e-5a0e-4a43-9c55-2a7e0d1c9b10")


def canonical(value: Any) -> str:
    """Stable JSON text of ``value``: the last tie-break, and what states are compared by."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _pick(rule: str, a: list, b: list) -> list:
    if a == b:
        return a
    if rule == UNION:
        members = sorted(set(a[1]) | set(b[1]))
        return [max(a[0], b[0]), members]
    ka, kb = a[0], b[0]
    if ka == kb:
        ka, kb = canonical(a[1]), canonical(b[1])
    if rule == ONCE:
        return a if ka <= kb else b
    return a if ka >= kb else b


def join(entity: str, a: State | None, b: State | None) -> State | None:
    """The merge of two states of one record (either may be None: not seen yet)."""
    if a is None:
        return b
    if b is None or a is b:
        return a
    rules = RULES.get(entity, {})
    out = dict(a)
    for group, reg in b.items():
        cur = out.get(group)
        out[group] = reg if cur is None else _pick(rules.get(group, MAX), cur, reg)
    return out


def join_all(entity: str, states: Iterable[State]) -> State | None:
    """The merge of many states (in any order: the result is the same)."""
    result = None
    for state in states:
        result = join(entity, result, state)
    return result


def dominates(entity: str, a: State | None, b: State | None) -> bool:
    """True when ``a`` already holds everything ``b`` says (joining ``b`` changes nothing)."""
    return b is None or join(entity, a, b) == a


# --------------------------------------------------------------------------------------
# Reading states: the current value of registers, and records as table rows.
# --------------------------------------------------------------------------------------


def value(state: State, group: str, default: Any = None) -> Any:
    """The value of one register, or ``default`` if the state has none."""
    reg = state.get(group)
    return default if reg is None else reg[1]


def key(state: State, group: str) -> list | None:
    """The key of one register, or None."""
    reg = state.get(group)
    return None if reg is None else reg[0]


def signal_epoch(state: State) -> int | None:
    """The status epoch a signal's lifecycle is in, or None if the state has none."""
    k = key(state, "life")
    return None if k is None else k[0]


def signal_tier(state: State) -> int | None:
    """The tier a signal is at, or None."""
    k = key(state, "life")
    return None if k is None else k[1]


def action_epoch(state: State) -> int | None:
    """The status epoch of an action, or None."""
    k = key(state, "status")
    return None if k is None else k[0]


def _tied(state: State, group: str, prefix: list) -> Any:
    """A sub-register's value if it belongs to the same epoch (and tier) as the status."""
    reg = state.get(group)
    if reg is None or reg[0][: len(prefix)] != prefix:
        return None
    return reg[1]


def project(entity: str, state: State) -> dict[str, Any] | None:
    """The record as column values (JSON types), or None while the state is incomplete
    (a lifecycle change seen before the record's creation: nothing to show yet)."""
    if entity == "signal":
        payload, life = value(state, "payload"), state.get("life")
        if payload is None or life is None:
            return None
        prefix = life[0][:2]
        row = dict(payload)
        row.update(life[1])
        ack = _tied(state, "ack", prefix) or {}
        row["acknowledged_at"] = ack.get("acknowledged_at")
        row["acknowledged_by"] = ack.get("acknowledged_by")
        row["tier_entered_at"] = value(state, "entered", row.get("tier_entered_at"))
        row["outcome"] = _tied(state, "outcome", prefix) if row["status"] == SignalStatus.RESOLVED.value else None
        row.update(value(state, "touch", {}))
        return row
    if entity == "action":
        record, status = value(state, "record"), state.get("status")
        if record is None or status is None:
            return None
        epoch = [status[0][0]]
        row = dict(record)
        row["title"] = value(state, "title")
        row["owner_id"] = value(state, "owner")
        row["due_at"] = value(state, "due")
        row.update(status[1])
        for name in ("started_at", "done_at", "verified_at"):
            row[name] = _tied(state, name, epoch)
        row.update(value(state, "touch", {}))
        return row
    if entity == "meeting":
        record = value(state, "record")
        if record is None:
            return None
        return {**record, **value(state, "end", {"ended_at": None, "notes": None})}
    if entity == "attendance":
        record = value(state, "record")
        if record is None:
            return None
        return {**record, "present": value(state, "present", True)}
    if entity == "conflict":
        record = value(state, "record")
        if record is None:
            return None
        return {**record, "members": value(state, "members", [])}
    return value(state, "record")


# --------------------------------------------------------------------------------------
# Concurrent decisions.
# --------------------------------------------------------------------------------------


def sibling_key(decision: dict) -> tuple | None:
    """What two decisions must share to be siblings, or None if this one cannot have any.

    ``decision`` is a decision record as ``project`` gives it, with ``base``: the
    signal's ``[epoch, tier, status]`` when it was decided. A decision that supersedes
    another competes with those superseding the same one; a first decision (made while
    the signal was open or acknowledged) with the other first decisions at that epoch and
    tier. A later decision without ``supersedes`` names no predecessor, so it is not
    compared (a services hook that fills ``supersedes`` makes it comparable)."""
    base = decision.get("base")
    if decision.get("supersedes"):
        return (decision["signal_id"], "supersedes", decision["supersedes"])
    if base and base[2] in UNDECIDED:
        return (decision["signal_id"], "first", base[0], base[1])
    return None


def sibling_groups(decisions: Iterable[dict]) -> dict[tuple, list[str]]:
    """Groups of two or more concurrent decisions, by sibling key; members sorted by id."""
    groups: dict[tuple, set[str]] = {}
    for decision in decisions:
        k = sibling_key(decision)
        if k is not None:
            groups.setdefault(k, set()).add(str(decision["id"]))
    return {k: sorted(ids) for k, ids in groups.items() if len(ids) > 1}


def conflict_id(group: tuple) -> str:
    """A stable id for a sibling group: the same on every replica that finds it."""
    return str(uuid.uuid5(_CONFLICT_NS, canonical(list(group))))


def conflict_state(group: tuple, members: list[str], hlc: str, origin: str) -> State:
    """The state of the conflict record that flags ``members`` for the next tier."""
    return {
        "record": [[hlc, origin], {"id": conflict_id(group), "signal_id": group[0], "kind": "decision_siblings",
                                   "detected_hlc": hlc}],
        "members": [[hlc, origin], sorted(members)],
    }


__all__ = [
    "ACTION_STATUS_RANK", "ENTITIES", "RULES", "SIGNAL_STATUS_RANK", "State", "action_epoch", "canonical",
    "conflict_id", "conflict_state", "dominates", "join", "join_all", "key", "project", "sibling_groups",
    "sibling_key", "signal_epoch", "signal_tier", "value",
]
