"""The tier board: open signals for one tier and scope, the selected one's story, and
one-key triage.

Rows come a page at a time from the indexed board query (never the whole history), in a
thread worker. A change committed by anyone — this kiosk, another one, ingest, the sweep,
sync — is noticed through the database's data version within a second, and only the rows
that changed are redrawn. Time left counts down on its own timer.
"""

from dataclasses import replace
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Select, Static
from textual.worker import get_current_worker

from tiermeet.domain.enums import Category, SignalStatus
from tiermeet.store.queries import Cursor, Filters, Scope, SignalRow
from tiermeet.timefmt import span, time_left
from tiermeet.ui.triage import TRIAGE_BINDINGS, TriageMixin
from tiermeet.ui.widgets.board_table import BoardTable
from tiermeet.ui.widgets.detail import SignalDetail

PAGE = 200
#: Share of the window left below which time left turns amber.
AMBER_SHARE = 0.25
SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "dim"}
SEVERITY_SHORT = {"critical": "CRIT", "high": "HIGH", "medium": "MED", "low": "LOW"}
STATUS_SHORT = {"open": "open", "acknowledged": "ack'd", "actioned": "actioned", "resolved": "resolved",
                "dismissed": "dismissed", "shelved": "shelved"}
#: Columns by importance, left to right, with fixed widths (None: the title takes what is
#: left). Fixed widths keep narrow kiosks readable and spare the table measuring cells.
COLUMNS = (("sev", "Sev", 4), ("left", "Left", 10), ("status", "Status", 9), ("cat", "Q", 1),
           ("where", "Line/asset", 12), ("title", "Title", None), ("source", "Source", 18), ("age", "Age", 7))
FIXED = sum(w for _k, _l, w in COLUMNS if w) + 2 * len(COLUMNS)
MIN_TITLE = 24
#: Seconds the cursor must rest on a row before its story is loaded.
STORY_DELAY = 0.15
#: Width of the detail pane beside the board on wide screens (tiermeet.tcss says the same).
DETAIL_WIDTH = 56


def left_cell(signal: SignalRow, now: datetime) -> Text:
    """Time left, amber near the end of the window, red once breached; a decided signal's
    window is met, whatever the clock says now."""
    if signal.status == "actioned":
        return Text("decided", style="green")
    text = time_left(signal.deadline, now)
    window = (signal.deadline - signal.tier_entered_at).total_seconds() or 1
    remaining = (signal.deadline - now).total_seconds()
    style = "bold red" if remaining < 0 else "dark_orange" if remaining / window < AMBER_SHARE else ""
    return Text(text if remaining >= 0 else f"late {text[1:].replace(' ', '')}", style=style)


def row_cells(signal: SignalRow, now: datetime) -> tuple:
    """The board cells of a signal, in COLUMNS order."""
    where = signal.line or signal.area
    source = signal.source if signal.confidence is None else f"{signal.source} {signal.confidence:.0%}"
    return (Text(SEVERITY_SHORT[signal.severity], style=SEVERITY_STYLE[signal.severity]), left_cell(signal, now),
            STATUS_SHORT[signal.status], Text(signal.category[0].upper(), style="bold"),
            f"{where}·{signal.asset}" if signal.asset else where, signal.title, source, span(now - signal.detected_at))


