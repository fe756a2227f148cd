"""The board's table: a DataTable that can redraw one row alone, that keeps the rendered
rows of a few screens rather than of everything scrolled past, and that does not measure
the cells of rows it is given.

``DataTable.update_cell`` invalidates every cached row and cell, so changing one signal's
status re-renders every visible row — tens of milliseconds on a full board, most of the
time between saving a decision and seeing it. ``update_row`` replaces a row's cells and
drops only that row's cached renders, then repaints only its line.

It reaches into DataTable's render caches, whose keys start with the row key (cells and
rendered rows) or the line number (lines); tests/test_ui_triage.py reads the table's
rendered line after a decision, so a Textual release that changes those keys fails there
instead of showing a stale row.
"""

from textual import events
from textual.widgets import DataTable

#: Rendered lines and rows kept, in screens of the table's height: the screen on show and
#: the one paged away from. DataTable keeps 1,000 rows and 10,000 cells, which paging
#: through a long board fills with rows long gone from the screen — megabytes the
#: kiosk's memory budget has no room for; a fixed few hundred lines still held four
#: screens of a 50-line terminal. Cursor moves and page down cost the same either way
#: (they render what is on screen).
CACHED_SCREENS = 2
#: Cells kept per rendered line (the board has eight columns).
CELLS_PER_LINE = 10


class BoardTable(DataTable):
    """A DataTable whose rows can be redrawn one at a time."""

    def on_resize(self, event: events.Resize) -> None:
        """Size the render caches to the table's height (a table is resized before it is
        first drawn)."""
        lines = CACHED_SCREENS * max(1, event.size.height)
        for cache in (self._row_render_cache, self._row_renderable_cache, self._line_cache):
            cache.maxsize = lines
        self._cell_render_cache.maxsize = lines * CELLS_PER_LINE

    def update_row(self, row_key: str, cells: dict[str, object]) -> None:
        """Put ``cells`` (column key → value) in the row ``row_key`` and repaint that row only."""
        row = self.rows[row_key]  # KeyError for a row the table does not hold, as get_row
        data = self._data[row.key]
        for column, value in cells.items():
            data[self.columns[column].key] = value
        index = self.get_row_index(row.key)
        for cache in (self._cell_render_cache, self._row_render_cache):
            for key in [k for k in cache.keys() if k[0] == row.key]:
                cache.discard(key)
        for key in [k for k in self._row_renderable_cache.keys() if k[1] == index]:
            self._row_renderable_cache.discard(key)
        for key in [k for k in self._line_cache.keys() if self._line_of(k[0]) == row.key]:
            self._line_cache.discard(key)
        self.refresh_row(index)

    def _update_dimensions(self, new_rows) -> None:
        """Every board column has a fixed width and every row one line, so there is nothing
        to measure: DataTable would measure each cell of each new row (a quarter of the
        cost of adding a page) only to find widths it then ignores. The virtual size is
        still brought up to date."""
        super()._update_dimensions(())

    def _line_of(self, y: int):
        """The key of the row drawn on line ``y`` (the header has its own)."""
        try:
            return self._get_offsets(y)[0]
        except LookupError:
            return None
