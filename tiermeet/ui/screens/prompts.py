"""Small forms: one line of text (comment, reason), and the resolve form."""

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label

from tiermeet.ui.screens.forms import FormDialog


def save_cancel() -> ComposeResult:
    """The Save and Cancel buttons at the foot of a form."""
    with Horizontal(classes="buttons"):
        yield Button("Save (enter)", variant="primary", id="save")
        yield Button("Cancel (esc)", id="cancel")


class TextDialog(FormDialog):
    """Asks for one required line of text and saves it."""

    def __init__(self, save, *, title: str, prompt: str, placeholder: str = "") -> None:
        super().__init__(save)
        self.title_text, self.prompt, self.placeholder = title, prompt, placeholder

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="text-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label(self.prompt, classes="field-label")
            yield Input(placeholder=self.placeholder, id="text")
            yield Label("", id="text-error", classes="field-error")
            yield Label("", id="form-error", classes="field-error form-error")
            yield from save_cancel()

    def on_mount(self) -> None:
        self.query_one("#text", Input).focus()

    def build_request(self) -> str | None:
        text = self.query_one("#text", Input).value.strip()
        self.field_error("text", "" if text else "This is required")
        return text or None


OUTCOME_FIELDS = (
    ("downtime", "Downtime avoided (minutes)"),
    ("scrap", "Scrap avoided (parts)"),
    ("yield", "Yield effect (percentage points, may be negative)"),
)


class ResolveDialog(FormDialog):
    """Closes a signal with what acting on it achieved; every number is optional."""

    def __init__(self, save, *, title: str) -> None:
        super().__init__(save)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="resolve-dialog"):
            yield Label(f"Resolve: {self.title_text}", classes="dialog-title")
            for field, label in OUTCOME_FIELDS:
                yield Label(label, classes="field-label")
                yield Input(id=field, type="number")
                yield Label("", id=f"{field}-error", classes="field-error")
            yield Label("What happened", classes="field-label")
            yield Input(id="note", placeholder="outcome note")
            yield Label("", id="form-error", classes="field-error form-error")
            yield from save_cancel()

    def on_mount(self) -> None:
        self.query_one("#downtime", Input).focus()

    def build_request(self) -> dict | None:
        values, ok = {}, True
        for field, _label in OUTCOME_FIELDS:
            text = self.query_one(f"#{field}", Input).value.strip()
            self.field_error(field, "")
            if not text:
                values[field] = None
                continue
            try:
                values[field] = float(text)
            except ValueError:
                self.field_error(field, f"{text!r} is not a number")
                ok = False
                continue
            if field != "yield" and values[field] < 0:
                self.field_error(field, "Cannot be negative")
                ok = False
        values["note"] = self.query_one("#note", Input).value.strip()
        return values if ok else None
