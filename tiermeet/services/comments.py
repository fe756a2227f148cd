"""Comments on signals and actions: append-only remarks, kept for the audit and sync."""

import uuid

from tiermeet.domain.enums import CommentTarget
from tiermeet.services.context import Context
from tiermeet.services.lookup import load_record
from tiermeet.services.signals import fields_of, require_text
from tiermeet.services.unit import new_id
from tiermeet.store.models import Action, Comment, Signal

TARGETS = {CommentTarget.SIGNAL: Signal, CommentTarget.ACTION: Action}


class CommentService:
    """Adds remarks; never edits or deletes them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def add(self, target: CommentTarget, key: "uuid.UUID | str", *, actor: str, body: str) -> Comment:
        """A new comment by ``actor`` on a signal or an action."""
        target = CommentTarget(target)
        body = require_text("the comment", body)
        with self.ctx.tx(actor) as tx:
            record = load_record(tx.session, TARGETS[target], target.value, key)
            stamp = tx.stamp()
            comment = Comment(id=new_id(), target=target.value, target_id=record.id, author_id=tx.actor,
                              body=body, created_at=tx.now, hlc=stamp)
            tx.session.add(comment)
            tx.record(entity="comment", entity_id=comment.id, op="add", mutation="comment.add", args=fields_of(comment),
                      after={"target": target.value, "target_id": record.id, "body": body}, stamp=stamp)
            return comment