class BoardScreen(TriageMixin, Screen):
    """One tier board."""

    BINDINGS = [
        *TRIAGE_BINDINGS,
        Binding("m", "meeting", "Meeting"),
        Binding("t", "actions", "Actions"),
        Binding("slash", "search", "Search"),
        Binding("question_mark", "app.show_help_panel", "Keys"),
        Binding("enter", "toggle_detail", "Details"),
        Binding("f", "filters", "Filter", show=False),
        Binding("i", "escalations_in", "Esc. in", show=False),
        Binding("h", "handover", "Handover", show=False),
        Binding("g", "metrics", "Metrics", show=False),
        Binding("b", "switch_board", "Board", show=False),
        Binding("f5", "reload", "Reload", show=False),
        Binding("escape", "clear_search", "Clear", show=False),
    ]

    def __init__(self, *, tier: int, scope: str) -> None:
        super().__init__()
        self.tier = tier
        self.scope_id = scope
        self.rows: list[SignalRow] = []
        self.filters = Filters()
        self.more = False
        self._context_loaded = False
        self._sources: list[str] = []
        self.suspended: list[str] = []
        self._title_width = 0
        self._story_timer = None
        self._drawn = False

    # ----- layout -----
    def compose(self) -> ComposeResult:
        config = self.app.services.ctx.config
        yield Static(id="topbar")
        with Horizontal(id="filterbar"):
            yield Input(placeholder="search title, asset, detail", id="search")
            yield Select([(c.value, c.value) for c in Category], prompt="category", id="f-category")
            yield Select([(s.value, s.value) for s in SignalStatus], prompt="status: active", id="f-status")
            yield Select([(ln, ln) for ln in config.line_area], prompt="line", id="f-line")
            yield Select([], prompt="source", id="f-source")
        with Horizontal(id="main"):
            yield BoardTable(id="board", cursor_type="row", zebra_stripes=True)
            yield SignalDetail(id="detail")
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(BoardTable)
        self._layout_columns()
        table.focus()
        self.update_topbar()
        self.load_first_page()
        self.set_interval(1.0, self.poll_changes)
        self.set_interval(5.0, self.tick_countdown)

    def on_screen_resume(self) -> None:
        """Back from a dialog, a view or a meeting: the top bar may have news."""
        self.update_topbar()

    def on_resize(self) -> None:
        self.query_one("#main").set_class(self.size.width < 120, "narrow")
        self._layout_columns()

    def _layout_columns(self) -> None:
        """Give the title the width the other columns leave (rebuilds only if it changed)."""
        board_width = self.size.width if self.size.width < 120 else self.size.width - DETAIL_WIDTH - 1
        width = max(MIN_TITLE, board_width - FIXED - 2)
        if width == self._title_width:
            return
        self._title_width = width
        table = self.query_one(BoardTable)
        table.clear(columns=True)
        for key, label, fixed in COLUMNS:
            table.add_column(label, key=key, width=fixed or width)
        now = self.app.now()
        for signal in self.rows:
            table.add_row(*row_cells(signal, now), key=str(signal.id))

    @property
    def board_scope(self) -> Scope:
        """The scope of this board, narrowed by the line filter."""
        scope = self.app.services.board.scope_for(self.tier, self.scope_id)
        line = self.query_one("#f-line", Select).value
        return replace(scope, line=line, area=None) if isinstance(line, str) else scope

    def update_topbar(self) -> None:
        """Plant, board, operator and meeting."""
        app = self.app
        config = app.services.ctx.config
        tier = config.tier(self.tier)
        who = app.operator.name if app.operator else "not signed in (press any triage key)"
        meeting = " · MEETING" if app.meeting else ""
        suspended = f" · [reverse]autonomy suspended: {', '.join(self.suspended)}[/]" if self.suspended else ""
        self.query_one("#topbar", Static).update(
            f"[b]{config.plant.name}[/] · Tier {self.tier} {tier.name if tier else ''} · {self.scope_id} · {who}{meeting}{suspended}"
        )

    # ----- loading -----
    def load_first_page(self) -> None:
        """Reload from the top of the board."""
        self._load_top(self.board_scope, self.filters)

    @work(thread=True, exclusive=True, exit_on_error=False, group="board")
    def _load_top(self, scope: Scope, filters: Filters) -> None:
        """The top of the board: the rows one screen shows, drawn at once, then the rest
        of the page once they are on screen. A frame then costs the same on a board of a
        dozen signals as on one of thousands, and paging keeps whole pages."""
        board, screenful = self.app.services.board, min(PAGE, max(1, self.app.size.height))
        rows = board.page(scope, filters, None, screenful)
        self.app.call_from_thread(self._apply_rows, rows, True, screenful)
        if len(rows) < screenful or screenful == PAGE:
            return
        self.app.call_from_thread(self.app.wait_for_refresh)  # the app's: it outlives this screen
        rest = board.page(scope, filters, Cursor.after(rows[-1]), PAGE - screenful)
        if not get_current_worker().is_cancelled:  # a newer load (filters, reload, paging) took over
            self.app.call_from_thread(self._apply_rows, rest, False, PAGE - screenful)

    @work(thread=True, exclusive=True, exit_on_error=False, group="board")
    def _load(self, scope: Scope, filters: Filters, after: Cursor | None, limit: int, replace_rows: bool) -> None:
        rows = self.app.services.board.page(scope, filters, after, limit)
        self.app.call_from_thread(self._apply_rows, rows, replace_rows, limit)

    def _apply_rows(self, rows: list[SignalRow], replace_rows: bool, limit: int) -> None:
        table = self.query_one(BoardTable)
        now = self.app.now()
        if replace_rows:
            self._diff_into(table, rows, now)
            self.rows = rows
        else:
            for signal in rows:
                table.add_row(*row_cells(signal, now), key=str(signal.id))
            self.rows += rows
        self.more = len(rows) == limit
        self.update_status()
        self.show_detail()
        if not self._context_loaded:
            if not self._drawn:
                self._drawn = True
                self.call_after_refresh(self.app.board_drawn)
            self._context_loaded = True
            # After the frame: the worker imports the ORM, which would take the
            # interpreter from the thread drawing the rows just loaded.
            self.call_after_refresh(self._load_context)

    @work(thread=True, exclusive=True, exit_on_error=False, group="context")
    def _load_context(self) -> None:
        """After the first page: the source filter's models and the suspended models."""
        services = self.app.services
        sources = services.views.active_sources(services.board.scope_for(self.tier, self.scope_id))
        suspended = sorted(services.governance.suspended_sources())
        self.app.call_from_thread(self._show_context, sources, suspended)

    def _show_context(self, sources: list[str], suspended: list[str]) -> None:
        select = self.query_one("#f-source", Select)
        if sources != self._sources:
            chosen = select.value
            self._sources = sources
            with select.prevent(Select.Changed):
                select.set_options([(s, s) for s in sources])
                if chosen in sources:
                    select.value = chosen
        self.suspended = suspended
        self.update_topbar()

    def _diff_into(self, table: BoardTable, rows: list[SignalRow], now: datetime) -> None:
        """Make the table show ``rows``, touching only rows that changed."""
        old = {str(s.id): s for s in self.rows}
        new_ids = [str(s.id) for s in rows]
        if new_ids == [str(s.id) for s in self.rows]:
            for signal in rows:
                if old[str(signal.id)].updated_hlc != signal.updated_hlc:
                    self._redraw_row(table, signal, now)
            return
        selected = self.selected_id
        table.clear()
        for signal in rows:
            table.add_row(*row_cells(signal, now), key=str(signal.id))
        if selected in new_ids:
            table.move_cursor(row=new_ids.index(selected), animate=False)

    @staticmethod
    def _redraw_row(table: BoardTable, signal: SignalRow, now: datetime) -> None:
        table.update_row(str(signal.id), dict(zip((key for key, _l, _w in COLUMNS), row_cells(signal, now), strict=True)))

    def poll_changes(self) -> None:
        """Reload the rows on screen when anyone committed a change."""
        if self.app.watcher.changed(f"{type(self).__name__}-{id(self)}"):
            self._load(self.board_scope, self.filters, None, max(PAGE, len(self.rows)), replace_rows=True)
            self._context_loaded = False

    def tick_countdown(self) -> None:
        """Redraw time left and age."""
        table = self.query_one(BoardTable)
        now = self.app.now()
        for signal in self.rows:
            key = str(signal.id)
            table.update_cell(key, "left", left_cell(signal, now))
            table.update_cell(key, "age", span(now - signal.detected_at))

    def update_status(self) -> None:
        """The line under the board: counts and filters."""
        breached = sum(1 for s in self.rows if s.deadline < self.app.now())
        shown = f"{len(self.rows)}{'+' if self.more else ''} signals"
        text = f"{shown} · {breached} past their window" if self.rows else "No open signals here — the board is clear."
        active = [f for f in (self.filters.text, self.filters.category, self.filters.source) if f]
        if self.filters.statuses:
            active.append(self.filters.statuses[0])
        if active:
            text += f" · filtered: {', '.join(active)} (esc clears)"
        sync = self.app.sync_text()
        self.query_one("#statusline", Static).update(f"{text} · {sync}" if sync else text)

    # ----- selection -----
    @property
    def selected_id(self) -> str | None:
        """The id of the row under the cursor."""
        table = self.query_one(BoardTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return str(self.rows[table.cursor_row].id)

    @property
    def selected(self) -> SignalRow | None:
        """The signal under the cursor."""
        sid = self.selected_id
        return next((s for s in self.rows if str(s.id) == sid), None)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.more and event.cursor_row >= len(self.rows) - 1:
            self._load(self.board_scope, self.filters, Cursor.after(self.rows[-1]), PAGE, replace_rows=False)
        self.show_detail()

    def show_detail(self) -> None:
        """Load the selected signal's story once the cursor rests: scrolling through the
        board costs no queries."""
        if self._story_timer is not None:
            self._story_timer.stop()
        self._story_timer = self.set_timer(STORY_DELAY, self._show_selected_story)

    def _show_selected_story(self) -> None:
        self._story_timer = None
        signal = self.selected
        if signal is None:
            self.query_one(SignalDetail).show(None, self.app.now(), self.app.zone)
        else:
            self._load_story(signal.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="story")
    def _load_story(self, signal_id) -> None:
        story = self.app.services.views.story(signal_id)
        self.app.call_from_thread(self.query_one(SignalDetail).show, story, self.app.now(), self.app.zone)

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_toggle_detail()

    def action_toggle_detail(self) -> None:
        """Show or hide the detail pane (narrow screens show the board or the detail)."""
        main = self.query_one("#main")
        main.set_class(not main.has_class("detail-open"), "detail-open")

    # ----- filters -----
    def action_search(self) -> None:
        """Show the filter bar and type a search."""
        self.query_one("#filterbar").display = True
        self.query_one("#search", Input).focus()

    def action_filters(self) -> None:
        """Show or hide the filter bar."""
        bar = self.query_one("#filterbar")
        bar.display = not bar.display
        if bar.display:
            self.query_one("#f-category", Select).focus()
        else:
            self.query_one(BoardTable).focus()

    def action_clear_search(self) -> None:
        """Close the detail on a narrow screen, else drop every filter."""
        main = self.query_one("#main")
        if main.has_class("narrow") and main.has_class("detail-open"):
            main.remove_class("detail-open")
            return
        self.query_one("#search", Input).value = ""
        for select in self.query(Select):
            select.clear()
        self.query_one("#filterbar").display = False
        self.query_one(BoardTable).focus()
        self._filters_changed()

    @on(Input.Changed, "#search")
    @on(Select.Changed)
    def _filters_changed(self) -> None:
        def value(widget_id: str) -> str | None:
            v = self.query_one(widget_id, Select).value
            return v if isinstance(v, str) else None

        status = value("#f-status")
        self.filters = Filters(statuses=(status,) if status else None, category=value("#f-category"),
                               source=value("#f-source"), text=self.query_one("#search", Input).value.strip() or None)
        self.load_first_page()

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.query_one(BoardTable).focus()

    def after_change(self) -> None:
        """Show a change at once, without waiting for the change poll."""
        self._load(self.board_scope, self.filters, None, max(PAGE, len(self.rows)), replace_rows=True)

    def reader_of(self, signal_id):
        """Reads the signal as this board shows it (None once it has left the board); run
        in the worker that saved the change, so the row is redrawn as the dialog closes."""
        board, scope, filters = self.app.services.board, self.board_scope, self.filters
        return lambda: board.row(scope, filters, signal_id)

    def show_signal(self, signal_id, fresh: SignalRow | None) -> None:
        """Redraw the changed signal's row alone, or drop it once it has left the board,
        instead of reloading every row shown."""
        index = next((i for i, s in enumerate(self.rows) if s.id == signal_id), None)
        if index is None:
            return
        before = self.rows[index]
        table = self.query_one(BoardTable)
        if fresh is None:
            table.remove_row(str(signal_id))
            del self.rows[index]
        elif (fresh.deadline, fresh.severity_rank) != (before.deadline, before.severity_rank):
            self.after_change()  # it moved within the board: reload in board order
            return
        else:
            self.rows[index] = fresh
            self._redraw_row(table, fresh, self.app.now())
        self.update_status()
        self.show_detail()

    # ----- other views -----
    def action_actions(self) -> None:
        """Open actions by owner."""
        from tiermeet.ui.screens.actions import ActionsScreen

        self.app.push_screen(ActionsScreen(self.board_scope))

    def action_escalations_in(self) -> None:
        """What lower tiers pushed up today."""
        from tiermeet.ui.screens.escalations import EscalationsScreen

        self.app.push_screen(EscalationsScreen(self.tier, self.board_scope))

    def action_handover(self) -> None:
        """Everything still open, with owners, for the next shift."""
        from tiermeet.ui.screens.handover import HandoverScreen

        self.app.push_screen(HandoverScreen(self.board_scope))

    def action_metrics(self) -> None:
        """Governance metrics of this board's scope: acted within window, trends, models."""
        from tiermeet.ui.screens.metrics import MetricsScreen

        scope = self.app.services.board.scope_for(self.tier, self.scope_id)
        self.app.push_screen(MetricsScreen(tier=self.tier, line=scope.line, area=scope.area, label=self.scope_id))

    def action_meeting(self) -> None:
        """Start (or return to) the meeting of this tier and scope."""
        self.app.as_operator(self.app.open_meeting)

    def action_switch_board(self) -> None:
        """Pick another tier and scope."""
        self.app.pick_board()

    def action_reload(self) -> None:
        """Reload from the database."""
        self.load_first_page()

