"""Several devices and the real central app, in process, through a network that misbehaves
(sync-protocol §3.3): requests dropped, responses lost after the server committed,
requests delivered twice, old pushes replayed late, 503s, and device clocks hours apart.
After the network heals and everyone syncs, every device holds exactly what the server
holds, every change made anywhere was applied once or rejected with a reason the device
recorded, nothing was applied twice, and every device's audit log holds every entry made
anywhere, once.
"""

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from conftest import signal_record
from sync_helpers import (
    AUDIT_FIELDS, NOW, FaultyTransport, central_audit, central_rows, client_for, device_audit, device_rows, diff,
    make_central, make_device, outbox_size, server_urls,
)
from tiermeet.domain.errors import DomainError
from tiermeet.ingest.readers import Row
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.store.models import Action, Meeting, Signal
from tiermeet.store.models_sync import ProcessedMutation

PEOPLE = ("anna", "ben", "chen")


class Device:
    def __init__(self, tmp_path, name, central, seed, skew_hours):
        self.name = name
        self.skew = timedelta(hours=skew_hours)
        self.services = make_device(tmp_path, name, at=NOW + self.skew)
        self.transport = FaultyTransport(central.transport(), seed)
        self.client = client_for(self.services, central, transport=self.transport, batch=7, page=11, attempts=4)
        self.committed: set[str] = set()

    def at(self, when):
        self.services.ctx.clock.at = when + self.skew

    def outbox_ids(self) -> set[str]:
        with self.services.ctx.read() as session:
            return {str(uuid.UUID(r[0])) for r in session.execute(text("SELECT mutation_id FROM outbox"))} | \
                   {str(uuid.UUID(r[0])) for r in session.execute(text("SELECT mutation_id FROM outbox_archive"))}


def _pick(rnd, rows):
    return rnd.choice(rows) if rows else None


def step(rnd: random.Random, device: Device, n: int) -> None:
    s = device.services
    with s.ctx.read() as session:
        signals = session.scalars(select(Signal)).all()
        actions = session.scalars(select(Action)).all()
        meetings = session.scalars(select(Meeting)).all()
    now = s.ctx.clock.now()
    person = rnd.choice(PEOPLE)
    op = rnd.choice(["ingest", "ack", "decide", "decide", "escalate", "resolve", "reopen", "owner", "due", "status",
                     "status", "areopen", "comment", "meeting"])
    try:
        if op == "ingest" or not signals:
            # Each kiosk ingests its own feed; the same record ingested on two kiosks offline
            # is the known gap covered in test_server_api (duplicate ingest across devices).
            records = [signal_record(rnd.randrange(40), external_id=f"{device.name}-{rnd.randrange(40)}",
                                     line=rnd.choice(["CNC1", "CNC2"])) for _ in range(rnd.randint(1, 3))]
            s.ingest.ingest([Row(i, r) for i, r in enumerate(records)], origin=device.name)
        elif op == "ack":
            s.signals.acknowledge(_pick(rnd, signals).id, actor=person)
        elif op == "decide":
            kind = rnd.choice(["act", "monitor", "dismiss"])
            spec = ActionSpec(f"do {n}", rnd.choice(PEOPLE), now + timedelta(days=1)) if kind == "act" and rnd.random() < 0.7 else None
            s.signals.decide(_pick(rnd, signals).id, actor=person, kind=kind, rationale=f"r{n}",
                             disposition="false_positive" if kind == "dismiss" else None, action=spec)
        elif op == "escalate":
            s.signals.escalate(_pick(rnd, signals).id, actor=person, reason=f"up {n}")
        elif op == "resolve":
            s.signals.resolve(_pick(rnd, signals).id, actor=person, outcome=Outcome(note=f"done {n}"))
        elif op == "reopen":
            s.signals.reopen(_pick(rnd, signals).id, actor=person, reason=f"again {n}")
        elif op == "owner" and actions:
            s.actions.reassign(_pick(rnd, actions).id, actor=person, owner=rnd.choice(PEOPLE))
        elif op == "due" and actions:
            s.actions.change_due(_pick(rnd, actions).id, actor=person, due_at=now + timedelta(hours=rnd.randint(2, 90)))
        elif op == "status" and actions:
            verb = rnd.choice(["start", "done", "verify", "cancel"])
            getattr(s.actions, verb)(_pick(rnd, actions).id, actor=person)
        elif op == "areopen" and actions:
            s.actions.reopen(_pick(rnd, actions).id, actor=person)
        elif op == "comment":
            s.comments.add("signal", _pick(rnd, signals).id, actor=person, body=f"note {n} from {device.name}")
        elif op == "meeting":
            open_ones = [m for m in meetings if m.ended_at is None]
            if open_ones and rnd.random() < 0.5:
                meeting = rnd.choice(open_ones)
                if rnd.random() < 0.5:
                    s.meetings.attend(meeting.id, actor=person, person=rnd.choice(PEOPLE))
                else:
                    s.meetings.end(meeting.id, actor=person, notes=f"end {n}")
            else:
                s.meetings.start(actor=person, tier=1, scope=rnd.choice(["CNC1", "CNC2"]))
    except DomainError:
        pass


