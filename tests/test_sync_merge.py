"""The merge rules (sync-protocol §2.6, §3.2): for every record type, merging the changes
of any set of mutations gives the same state whatever their order and however often each
arrives; statuses only move forward except through an explicit reopen; decisions are
never overwritten and concurrent ones are found as siblings. Also the HLC (§2.7), and the
stable JSON that mutation hashes are taken of.
"""

import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from tiermeet.domain import hlc
from tiermeet.sync.merge import (
    ACTION_STATUS_RANK, conflict_id, conflict_state, join, join_all, project, sibling_groups,
)
from tiermeet.sync.mutations import Delta, Mutation, MutationError, deltas_of

ORIGINS = ("kiosk-a", "kiosk-b", "kiosk-c")
PEOPLE = ("anna", "ben", "chen", "dora")
ACTION_ID = "0190a6e0-3333-7000-8000-000000000001"
SIGNAL_ID = "0190a6e0-1111-7000-8000-00000000aaaa"
T0 = "2026-11-25T08:00:00+00:00"

clocks = st.tuples(st.integers(1, 40), st.integers(0, 3)).map(lambda lc: hlc.Timestamp(1_700_000_000_000 + lc[0], lc[1]).pack())
origins = st.sampled_from(ORIGINS)


def mutation(name, args, stamp, origin, *, actor="anna", context=None, entity="action", entity_id=ACTION_ID):
    return Mutation(name=name, entity=entity, entity_id=entity_id, args=args, hlc=stamp, origin=origin, actor=actor,
                    created_at=T0, context=context or {})


def states(ms) -> list[tuple[str, str, dict]]:
    out = []
    for m in ms:
        for d in deltas_of(m):
            out.append((d.entity, d.entity_id, d.state))
    return out


def fold(changes) -> dict:
    """Per record, the join of its states, in the order given."""
    result: dict = {}
    for entity, entity_id, state in changes:
        result[(entity, entity_id)] = join(entity, result.get((entity, entity_id)), state)
    return result


# --------------------------------------------------------------------------------------
# Actions: LWW owner, due time and title; the status lattice with epoch reopen
# --------------------------------------------------------------------------------------


def action_create(stamp, origin):
    return mutation("action.create", {
        "id": ACTION_ID, "signal_id": None, "decision_id": None, "title": "Check bearing", "owner_id": "anna",
        "due_at": "2026-11-26T08:00:00+00:00", "status": "open", "status_epoch": 0, "created_by": "anna",
        "created_at": T0, "started_at": None, "done_at": None, "verified_at": None, "updated_at": T0,
        "updated_hlc": stamp}, stamp, origin)


action_ops = st.one_of(
    st.builds(lambda s, o, who: mutation("action.set_owner", {"action_id": ACTION_ID, "owner_id": who}, s, o),
              clocks, origins, st.sampled_from(PEOPLE)),
    st.builds(lambda s, o, d: mutation("action.set_due", {"action_id": ACTION_ID, "due_at": f"2026-12-0{d}T08:00:00+00:00"}, s, o),
              clocks, origins, st.integers(1, 9)),
    st.builds(lambda s, o, status, e: mutation("action.set_status", {"action_id": ACTION_ID, "status": status, "epoch": e}, s, o),
              clocks, origins, st.sampled_from(["in_progress", "done", "verified", "cancelled"]), st.integers(0, 2)),
    st.builds(lambda s, o, e: mutation("action.reopen", {"action_id": ACTION_ID, "expected_epoch": e, "status": "open", "epoch": e + 1}, s, o),
              clocks, origins, st.integers(0, 2)),
)
action_histories = st.tuples(clocks, origins, st.lists(action_ops, max_size=12)).map(
    lambda t: [action_create(t[0], t[1]), *t[2]])


@given(action_histories, st.randoms(use_true_random=False))
def test_action_merge_is_order_independent_and_idempotent(history, rnd):
    changes = states(history)
    reference = fold(changes)
    shuffled = changes + rnd.sample(changes, k=min(len(changes), 4))  # duplicates
    rnd.shuffle(shuffled)
    assert fold(shuffled) == reference
    for (entity, _), state in reference.items():
        assert join(entity, state, state) == state
        for change_entity, _, change in changes:
            assert join(entity, join(entity, state, change), change) == join(entity, state, change)


@given(action_histories, st.permutations(range(13)))
def test_action_merge_is_associative(history, order):
    changes = [c[2] for c in states(history)]
    changes = [changes[i] for i in order if i < len(changes)]
    mid = len(changes) // 2
    left = join("action", join_all("action", changes[:mid]), join_all("action", changes[mid:]))
    assert left == join_all("action", changes)


