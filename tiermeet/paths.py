"""Where tiermeet keeps its files by default: the platform's user directories."""

from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP = "tiermeet"


def default_db_path() -> Path:
    """The local database when neither ``--db`` nor ``TIERMEET_DB`` says otherwise."""
    return user_data_path(APP, appauthor=False) / "tiermeet.db"


def default_config_path() -> Path:
    """The config file looked for when neither ``--config`` nor ``TIERMEET_CONFIG`` is given."""
    return user_config_path(APP, appauthor=False) / "tiermeet.toml"


def default_demo_db_path() -> Path:
    """The demo plant's database, kept apart from a real plant's."""
    return user_data_path(APP, appauthor=False) / "demo.db"
