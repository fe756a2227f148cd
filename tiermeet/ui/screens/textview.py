"""A read-only page of text (escalations in, handover, refused changes), built in a thread."""

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static


class TextView(Screen):
    """A title, a scrollable text built by ``render_text`` off the UI thread, and Esc back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    #: Markup for the top bar.
    heading = ""
    #: Id of the text widget (what tests and styles address).
    text_id = "text"

    def compose(self) -> ComposeResult:
        yield Static(self.heading, id="topbar")
        with VerticalScroll():
            yield Static("Loading…", id=self.text_id)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def reload(self) -> None:
        """Build the text in a thread and show it."""
        text = self.render_text()
        self.app.call_from_thread(self.query_one(f"#{self.text_id}", Static).update, text)

    def render_text(self) -> Text:
        """The page's text; runs in a worker thread (services only, no widgets)."""
        raise NotImplementedError
