"""Shift handover: everything still open at the end of a shift, with owners."""

from rich.text import Text

from tiermeet.domain.refs import short_ref
from tiermeet.store.queries import Scope
from tiermeet.timefmt import time_left
from tiermeet.ui.screens.textview import TextView


class HandoverScreen(TextView):
    """What the next shift takes over."""

    heading = "[b]Shift handover[/] — still open, with owners"
    text_id = "handover"

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope

    def render_text(self) -> Text:
        app = self.app
        now = app.now()
        signals, actions = app.services.views.handover(self.scope, now)
        shift = app.services.ctx.config.calendar.current(now)
        out = Text()
        if shift:
            out.append(f"Shift {shift.name} ends {shift.end.astimezone(app.zone):%H:%M}\n\n", style="bold")
        out.append(f"Open signals ({len(signals)})\n", style="bold underline")
        for s, owner in signals:
            left = time_left(s.deadline, now)
            out.append(f"{short_ref('signal', s.id)} {s.severity:<8} {s.line or s.area:<6} {s.title} · {s.status} · "
                       f"{left} · {owner or 'no owner'}\n", style="red" if left.startswith("-") else "")
        out.append(f"\nOpen actions ({len(actions)})\n", style="bold underline")
        for row in actions:
            a = row.action
            out.append(f"{row.owner_name}: {a.title} · due {a.due_at.astimezone(app.zone):%a %H:%M} · {a.status.replace('_', ' ')}\n",
                       style="red" if row.overdue else "")
        return out
