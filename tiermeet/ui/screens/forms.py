"""What every form dialog shares: saving in a thread, errors shown inline, nothing lost.

A dialog validates what it can beside each field, then hands a request to ``save`` (a
service call) in a thread worker. If the service or the store refuses, the message is
shown at the bottom of the form and the form stays open with everything still typed.
"""

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from textual import on, work
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tiermeet.domain.duetime import parse_due
from tiermeet.domain.shifts import ShiftCalendar
from tiermeet.settings import Person
from tiermeet.ui.errors import explain, explainable


class FormDialog(ModalScreen[bool]):
    """A modal form that dismisses with True once ``save`` succeeded."""

    BINDINGS = [("escape", "dismiss(False)", "Cancel"), ("ctrl+s", "submit", "Save")]

    def __init__(self, save: Callable[[object], object]) -> None:
        super().__init__()
        self.save = save

    def field_error(self, field: str, message: str, *, hint: bool = False) -> None:
        """Show (or clear, with "") the message beside ``field``; a hint (a preview of what
        was understood) is not drawn as an error."""
        label = self.query_one(f"#{field}-error", Label)
        label.update(message)
        label.set_class(bool(message), "shown")
        label.set_class(hint, "hint-text")

    def form_error(self, message: str) -> None:
        """Show a message for the form as a whole."""
        self.field_error("form", message)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(False)

    def action_submit(self) -> None:
        """Validate and save; subclasses build the request."""
        request = self.build_request()
        if request is not None:
            self.form_error("Saving…")
            self._save(request)

    def build_request(self) -> object | None:
        """The request to save, or None after showing what is wrong."""
        raise NotImplementedError

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def _save(self, request: object) -> None:
        try:
            self.save(request)
        except Exception as exc:  # noqa: BLE001 - sorted by explainable()
            if not explainable(exc):
                raise
            self.app.call_from_thread(self.form_error, explain(exc))
            return
        self.app.call_from_thread(self.dismiss, True)


def find_owner(people: list[Person], typed: str) -> Person | None:
    """The person a typed name, id or badge means (a unique name prefix is enough)."""
    text = typed.strip().lower()
    if not text:
        return None
    exact = [p for p in people if text in (p.id.lower(), p.badge.lower(), p.name.lower())]
    if exact:
        return exact[0]
    starts = [p for p in people if p.name.lower().startswith(text) or any(w.startswith(text) for w in p.name.lower().split())]
    return starts[0] if len(starts) == 1 else None


def read_due(typed: str, now: datetime, zone: ZoneInfo, calendar: ShiftCalendar) -> tuple[datetime | None, str]:
    """The due time ``typed`` means and a preview or error text for beside the field."""
    try:
        due = parse_due(typed, now, zone, calendar)
    except ValueError as exc:
        return None, str(exc)
    return due, f"= {due.astimezone(zone):%a %d %b %H:%M}"
