"""Bring a database to the schema this code expects, safely (design.md §5).

Start-up must stay fast, so the common case — the database is already at head — is
answered by reading ``alembic_version`` with sqlite3 and comparing it with HEAD_REVISION,
without importing Alembic. Only when an upgrade is needed is Alembic loaded; a backup
copy is taken first with SQLite's online backup API. A database stamped with a revision
this code does not know was made by a newer tiermeet and is refused.
"""

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The newest migration in tiermeet/migrations/versions; a test keeps the two equal.
HEAD_REVISION = "0002"
BACKUPS_KEPT = 5


class SchemaError(Exception):
    """The database cannot be used by this version of tiermeet."""


def current_revision(path: Path) -> str | None:
    """The database's Alembic revision, or None for a new or empty database."""
    if not Path(path).exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def backup(source: Path, dest: Path) -> Path:
    """A consistent copy of a live database, taken with the SQLite backup API."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    dst.close()
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
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return str(saved) if saved else None


def _backup_before_upgrade(path: Path, revision: str) -> Path:
    folder = Path(f"{path}.backups")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    saved = backup(path, folder / f"{Path(path).stem}-{revision}-{stamp}.db")
    for old in sorted(folder.glob("*.db"))[:-BACKUPS_KEPT]:
        old.unlink()
    return saved
