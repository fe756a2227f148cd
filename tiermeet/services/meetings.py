"""Meeting use cases: start a tier meeting, take attendance, end it.

A meeting's decisions point at it (``Decision.meeting_id``), so its minutes can be
rebuilt from the records rather than typed up afterwards.
"""

import uuid

from sqlalchemy import select

from tiermeet.domain.errors import DomainError
from tiermeet.domain.refs import short_ref
from tiermeet.services.context import Context
from tiermeet.services.lookup import find_person, load_record
from tiermeet.services.signals import fields_of
from tiermeet.services.unit import new_id
from tiermeet.settings import PLANT_SCOPE
from tiermeet.store.models import Meeting, MeetingAttendance


class MeetingService:
    """Runs tier meetings."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _check_scope(self, tier: int, scope: str) -> None:
        config = self.ctx.config
        tier_config = config.tier(tier)
        if tier_config is None:
            raise DomainError(f"this plant runs no tier {tier} meeting")
        valid = (set(config.line_area) if tier_config.scope == "line"
                 else {a.id for a in config.areas} if tier_config.scope == "area" else {PLANT_SCOPE})
        if scope not in valid:
            raise DomainError(f"{scope!r} is not a {tier_config.scope} of this plant; tier {tier} meets per {tier_config.scope}")

    def start(self, *, actor: str, tier: int, scope: str) -> Meeting:
        """Open a meeting with ``actor`` as facilitator, present from the start."""
        self._check_scope(tier, scope)
        with self.ctx.tx(actor) as tx:
            meeting = Meeting(id=new_id(), tier=tier, scope=scope, facilitator_id=tx.actor, started_at=tx.now,
                              timebox_minutes=self.ctx.config.tier(tier).meeting_minutes)
            tx.session.add(meeting)
            tx.session.add(MeetingAttendance(meeting_id=meeting.id, person_id=tx.actor, joined_at=tx.now))
            tx.record(entity="meeting", entity_id=meeting.id, op="start", mutation="meeting.start",
                      args=fields_of(meeting), after={"tier": tier, "scope": scope})
            return meeting

    def attend(self, meeting_key: "uuid.UUID | str", *, actor: str, person: str) -> MeetingAttendance:
        """Mark someone present (by id or badge scan); a second scan changes nothing."""
        with self.ctx.tx(actor) as tx:
            meeting = load_record(tx.session, Meeting, "meeting", meeting_key)
            if meeting.ended_at is not None:
                raise DomainError(f"meeting {short_ref('meeting', meeting.id)} has ended")
            who = find_person(tx.session, person)
            row = tx.session.get(MeetingAttendance, (meeting.id, who.id))
            if row is not None:
                return row
            row = MeetingAttendance(meeting_id=meeting.id, person_id=who.id, joined_at=tx.now)
            tx.session.add(row)
            tx.record(entity="meeting", entity_id=meeting.id, op="attend", mutation="meeting.attend",
                      args={"meeting_id": meeting.id, "person_id": who.id, "present": True}, after={"person_id": who.id})
            return row

    def end(self, meeting_key: "uuid.UUID | str", *, actor: str, notes: str = "") -> Meeting:
        """Close the meeting; its minutes are what was recorded against it."""
        with self.ctx.tx(actor) as tx:
            meeting = load_record(tx.session, Meeting, "meeting", meeting_key)
            if meeting.ended_at is not None:
                raise DomainError(f"meeting {short_ref('meeting', meeting.id)} has already ended")
            meeting.ended_at = tx.now
            meeting.notes = notes.strip() or None
            tx.record(entity="meeting", entity_id=meeting.id, op="end", mutation="meeting.end",
                      args={"meeting_id": meeting.id, "ended_at": tx.now, "notes": meeting.notes}, after={"ended_at": tx.now})
            return meeting

    def attendees(self, meeting_id: uuid.UUID) -> list[str]:
        """Ids of the people present at a meeting."""
        with self.ctx.read() as session:
            return list(session.scalars(select(MeetingAttendance.person_id).where(MeetingAttendance.meeting_id == meeting_id)))
