"""What every form dialog shares: saving in a thread, errors shown inline, nothing lost.

A dialog validates what it can beside each field, then hands a request to ``save`` (a
service call) in a thread worker. If the service or the store refuses, the message is
shown at the bottom of the form and the form stays open with everything still typed.
Once saved, it closes with what ``save`` returned, so the screen beneath can show the
change in the same frame that closes the dialog.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from textual import on, work
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tiermeet.domain.duetime import parse_due
from tiermeet.domain.shifts import ShiftCalendar
from tiermeet.settings import Person
from tiermeet.ui.errors import explain, explainable

#: Seconds a save may take before the form says it is saving: a save usually takes a few
#: milliseconds, and drawing the note would cost the dialog (and the board dimmed behind
#: it) one more frame before the board shows the change.
SAVING_NOTE_AFTER = 0.25


@dataclass(frozen=True)
class Saved:
    """A form's result once its save succeeded: what ``save`` returned."""

    value: object = None


class FormDialog(ModalScreen[Saved | None]):
    """A modal form that dismisses with ``Saved`` once ``save`` succeeded, None when cancelled."""

    BINDINGS = [
        ("escape", "dismiss(None)", "Cancel"),
        ("ctrl+s", "submit", "Save"),
        # Priority: the app hands each key to the field focused when it reads the key, and
        # a plain Tab moves the focus only once the field has handled it, so keys typed
        # quickly after a Tab went into the field being left. Forms have no use for Tab
        # inside a field.
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def __init__(self, save: Callable[[object], object]) -> None:
        super().__init__()
        self.save = save
        self._saving_note = None

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
        self.dismiss(None)

    def action_submit(self) -> None:
        """Validate and save; subclasses build the request."""
        request = self.build_request()
        if request is None:
            self._focus_first_error()
            return
        self._saving_note = self.set_timer(SAVING_NOTE_AFTER, lambda: self.form_error("Saving…"))
        self._save(request)

    def _focus_first_error(self) -> None:
        """Put the cursor in the first field that needs fixing, so the shift lead retypes
        it at once instead of tabbing back to find it."""
        for label in self.query(".shown").results(Label):
            if label.has_class("hint-text") or not (label.id or "").endswith("-error"):
                continue
            fields = self.query(f"#{label.id.removesuffix('-error')}")
            if fields and fields.first().focusable:
                fields.first().focus()
                return

    def build_request(self) -> object | None:
        """The request to save, or None after showing what is wrong."""
        raise NotImplementedError

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def _save(self, request: object) -> None:
        try:
            result = Saved(self.save(request))
        except Exception as exc:  # noqa: BLE001 - sorted by explainable()
            if not explainable(exc):
                raise
            self.app.call_from_thread(self._save_done, None, explain(exc))
            return
        self.app.call_from_thread(self._save_done, result, None)

    def _save_done(self, result: Saved | None, error: str | None) -> None:
        """Close the form after a save, or keep it open with the reason it failed."""
        if self._saving_note is not None:
            self._saving_note.stop()
        if result is not None:
            self.dismiss(result)
        else:
            self.form_error(error)


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
