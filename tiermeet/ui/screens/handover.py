"""Shift handover: everything still open at the end of a shift, with owners."""

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tiermeet.domain.refs import short_ref
from tiermeet.store.queries import Scope
from tiermeet.timefmt import time_left


class HandoverScreen(Screen):
    """What the next shift takes over."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope

    def compose(self) -> ComposeResult:
        yield Static("[b]Shift handover[/] — still open, with owners", id="topbar")
        with VerticalScroll():
            yield Static("Loading…", id="handover")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def reload(self) -> None:
        """Read what is open in a thread."""
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
        app.call_from_thread(self.query_one("#handover", Static).update, out)