def run_scenario(tmp_path, url, seed, *, devices=3, steps=60):
    rnd = random.Random(seed)
    now = {"t": NOW}
    central = make_central(url, now=lambda: now["t"])
    fleet = [Device(tmp_path, f"kiosk{i}", central, seed * 10 + i, skew) for i, skew in
             zip(range(devices), [0, 3, -2, 7, -30][:devices])]
    for n in range(steps):
        now["t"] = NOW + timedelta(minutes=5 * n)
        device = rnd.choice(fleet)
        device.at(now["t"])
        if rnd.random() < 0.3:
            device.client.run_round()  # may fail part-way: faults are on
        else:
            step(rnd, device, n)
    # heal, then sync until nothing moves
    for device in fleet:
        device.transport.enabled = False
    for _ in range(3):
        for device in fleet:
            result = device.client.run_round()
            assert result.ok, (device.name, result.error)
    return central, fleet


@pytest.mark.parametrize("seed", range(8))
def test_devices_converge_on_the_server_state_through_a_faulty_network(tmp_path, seed):
    central, fleet = run_scenario(tmp_path, server_urls(tmp_path)[0], seed)
    check_converged(central, fleet)


def test_devices_converge_on_postgresql(tmp_path):
    from sync_helpers import pg_url_or_skip

    url = pg_url_or_skip(f"tm_sim_{tmp_path.name[-20:].lower().replace('-', '_')}")
    central, fleet = run_scenario(tmp_path, url, 101, devices=4, steps=70)
    check_converged(central, fleet)


def check_converged(central, fleet):
    expected = central_rows(central)
    for device in fleet:
        assert outbox_size(device.services) == 0, f"{device.name} still has changes to push"
        problems = diff(device_rows(device.services), expected)
        assert problems == [], f"{device.name} differs from central:\n" + "\n".join(problems[:20])
    # nothing lost: every change any device committed was processed exactly once
    with central.engine.connect() as conn:
        processed = conn.execute(select(ProcessedMutation.mutation_id, ProcessedMutation.status,
                                        ProcessedMutation.client_id)).all()
    ids = [p.mutation_id for p in processed]
    assert len(ids) == len(set(ids)), "a mutation was processed twice"
    made = set().union(*(d.outbox_ids() for d in fleet))
    assert made == set(ids), (sorted(made - set(ids))[:5], sorted(set(ids) - made)[:5])
    # every rejection is recorded on the device that made the change
    for device in fleet:
        with device.services.ctx.read() as session:
            local = {str(uuid.UUID(r[0])) for r in session.execute(text("SELECT mutation_id FROM rejection"))}
        rejected = {p.mutation_id for p in processed if p.status == "rejected" and p.client_id == device.client.client_id}
        assert local == rejected
    # the audit log: each entry once at central, and every device holds them all
    entries = central_audit(central)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "an audit entry was logged twice"
    central_log = {e["id"]: {**{f: e[f] for f in AUDIT_FIELDS}, "before": e["before"], "after": e["after"]} for e in entries}
    for device in fleet:
        local = device_audit(device.services, travelling_only=True)
        assert set(local) == set(central_log), (device.name, sorted(set(local) ^ set(central_log))[:5])
        assert local == central_log, device.name
    # no comment doubled
    rows = central_rows(central)["comment"]
    bodies = [r["body"] for r in rows.values()]
    assert len(bodies) == len(set(bodies))
    assert sum(sum(d.transport.counts.values()) - d.transport.counts["ok"] for d in fleet) > 0, "no fault was injected"
