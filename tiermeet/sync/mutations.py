"""Named mutations as record changes: what each mutation a device pushes does to the
synced records, as merge states (see ``merge``). Pure; the server applies these deltas,
and a device re-applies its own pending ones on top of what it pulls.

A mutation travels with a ``context``: what the device read beside the outbox row when it
pushed — the audit entry's before/after images of a signal's lifecycle (written in the
same transaction as the mutation, so never out of step with it), and for ``signal.ingest``
the immutable payload of each signal with its placement at ingest. The mutation's own
``args`` stay exactly as written, so their hash identifies it.
"""

from dataclasses import dataclass, field
from typing import Any

from tiermeet.sync.merge import ACTION_STATUS_RANK, SIGNAL_STATUS_RANK, State

#: The lifecycle columns a signal's ``life`` register holds.
LIFE = ("status", "status_epoch", "tier", "deadline", "shelved_until", "disposition", "resolved_at")
#: Signal columns written once at ingest.
SIGNAL_PAYLOAD = ("id", "external_id", "source", "model_version", "kind", "detected_at", "ingested_at", "area", "line",
                  "asset", "category", "severity", "severity_rank", "confidence", "title", "detail",
                  "suggested_action", "evidence_url", "extra", "autonomy", "policy_rule", "policy_version")
ACTION_RECORD = ("id", "signal_id", "decision_id", "created_by", "created_at")
DECISION_RECORD = ("id", "signal_id", "kind", "rationale", "disposition", "shelved_until", "decided_by", "decided_at",
                   "tier", "meeting_id", "policy_version", "ai_snapshot", "supersedes", "hlc")
ESCALATION_RECORD = ("id", "signal_id", "from_tier", "to_tier", "reason", "automatic", "raised_by", "raised_at",
                     "context", "hlc")
COMMENT_RECORD = ("id", "target", "target_id", "author_id", "body", "created_at", "hlc")
MEETING_RECORD = ("id", "tier", "scope", "facilitator_id", "started_at", "timebox_minutes")
ACTION_STAMP = {"in_progress": "started_at", "done": "done_at", "verified": "verified_at"}

NAMES = ("signal.ingest", "signal.acknowledge", "signal.decide", "signal.escalate", "signal.resolve", "signal.reopen",
         "action.create", "action.set_owner", "action.set_due", "action.set_status", "action.reopen", "comment.add",
         "meeting.start", "meeting.attend", "meeting.end", "audit.append")
#: Mutations whose context must carry the audit entry's lifecycle images.
NEEDS_IMAGES = frozenset({"signal.acknowledge", "signal.decide", "signal.escalate", "signal.resolve", "signal.reopen"})


