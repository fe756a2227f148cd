"""Meeting minutes, rebuilt from what was recorded against the meeting.

Nobody types minutes: attendees come from the attendance rows, decisions from those
carrying the meeting's id, actions from those decisions, escalations from those raised
from the meeting's tier and scope while it ran.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from tiermeet.domain.errors import DomainError
from tiermeet.domain.refs import short_ref
from tiermeet.services.board import scope_for
from tiermeet.services.context import Context
from tiermeet.services.lookup import load_record
from tiermeet.services.unit import jsonable
from tiermeet.services.views import scope_condition
from tiermeet.store.models import Action, Decision, Escalation, Meeting, MeetingAttendance, Person, Signal


@dataclass(frozen=True)
class Minutes:
    """One meeting's record."""

    meeting: Meeting
    facilitator: str
    attendees: list[str]
    decisions: list[dict]
    actions: list[dict]
    escalations: list[dict]

    @property
    def minutes_long(self) -> int | None:
        """How long the meeting ran, in whole minutes (None while it runs)."""
        if self.meeting.ended_at is None:
            return None
        return round((self.meeting.ended_at - self.meeting.started_at).total_seconds() / 60)

    def as_dict(self) -> dict:
        """Stable, documented keys for ``--format json``."""
        m = self.meeting
        return jsonable({
            "meeting_id": m.id, "ref": short_ref("meeting", m.id), "tier": m.tier, "scope": m.scope,
            "facilitator": self.facilitator, "started_at": m.started_at, "ended_at": m.ended_at,
            "duration_minutes": self.minutes_long, "timebox_minutes": m.timebox_minutes, "attendees": self.attendees,
            "decisions": self.decisions, "actions": self.actions, "escalations": self.escalations, "notes": m.notes,
        })

    def to_json(self) -> str:
        """The minutes as one JSON document."""
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_markdown(self, zone) -> str:
        """The minutes as Markdown, times in the plant's zone."""
        m = self.meeting
        start = m.started_at.astimezone(zone)
        lines = [f"# Tier {m.tier} meeting · {m.scope} · {start:%a %d %b %Y %H:%M}", ""]
        took = f"{self.minutes_long} min" if self.minutes_long is not None else "still running"
        lines += [f"- Facilitator: {self.facilitator}", f"- Duration: {took} (time box {m.timebox_minutes} min)",
                  f"- Attendees ({len(self.attendees)}): {', '.join(self.attendees)}", ""]
        lines += ["## Decisions", ""] + ([f"- **{d['signal_ref']}** {d['signal_title']}: {d['kind']}"
                                         f"{' (' + d['disposition'] + ')' if d['disposition'] else ''} by {d['by']}"
                                         f"{' — ' + d['rationale'] if d['rationale'] else ''}" for d in self.decisions] or ["- none"])
        lines += ["", "## Actions", ""] + ([f"- {a['title']} — **{a['owner']}**, due {datetime.fromisoformat(a['due_at']).astimezone(zone):%a %d %b %H:%M}"
                                            f" ({a['status']})" for a in self.actions] or ["- none"])
        lines += ["", "## Escalations raised", ""] + ([f"- **{e['signal_ref']}** {e['signal_title']}: tier {e['from_tier']} → {e['to_tier']}"
                                                       f" — {e['reason']}" for e in self.escalations] or ["- none"])
        if m.notes:
            lines += ["", "## Notes", "", m.notes]
        return "\n".join(lines) + "\n"


class MinutesService:
    """Builds minutes for finished (or running) meetings."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def last_meeting_id(self) -> uuid.UUID:
        """The most recently started meeting."""
        with self.ctx.read() as session:
            found = session.scalars(select(Meeting.id).order_by(Meeting.started_at.desc()).limit(1)).first()
        if found is None:
            raise DomainError("no meeting has been held yet")
        return found

    def minutes(self, key: "uuid.UUID | str") -> Minutes:
        """The minutes of one meeting."""
        with self.ctx.read() as session:
            meeting = load_record(session, Meeting, "meeting", key)
            names = dict(session.execute(select(Person.id, Person.name)).all())
            attendees = [names.get(pid, pid) for pid in session.scalars(
                select(MeetingAttendance.person_id).where(MeetingAttendance.meeting_id == meeting.id).order_by(MeetingAttendance.joined_at))]
            rows = session.execute(select(Decision, Signal).join(Signal, Signal.id == Decision.signal_id)
                                   .where(Decision.meeting_id == meeting.id).order_by(Decision.decided_at)).all()
            decisions = [{"signal_id": s.id, "signal_ref": short_ref("signal", s.id), "signal_title": s.title, "kind": d.kind,
                          "disposition": d.disposition, "by": names.get(d.decided_by, d.decided_by), "rationale": d.rationale,
                          "at": d.decided_at} for d, s in rows]
            decision_ids = [d.id for d, _s in rows]
            actions = [{"title": a.title, "owner": names.get(a.owner_id, a.owner_id), "due_at": a.due_at, "status": a.status}
                       for a in session.scalars(select(Action).where(Action.decision_id.in_(decision_ids)).order_by(Action.created_at))]
            until = meeting.ended_at or self.ctx.clock.now()
            stmt = (select(Escalation, Signal).join(Signal, Signal.id == Escalation.signal_id)
                    .where(Escalation.from_tier == meeting.tier, Escalation.raised_at >= meeting.started_at, Escalation.raised_at <= until))
            condition = scope_condition(scope_for(self.ctx.config, None, meeting.scope))
            if condition is not None:
                stmt = stmt.where(condition)
            escalations = [{"signal_ref": short_ref("signal", s.id), "signal_title": s.title, "from_tier": e.from_tier,
                            "to_tier": e.to_tier, "reason": e.reason, "by": names.get(e.raised_by, e.raised_by)}
                           for e, s in session.execute(stmt.order_by(Escalation.raised_at))]
            return Minutes(meeting, names.get(meeting.facilitator_id, meeting.facilitator_id), attendees, jsonable(decisions),
                           jsonable(actions), escalations)
