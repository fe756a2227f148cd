"""The tiermeet app: a tier board of open signals for one tier and scope.

The app receives its services through its constructor (one factory builds them for the
command line and for tests). The board loads one page at a time from the indexed board
query in a thread worker, so the first frame never waits for a large plant's history.
"""

from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from tiermeet.domain.refs import short_ref
from tiermeet.services.bundle import Services
from tiermeet.store.models import Signal
from tiermeet.timefmt import time_left

PAGE = 200
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


class TierMeetApp(App):
    """The board for one tier and scope."""

    CSS_PATH = Path(__file__).with_name("tiermeet.tcss")
    TITLE = "tiermeet"
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, services: Services, *, tier: int = 1, scope: str | None = None) -> None:
        super().__init__()
        self.services = services
        self.tier = tier
        self.scope = scope
        config = services.ctx.config
        tier_config = config.tier(tier)
        where = scope or "plant"
        self.sub_title = f"{config.plant.name} · Tier {tier} {tier_config.name if tier_config else ''} · {where}"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading the board…", id="status")
        yield DataTable(id="board", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Sev", "Cat", "Line", "Title", "Source", "Left", "Status", "Ref")
        self.load_board()

    def action_refresh(self) -> None:
        """Reload the first page of the board."""
        self.load_board()

    @work(thread=True, exclusive=True, exit_on_error=False, group="board")
    def load_board(self) -> None:
        """Read the first page in a thread; hand the rows to the UI thread."""
        board = self.services.board
        rows = board.page(board.scope_for(self.tier, self.scope), limit=PAGE)
        self.call_from_thread(self._show, rows)

    def _show(self, rows: list[Signal]) -> None:
        table = self.query_one(DataTable)
        now = self.services.ctx.clock.now()
        table.clear()
        for s in rows:
            table.add_row(
                f"[{SEVERITY_STYLE[s.severity]}]{s.severity}[/]", s.category, s.line or s.area, s.title,
                s.source if s.confidence is None else f"{s.source} {s.confidence:.0%}",
                time_left(s.deadline, now), s.status, short_ref("signal", s.id), key=str(s.id),
            )
        more = " (first page)" if len(rows) == PAGE else ""
        self.query_one("#status", Static).update(f"{len(rows)} open signals{more}" if rows else "No open signals — the board is clear.")