@given(action_histories, st.randoms(use_true_random=False))
def test_action_status_only_moves_forward_except_by_reopen(history, rnd):
    changes = states(history)
    rnd.shuffle(changes)
    state, last = None, (-1, -1)
    for entity, _, change in changes:
        state = join(entity, state, change)
        row = project("action", state)
        if row is None:
            continue
        now = (row["status_epoch"], ACTION_STATUS_RANK[row["status"]])
        assert now >= last, "status went backwards"
        last = now


def test_reopen_beats_a_concurrent_close_and_stale_writes_cannot_undo_it():
    create = action_create(hlc.Timestamp(1, 0).pack(), "kiosk-a")
    done = mutation("action.set_status", {"action_id": ACTION_ID, "status": "done", "epoch": 0}, hlc.Timestamp(2, 0).pack(), "kiosk-a")
    reopen = mutation("action.reopen", {"action_id": ACTION_ID, "expected_epoch": 0, "status": "open", "epoch": 1},
                      hlc.Timestamp(3, 0).pack(), "kiosk-b")
    # kiosk-c, offline, verifies in epoch 0 with a clock far ahead of everyone
    verify = mutation("action.set_status", {"action_id": ACTION_ID, "status": "verified", "epoch": 0},
                      hlc.Timestamp(9_999_999, 0).pack(), "kiosk-c")
    row = project("action", join_all("action", [c[2] for c in states([create, done, reopen, verify])]))
    assert (row["status"], row["status_epoch"], row["done_at"], row["verified_at"]) == ("open", 1, None, None)


def test_owner_is_last_writer_wins_by_hlc_with_the_origin_breaking_ties():
    create = action_create(hlc.Timestamp(1, 0).pack(), "kiosk-a")
    same = hlc.Timestamp(5, 0).pack()
    to_ben = mutation("action.set_owner", {"action_id": ACTION_ID, "owner_id": "ben"}, same, "kiosk-a")
    to_chen = mutation("action.set_owner", {"action_id": ACTION_ID, "owner_id": "chen"}, same, "kiosk-b")
    earlier = mutation("action.set_owner", {"action_id": ACTION_ID, "owner_id": "dora"}, hlc.Timestamp(4, 9).pack(), "kiosk-c")
    for order in ([create, to_ben, to_chen, earlier], [earlier, to_chen, create, to_ben]):
        assert project("action", join_all("action", [c[2] for c in states(order)]))["owner_id"] == "chen"


def test_a_change_seen_before_its_record_is_kept_until_the_record_arrives():
    create = action_create(hlc.Timestamp(1, 0).pack(), "kiosk-a")
    owner = mutation("action.set_owner", {"action_id": ACTION_ID, "owner_id": "ben"}, hlc.Timestamp(2, 0).pack(), "kiosk-a")
    partial = join_all("action", [c[2] for c in states([owner])])
    assert project("action", partial) is None
    assert project("action", join("action", partial, states([create])[0][2]))["owner_id"] == "ben"


# --------------------------------------------------------------------------------------
# Signals: immutable payload, lifecycle lattice over (epoch, tier, rank)
# --------------------------------------------------------------------------------------

LIFE = {"deadline": "2026-11-25T10:00:00+00:00", "shelved_until": None, "disposition": None, "resolved_at": None}


def signal_payload():
    return {"id": SIGNAL_ID, "external_id": "e1", "source": "pdm", "model_version": None, "kind": "anomaly",
            "detected_at": T0, "ingested_at": T0, "area": "machining", "line": "CNC1", "asset": None, "category": "quality",
            "severity": "high", "severity_rank": 1, "confidence": 0.9, "title": "Vibration", "detail": None,
            "suggested_action": None, "evidence_url": None, "extra": None, "autonomy": "sign_off", "policy_rule": "default",
            "policy_version": "abc", "tier": 1, "deadline": LIFE["deadline"], "tier_entered_at": T0}


def signal_op(name, stamp, origin, before, after, args=None):
    return mutation(name, {"signal_id": SIGNAL_ID, **(args or {})}, stamp, origin, entity="signal", entity_id=SIGNAL_ID,
                    context={"before": {**LIFE, "acknowledged_by": None, **before}, "after": {**LIFE, "acknowledged_by": None, **after}})


def image(status, epoch=0, tier=1):
    return {"status": status, "status_epoch": epoch, "tier": tier}


signal_ops = st.one_of(
    st.builds(lambda s, o, e, t: signal_op("signal.acknowledge", s, o, image("open", e, t), image("acknowledged", e, t)),
              clocks, origins, st.integers(0, 1), st.integers(1, 2)),
    st.builds(lambda s, o, e, t: signal_op("signal.resolve", s, o, image("actioned", e, t), image("resolved", e, t),
                                           {"outcome": {"note": "ok"}}), clocks, origins, st.integers(0, 1), st.integers(1, 2)),
    st.builds(lambda s, o, e: signal_op("signal.reopen", s, o, image("resolved", e), image("open", e + 1), {"expected_epoch": e}),
              clocks, origins, st.integers(0, 1)),
)


