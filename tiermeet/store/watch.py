"""Notice commits made by other connections — another kiosk, ``tiermeet ingest``, the
sweep, sync — without reading any table.

SQLite's ``PRAGMA data_version`` changes, on one connection, whenever another connection
has committed since it was last asked; asking costs microseconds, so the board can poll
it every second and reload only when something really changed.
"""

import sqlite3
from pathlib import Path


class ChangeWatcher:
    """Polls ``data_version`` on a connection of its own."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._last = self._version()

    def _version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        """True once after each commit made elsewhere."""
        version = self._version()
        if version == self._last:
            return False
        self._last = version
        return True

    def close(self) -> None:
        """Release the connection."""
        self._conn.close()
