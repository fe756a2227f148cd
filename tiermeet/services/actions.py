"""Action use cases: create, reassign, change due time, start, done, verify, cancel, reopen.

Owner and due time are last-writer-wins fields for sync; the status moves along a
lattice (open < in progress < done < verified, cancelled terminal) that only an explicit
reopen turns back, in a new epoch (sync-protocol §2.6).
"""

import uuid
from datetime import datetime

from tiermeet.domain.enums import ActionStatus
from tiermeet.domain.errors import DomainError
from tiermeet.domain.lifecycle import next_action_status
from tiermeet.domain.refs import short_ref
from sqlalchemy.orm import Session

from tiermeet.services.context import Context
from tiermeet.services.lookup import find_person, load_record
from tiermeet.services.requests import ActionSpec
from tiermeet.services.signals import _new_action, fields_of, load_signal
from tiermeet.services.unit import Tx
from tiermeet.store.models import Action

IMAGE = ("title", "owner_id", "due_at", "status", "status_epoch")
#: When each status was reached, stamped on the action.
STATUS_STAMP = {ActionStatus.IN_PROGRESS: "started_at", ActionStatus.DONE: "done_at", ActionStatus.VERIFIED: "verified_at"}


def _image(action: Action) -> dict:
    return {name: getattr(action, name) for name in IMAGE}


def load_action(session: Session, key: "uuid.UUID | str") -> Action:
    """An action by id or short reference (``A-1a2b3c4d``), or a DomainError."""
    return load_record(session, Action, "action", key)


class ActionService:
    """Follow-up work and its owners."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(self, *, actor: str, title: str, owner: str, due_at: datetime, signal: "uuid.UUID | str | None" = None) -> Action:
        """New work for one owner, optionally on a signal."""
        with self.ctx.tx(actor) as tx:
            signal_id = load_signal(tx.session, signal).id if signal is not None else None
            stamp = tx.stamp()
            action = _new_action(tx, ActionSpec(title, owner, due_at), signal_id=signal_id, decision_id=None, stamp=stamp)
            tx.record(entity="action", entity_id=action.id, op="create", mutation="action.create",
                      args=fields_of(action), after=_image(action), stamp=stamp)
            return action

    def _edit(self, key, actor: str, verb: str, mutation: str, change) -> Action:
        with self.ctx.tx(actor) as tx:
            action = load_action(tx.session, key)
            before = _image(action)
            status = next_action_status(verb, ActionStatus(action.status), short_ref("action", action.id))
            args = change(tx, action) or {}
            if status.value != action.status:
                action.status = status.value
                if verb == "reopen":
                    action.status_epoch += 1
                    action.started_at = action.done_at = action.verified_at = None
                elif status in STATUS_STAMP:
                    setattr(action, STATUS_STAMP[status], tx.now)
                args |= {"status": status.value, "epoch": action.status_epoch}
            action.updated_at = tx.now
            action.updated_hlc = tx.record(entity="action", entity_id=action.id, op=verb, mutation=mutation,
                                           args={"action_id": action.id, **args}, before=before, after=_image(action))
            return action

    def reassign(self, key, *, actor: str, owner: str) -> Action:
        """Give the action to someone else."""
        def change(tx: Tx, action: Action) -> dict:
            action.owner_id = find_person(tx.session, owner).id
            return {"owner_id": action.owner_id}
        return self._edit(key, actor, "reassign", "action.set_owner", change)

    def change_due(self, key, *, actor: str, due_at: datetime) -> Action:
        """Move the due time (not into the past)."""
        def change(tx: Tx, action: Action) -> dict:
            if due_at.tzinfo is None:
                raise DomainError("the due time needs a time zone")
            if due_at <= tx.now:
                raise DomainError("the due time is in the past; pick a time from now on")
            action.due_at = due_at
            return {"due_at": due_at}
        return self._edit(key, actor, "change_due", "action.set_due", change)

    def start(self, key, *, actor: str) -> Action:
        """Work has begun."""
        return self._edit(key, actor, "start", "action.set_status", lambda tx, a: None)

    def done(self, key, *, actor: str) -> Action:
        """The owner says it is done."""
        return self._edit(key, actor, "done", "action.set_status", lambda tx, a: None)

    def verify(self, key, *, actor: str) -> Action:
        """Someone checked that it is really done."""
        return self._edit(key, actor, "verify", "action.set_status", lambda tx, a: None)

    def cancel(self, key, *, actor: str) -> Action:
        """No longer needed."""
        return self._edit(key, actor, "cancel", "action.set_status", lambda tx, a: None)

    def reopen(self, key, *, actor: str) -> Action:
        """Explicitly bring a finished or cancelled action back, in a new status epoch."""
        def change(tx: Tx, action: Action) -> dict:
            return {"expected_epoch": action.status_epoch}
        return self._edit(key, actor, "reopen", "action.reopen", change)
