"""Notice commits made by other connections — another kiosk, ``tiermeet ingest``, the
sweep, sync — without reading any table.

SQLite's ``PRAGMA data_version`` changes, on one connection, whenever another connection
has committed since it was last asked; asking costs microseconds, so the board can poll
it every second and reload only when something really changed.
"""

import sqlite3
from pathlib import Path


class ChangeWatcher:
    """Polls ``data_version`` on a connection of its own, for several screens at once:
    each asker has its own last-seen version, so one screen noticing a change does not
    hide it from the others."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._start = self._version()
        self._seen: dict[str, int] = {}

    def _version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def changed(self, asker: str) -> bool:
        """True once per asker after each commit made elsewhere since it last asked."""
        version = self._version()
        if version == self._seen.get(asker, self._start):
            return False
        self._seen[asker] = version
        return True

    def close(self) -> None:
        """Release the connection."""
        self._conn.close()