@given(clocks, st.lists(signal_ops, max_size=10), st.randoms(use_true_random=False))
def test_signal_merge_is_order_independent_and_keeps_the_payload(stamp, ops, rnd):
    ingest = mutation("signal.ingest", {"signal_ids": [SIGNAL_ID]}, stamp, "kiosk-a", entity="signal", entity_id=SIGNAL_ID,
                      context={"signals": [signal_payload()]})
    changes = states([ingest, *ops])
    reference = fold(changes)
    doubled = changes + changes
    rnd.shuffle(doubled)
    assert fold(doubled) == reference
    row = project("signal", reference[("signal", SIGNAL_ID)])
    assert row["title"] == "Vibration" and row["source"] == "pdm"
    if row["status"] != "acknowledged":
        assert row["status"] != "open" or row["acknowledged_by"] is None or row["status_epoch"] == 0


def test_escalation_moves_a_signal_up_and_clears_its_acknowledgement():
    ingest = mutation("signal.ingest", {"signal_ids": [SIGNAL_ID]}, hlc.Timestamp(1, 0).pack(), "kiosk-a", entity="signal",
                      entity_id=SIGNAL_ID, context={"signals": [signal_payload()]})
    ack = signal_op("signal.acknowledge", hlc.Timestamp(2, 0).pack(), "kiosk-a", image("open"), image("acknowledged"))
    escalation = {"id": str(uuid.uuid4()), "signal_id": SIGNAL_ID, "from_tier": 1, "to_tier": 2, "reason": "needs parts",
                  "automatic": False, "raised_by": "anna", "raised_at": T0, "context": {}, "hlc": hlc.Timestamp(3, 0).pack()}
    esc = signal_op("signal.escalate", hlc.Timestamp(3, 0).pack(), "kiosk-b", image("acknowledged"), image("open", 0, 2),
                    {"escalation": escalation})
    # a concurrent resolve at tier 1 loses to the escalation (a higher tier)
    resolve = signal_op("signal.resolve", hlc.Timestamp(9, 0).pack(), "kiosk-c", image("acknowledged"), image("resolved"),
                        {"outcome": {"note": "fixed"}})
    result = fold(states([resolve, esc, ack, ingest]))
    row = project("signal", result[("signal", SIGNAL_ID)])
    assert (row["status"], row["tier"], row["acknowledged_by"], row["outcome"]) == ("open", 2, None, None)
    assert ("escalation", escalation["id"]) in result


# --------------------------------------------------------------------------------------
# Write-once records and decisions
# --------------------------------------------------------------------------------------


def decision_op(decision_id, stamp, origin, before_status="open", supersedes=None, kind="act"):
    decision = {"id": decision_id, "signal_id": SIGNAL_ID, "kind": kind, "rationale": "r", "disposition": None,
                "shelved_until": None, "decided_by": origin, "decided_at": T0, "tier": 1, "meeting_id": None,
                "policy_version": "abc", "ai_snapshot": {}, "supersedes": supersedes, "hlc": stamp}
    return signal_op("signal.decide", stamp, origin, image(before_status), image("actioned"), {"decision": decision})


@given(st.lists(st.tuples(st.uuids(), clocks, origins, st.sampled_from(["open", "acknowledged", "actioned"])),
                min_size=1, max_size=6, unique_by=lambda t: t[0]),
       st.randoms(use_true_random=False))
def test_decisions_are_never_overwritten_and_siblings_are_found_in_any_order(specs, rnd):
    ops = [decision_op(str(i), s, o, b) for i, s, o, b in specs]
    changes = states(ops)
    reference = fold(changes)
    shuffled = changes * 2
    rnd.shuffle(shuffled)
    assert fold(shuffled) == reference
    decisions = [project(e, s) for (e, _), s in reference.items() if e == "decision"]
    assert sorted(d["id"] for d in decisions) == sorted(str(i) for i, *_ in specs)
    first = sorted(str(i) for i, _, _, b in specs if b in ("open", "acknowledged"))
    groups = sibling_groups(decisions)
    assert list(groups.values()) == ([first] if len(first) > 1 else [])
    assert sibling_groups(reversed(decisions)) == groups


def test_a_second_version_of_a_decision_never_replaces_the_first():
    first = decision_op("d1", hlc.Timestamp(1, 0).pack(), "kiosk-a")
    again = decision_op("d1", hlc.Timestamp(5, 0).pack(), "kiosk-b", kind="dismiss")
    a = next(s for e, _, s in states([first]) if e == "decision")
    b = next(s for e, _, s in states([again]) if e == "decision")
    assert join("decision", a, b) == join("decision", b, a) == a


