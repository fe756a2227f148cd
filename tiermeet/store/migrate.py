"""Bring a database to the schema this code expects, safely (design.md §5).

Start-up must stay fast, so the common case — the database is already at head — is
answered by reading ``alembic_version`` with sqlite3 and comparing it with HEAD_REVISION,
without importing Alembic. Only when an upgrade is needed is Alembic loaded; a backup
copy is taken first with SQLite's online backup API. A database stamped with a revision
this code does not know was made by a newer tiermeet and is refused.
"""

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The newest migration in tiermeet/migrations/versions; a test keeps the two equal.
HEAD_REVISION = "0008"
BACKUPS_KEPT = 5


class SchemaError(Exception):
    """The database cannot be used by this version of tiermeet."""


def current_revision(path: Path) -> str | None:
    """The database's Alembic revision, or None for a new or empty database."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return _revision_of(conn)
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"{path} is not a tiermeet database ({exc})") from None


def _revision_of(conn) -> str | None:
    """The revision stamped in an open database, or None before the first migration."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return row[0] if row else None


def backup(source: Path, dest: Path) -> Path:
    """A consistent copy of a live database, taken with the SQLite backup API."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)
    return dest


def _alembic_config(connection):
    from importlib import resources

    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tiermeet") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def known_revisions() -> set[str]:
    """Every revision this code ships."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}


def upgrade(engine: "Engine", path: Path) -> str | None:
    """Migrate to head after a backup; returns the backup's path, or None if none was needed."""
    from alembic import command

    from tiermeet.store.engine import writer

    revision = current_revision(path)
    if revision == HEAD_REVISION:
        return None
    if revision is not None and revision not in known_revisions():
        raise SchemaError(
            f"{path} is at schema revision {revision}, made by a newer tiermeet than this one "
            f"(which knows up to {HEAD_REVISION}); upgrade tiermeet instead of opening it with this version"
        )
    saved = None
    if revision is not None:
        saved = _backup_before_upgrade(path, revision)
    # Under the write lock, and only if nobody migrated while we waited for it: two
    # kiosks opening a new database at once must both start, not collide.
    with writer(engine).begin() as connection:
        if _revision_of(connection.connection.driver_connection) != HEAD_REVISION:
            command.upgrade(_alembic_config(connection), "head")
    return str(saved) if saved else None


def _backup_before_upgrade(path: Path, revision: str) -> Path:
    folder = Path(f"{path}.backups")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    saved = backup(path, folder / f"{Path(path).stem}-{revision}-{stamp}.db")
    for old in sorted(folder.glob("*.db"))[:-BACKUPS_KEPT]:
        old.unlink()
    return saved