class MutationError(ValueError):
    """A mutation that can never be applied: unknown, malformed, or against the rules."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Mutation:
    """One pushed mutation, as the merge sees it."""

    name: str
    entity: str
    entity_id: str
    args: dict
    hlc: str
    origin: str
    actor: str
    created_at: str
    context: dict = field(default_factory=dict)


@dataclass
class Delta:
    """The change a mutation makes to one record.

    ``must_exist``: the record must already be known (an update, not a creation).
    ``expect_epoch``: the record's status epoch must be this (an explicit reopen).
    ``parent``: (entity, id) of the record this one hangs off, for its home and scope."""

    entity: str
    entity_id: str
    state: State
    must_exist: bool = False
    expect_epoch: int | None = None
    parent: tuple[str, str] | None = None


def _pick(source: dict, names: tuple[str, ...]) -> dict:
    try:
        return {name: source[name] for name in names}
    except KeyError as exc:
        raise MutationError("invalid_args", f"missing {exc.args[0]!r}") from None
    except TypeError:
        raise MutationError("invalid_args", "expected an object") from None


def _arg(args: dict, name: str) -> Any:
    if not isinstance(args, dict) or name not in args:
        raise MutationError("invalid_args", f"missing {name!r}")
    return args[name]


def _life(image: dict, clock: list) -> list:
    status = image.get("status")
    if status not in SIGNAL_STATUS_RANK:
        raise MutationError("invalid_context", f"unknown signal status {status!r}")
    value = _pick(image, LIFE)
    epoch, tier = int(value["status_epoch"]), int(value["tier"])
    return [[epoch, tier, SIGNAL_STATUS_RANK[status], *clock], value]


def _images(m: Mutation) -> tuple[dict, dict]:
    before, after = m.context.get("before"), m.context.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise MutationError("invalid_context", "the lifecycle images of the change are missing")
    return before, after


def _touch(m: Mutation, clock: list) -> list:
    return [clock, {"updated_at": m.created_at, "updated_hlc": m.hlc}]


def signal_ingest_state(initial: dict, clock: list) -> State:
    """The state of a newly ingested signal: its payload and its placement at ingest."""
    life = {"status": "open", "status_epoch": 0, "tier": int(initial["tier"]), "deadline": initial["deadline"],
            "shelved_until": None, "disposition": None, "resolved_at": None}
    tier = life["tier"]
    return {
        "payload": [clock, _pick(initial, SIGNAL_PAYLOAD)],
        "life": [[0, tier, 0, *clock], life],
        "entered": [[0, tier, *clock], initial["tier_entered_at"]],
        "touch": [clock, {"updated_at": initial["ingested_at"], "updated_hlc": clock[0]}],
    }


def action_create_state(record: dict, clock: list) -> State:
    """The state of a new action (from the columns the creating mutation carries)."""
    epoch = int(record.get("status_epoch", 0))
    status = record.get("status", "open")
    if status not in ACTION_STATUS_RANK:
        raise MutationError("invalid_args", f"unknown action status {status!r}")
    return {
        "record": [clock, _pick(record, ACTION_RECORD)],
        "title": [clock, _arg(record, "title")],
        "owner": [clock, _arg(record, "owner_id")],
        "due": [clock, _arg(record, "due_at")],
        "status": [[epoch, ACTION_STATUS_RANK[status], *clock], {"status": status, "status_epoch": epoch}],
        "touch": [clock, {"updated_at": record.get("updated_at") or record["created_at"], "updated_hlc": clock[0]}],
    }


def deltas_of(m: Mutation) -> list[Delta]:
    """The record changes ``m`` makes, or MutationError if it can never be applied."""
    clock = [m.hlc, m.origin]
    args = m.args if isinstance(m.args, dict) else {}
    name = m.name
    if name == "signal.ingest":
        wanted = _arg(args, "signal_ids")
        rows = {str(r.get("id")): r for r in m.context.get("signals", []) if isinstance(r, dict)}
        deltas = []
        for signal_id in wanted:
            row = rows.get(str(signal_id))
            if row is None:
                raise MutationError("invalid_context", f"signal {signal_id} is named but its payload was not sent")
            try:
                state = signal_ingest_state(row, clock)
            except (KeyError, TypeError, ValueError) as exc:
                raise MutationError("invalid_context", f"signal {signal_id}: {exc}") from None
            deltas.append(Delta("signal", str(signal_id), state))
        return deltas
    if name in NEEDS_IMAGES:
        signal_id = str(args.get("signal_id") or m.entity_id)
        before, after = _images(m)
        life = _life(after, clock)
        epoch, tier = life[0][0], life[0][1]
        signal: State = {"life": life, "touch": _touch(m, clock)}
        deltas: list[Delta] = []
        parent = ("signal", signal_id)
        if name == "signal.acknowledge":
            signal["ack"] = [[epoch, tier, *clock], {"acknowledged_at": m.created_at, "acknowledged_by": m.actor}]
        elif name == "signal.resolve":
            signal["outcome"] = [[epoch, tier, *clock], args.get("outcome")]
        elif name == "signal.reopen":
            signal["entered"] = [[epoch, tier, *clock], m.created_at]
        if name == "signal.decide":
            decision = dict(_arg(args, "decision"))
            record = _pick(decision, DECISION_RECORD) | ({"source": decision["source"]} if "source" in decision else {})
            record["base"] = [int(before.get("status_epoch", 0)), int(before.get("tier", 0)), before.get("status")]
            deltas.append(Delta("decision", str(record["id"]), {"record": [clock, record]}, parent=parent))
            if args.get("action") is not None:
                action = args["action"]
                deltas.append(Delta("action", str(_arg(action, "id")), action_create_state(action, clock), parent=parent))
        if name in ("signal.escalate", "signal.decide") and args.get("escalation") is not None:
            escalation = _pick(args["escalation"], ESCALATION_RECORD)
            deltas.append(Delta("escalation", str(escalation["id"]), {"record": [clock, escalation]}, parent=parent))
            signal["entered"] = [[epoch, tier, *clock], m.created_at]
        elif name == "signal.escalate":
            raise MutationError("invalid_args", "missing 'escalation'")
        expect = None
        if name == "signal.reopen":
            expect = int(_arg(args, "expected_epoch"))
            if epoch != expect + 1:
                raise MutationError("invalid_args", f"a reopen from epoch {expect} must lead to epoch {expect + 1}")
        return [Delta("signal", signal_id, signal, must_exist=True, expect_epoch=expect), *deltas]
    if name == "action.create":
        record = dict(args)
        parent = ("signal", str(record["signal_id"])) if record.get("signal_id") else None
        return [Delta("action", str(_arg(record, "id")), action_create_state(record, clock), parent=parent)]
    if name in ("action.set_owner", "action.set_due", "action.set_status", "action.reopen"):
        action_id = str(args.get("action_id") or m.entity_id)
        state: State = {"touch": _touch(m, clock)}
        expect = None
        if name == "action.set_owner":
            state["owner"] = [clock, _arg(args, "owner_id")]
        elif name == "action.set_due":
            state["due"] = [clock, _arg(args, "due_at")]
        if "status" in args or name in ("action.set_status", "action.reopen"):
            status, epoch = _arg(args, "status"), int(_arg(args, "epoch"))
            if status not in ACTION_STATUS_RANK:
                raise MutationError("invalid_args", f"unknown action status {status!r}")
            state["status"] = [[epoch, ACTION_STATUS_RANK[status], *clock], {"status": status, "status_epoch": epoch}]
            if status in ACTION_STAMP:
                state[ACTION_STAMP[status]] = [[epoch, *clock], m.created_at]
            if name == "action.reopen":
                expect = int(_arg(args, "expected_epoch"))
                if epoch != expect + 1 or status != "open":
                    raise MutationError("invalid_args", f"a reopen from epoch {expect} must lead to open in epoch {expect + 1}")
        return [Delta("action", action_id, state, must_exist=True, expect_epoch=expect)]
    if name == "comment.add":
        record = _pick(args, COMMENT_RECORD)
        if record["target"] not in ("signal", "action"):
            raise MutationError("invalid_args", f"comments go on signals or actions, not {record['target']!r}")
        return [Delta("comment", str(record["id"]), {"record": [clock, record]},
                      parent=(record["target"], str(record["target_id"])))]
    if name == "meeting.start":
        record = _pick(args, MEETING_RECORD)
        meeting_id = str(record["id"])
        attendance = {"meeting_id": meeting_id, "person_id": record["facilitator_id"], "joined_at": record["started_at"]}
        return [
            Delta("meeting", meeting_id, {"record": [clock, record], "end": [clock, {"ended_at": None, "notes": None}]}),
            Delta("attendance", f"{meeting_id}:{record['facilitator_id']}",
                  {"record": [clock, attendance], "present": [clock, True]}, parent=("meeting", meeting_id)),
        ]
    if name == "meeting.attend":
        meeting_id, person_id = str(_arg(args, "meeting_id")), _arg(args, "person_id")
        attendance = {"meeting_id": meeting_id, "person_id": person_id, "joined_at": m.created_at}
        return [Delta("attendance", f"{meeting_id}:{person_id}",
                      {"record": [clock, attendance], "present": [clock, bool(args.get("present", True))]},
                      parent=("meeting", meeting_id))]
    if name == "meeting.end":
        meeting_id = str(_arg(args, "meeting_id"))
        return [Delta("meeting", meeting_id, {"end": [clock, {"ended_at": _arg(args, "ended_at"), "notes": args.get("notes")}]},
                      must_exist=True)]
    if name == "audit.append":
        return []  # it only carries audit entries (``WireMutation.audit``), which change no record
    raise MutationError("unknown_mutation", f"this server does not know the mutation {name!r}")