@given(st.lists(st.tuples(st.sets(st.sampled_from("abcdef"), min_size=1), clocks), min_size=1, max_size=5),
       st.randoms(use_true_random=False))
def test_conflict_members_are_a_union(parts, rnd):
    group = (SIGNAL_ID, "first", 0, 1)
    changes = [conflict_state(group, sorted(members), stamp, "server") for members, stamp in parts]
    reference = join_all("conflict", changes)
    rnd.shuffle(changes)
    assert join_all("conflict", changes + changes[:1]) == reference
    row = project("conflict", reference)
    assert row["members"] == sorted(set().union(*(m for m, _ in parts)))
    assert row["id"] == conflict_id(group)


def test_comments_and_attendance_are_append_only_and_concurrent_adds_merge():
    stamp = hlc.Timestamp(1, 0).pack()
    comment = mutation("comment.add", {"id": "c1", "target": "signal", "target_id": SIGNAL_ID, "author_id": "anna",
                                       "body": "seen", "created_at": T0, "hlc": stamp}, stamp, "kiosk-a")
    att_a = mutation("meeting.attend", {"meeting_id": "m1", "person_id": "ben", "present": True}, stamp, "kiosk-a")
    att_b = mutation("meeting.attend", {"meeting_id": "m1", "person_id": "ben", "present": True},
                     hlc.Timestamp(2, 0).pack(), "kiosk-b")
    result = fold(states([att_b, comment, att_a, comment]))
    assert project("comment", result[("comment", "c1")])["body"] == "seen"
    assert project("attendance", result[("attendance", "m1:ben")])["present"] is True


@given(st.sampled_from(["nope.nothing", "action.set_owner", "signal.decide", "comment.add"]), clocks)
def test_malformed_mutations_are_refused_not_half_applied(name, stamp):
    try:
        deltas = deltas_of(mutation(name, {}, stamp, "kiosk-a"))
    except MutationError as exc:
        assert exc.code in ("unknown_mutation", "invalid_args", "invalid_context")
    else:
        assert all(isinstance(d, Delta) for d in deltas)


def test_stale_reopen_is_described_as_such():
    [delta] = deltas_of(mutation("action.reopen", {"action_id": ACTION_ID, "expected_epoch": 2, "status": "open", "epoch": 3},
                                 hlc.Timestamp(1, 0).pack(), "kiosk-a"))
    assert delta.expect_epoch == 2 and delta.must_exist


# --------------------------------------------------------------------------------------
# The hybrid logical clock
# --------------------------------------------------------------------------------------


@given(st.lists(st.one_of(st.tuples(st.just("tick"), st.integers(0, 10**6)),
                          st.tuples(st.just("recv"), st.integers(0, 10**6), st.integers(0, 2 * 10**6), st.integers(0, 5))),
                max_size=40))
@settings(max_examples=200)
def test_hlc_is_monotone_and_moves_past_what_it_receives(events):
    clock = hlc.ZERO
    for event in events:
        if event[0] == "tick":
            after = hlc.tick(clock, event[1])
        else:
            wall, remote_l, remote_c = event[1], event[2], event[3]
            remote = hlc.Timestamp(remote_l, remote_c)
            after = hlc.receive(clock, remote, wall)
            if remote.l <= wall + hlc.MAX_DRIFT_MS:
                assert after > remote, "receive must move past the remote stamp"
            else:
                assert after.l <= max(clock.l, wall + hlc.MAX_DRIFT_MS) + 1, "a clock far ahead is clamped"
        assert after > clock
        assert hlc.Timestamp.unpack(after.pack()) == after
        assert (after.pack() > clock.pack()) == (after > clock)
        clock = after


@given(st.integers(0, 10**9), st.integers(0, 10**6))
def test_hlc_stays_close_to_the_wall_clock(wall, skew):
    clock = hlc.receive(hlc.ZERO, hlc.Timestamp(wall + skew, 0), wall)
    assert clock.l - wall <= min(skew, hlc.MAX_DRIFT_MS)


# ----- the stable JSON that mutation hashes are taken of -----
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


def _reordered(value):
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


@given(_JSON)
def test_a_mutation_hash_does_not_depend_on_key_order_and_reads_back_as_its_value(value):
    from tiermeet.services.unit import payload_sha256
    from tiermeet.sync.jsonutil import canonical

    assert canonical(value) == canonical(_reordered(value))
    assert payload_sha256("action.set_owner", value) == payload_sha256("action.set_owner", _reordered(value))
    assert json.loads(canonical(value)) == value
