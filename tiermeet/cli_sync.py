"""Commands for the central server and sync: ``serve``, ``token create|revoke|list``, ``sync``.

Registered on the main command group by ``register(main)``; each command imports what it
needs when it runs, so ``tiermeet --help`` stays fast.
"""

import gc
import sys
from pathlib import Path

import click

from tiermeet.cli import EXIT_UNUSABLE, PathType, Settings, fail, pass_settings

DB_URL_ENV = "TIERMEET_SERVER_DB_URL"
_DB_URL_HELP = f"Server database: sqlite:///FILE or postgresql+psycopg://… [env {DB_URL_ENV}; default: a SQLite file in the user data dir]."


def default_server_url() -> str:
    """The server database when none is given: a SQLite file beside the device database."""
    from platformdirs import user_data_path

    path = user_data_path("tiermeet", appauthor=False) / "tiermeet-server.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _engine(url: str | None):
    from tiermeet.server.db import migrate, open_engine

    url = url or default_server_url()
    try:
        engine = open_engine(url)
        migrate(engine)
    except Exception as exc:  # noqa: BLE001 - any failure here is the URL's or the database's
        fail(f"cannot open the server database {_safe(url)}: {exc.__class__.__name__}: {exc}", EXIT_UNUSABLE)
    return engine


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register_plant(settings: Settings, engine, *, only: str | None = None, enterprise: bool | None = None) -> str | None:
    """Register (or refresh) the plant of the config in use; returns its id."""
    from tiermeet.server.tokens import upsert_plant

    path = settings.config_path
    config = settings.load_config()
    if only is not None and config.plant.id != only:
        return None
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        from tiermeet.settings import demo_config_text

        text = demo_config_text()
    upsert_plant(engine, config.plant.id, config.plant.name, config_toml=text, enterprise=enterprise)
    return config.plant.id


def register(main: click.Group) -> None:
    """Add the server and sync commands to ``main``."""
    main.add_command(serve)
    main.add_command(token)
    main.add_command(sync)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535))
@click.option("--database-url", envvar=DB_URL_ENV, help=_DB_URL_HELP)
@click.option("--new-epoch", is_flag=True, help="After restoring the database from a backup: make every device resync "
                                                  "and push again what the backup lacks.")
@pass_settings
def serve(settings: Settings, host: str, port: int, database_url: str | None, new_epoch: bool) -> None:
    """Run the central API (signals in, sync push/pull, status).

    The plant of --config (or the user config file), if any, is registered with its config,
    which checks the signals posted for it."""
    import uvicorn

    from tiermeet.server.app import create_app
    from tiermeet.server.db import new_epoch as rotate

    url = database_url or default_server_url()
    engine = _engine(url)
    if settings.config_option is not None or settings.config_path is not None:
        plant = _register_plant(settings, engine)
        click.echo(f"plant {plant} registered from {settings.config_path}", err=True)
    if new_epoch:
        click.echo(f"new server epoch {rotate(engine)}: devices will resync", err=True)
    app = create_app(url, engine=engine, run_migrations=False)
    click.echo(f"tiermeet server on http://{host}:{port} ({engine.dialect.name}); Ctrl+C stops it.", err=True)
    # Everything made so far (imports, app, engine) lives as long as the process: freezing
    # it keeps the collector from scanning it again, and a larger young generation spares
    # it a collection every few hundred of the short-lived JSON containers a request makes.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group()
def token() -> None:
    """Plant tokens for the central API: create, revoke, list."""


@token.command("create")
@click.option("--plant", "plant_id", required=True, help="The plant the token acts for.")
@click.option("--label", help="A note to tell tokens apart (e.g. 'hub 2026').")
@click.option("--enterprise", is_flag=True, default=None, help="The plant is the enterprise tier: it sees tier-4 escalations of every plant.")
@click.option("--database-url", envvar=DB_URL_ENV, help=_DB_URL_HELP)
@pass_settings
def token_create(settings: Settings, plant_id: str, label: str | None, enterprise: bool | None, database_url: str | None) -> None:
    """Make a token for PLANT and print it (the only time it is shown; only its SHA-256 is kept).

    A plant may hold two live tokens, so a new one can be rolled out before the old one is
    revoked. A plant not yet on the server is registered from --config if that is its config."""
    from tiermeet.server.tokens import TokenError, create_token

    engine = _engine(database_url)
    _register_plant(settings, engine, only=plant_id, enterprise=enterprise)
    try:
        secret = create_token(engine, plant_id, label=label)
    except TokenError as exc:
        fail(str(exc), 1)
    click.echo(secret)
    click.echo("Store it in a file only its owner can read (chmod 600); it is not shown again.", err=True)


@token.command("revoke")
@click.argument("token_id")
@click.option("--database-url", envvar=DB_URL_ENV, help=_DB_URL_HELP)
def token_revoke(token_id: str, database_url: str | None) -> None:
    """Revoke the token with TOKEN_ID (see `token list`); requests with it are refused at once."""
    from tiermeet.server.tokens import TokenError, revoke_token

    try:
        plant = revoke_token(_engine(database_url), token_id)
    except TokenError as exc:
        fail(str(exc), 1)
    click.echo(f"revoked token {token_id} of plant {plant}")


@token.command("list")
@click.option("--plant", "plant_id", help="Only this plant's tokens.")
@click.option("--database-url", envvar=DB_URL_ENV, help=_DB_URL_HELP)
def token_list(plant_id: str | None, database_url: str | None) -> None:
    """List tokens: id, plant, the first characters, created, revoked (never the secret)."""
    from tiermeet.server.tokens import list_tokens

    rows = list_tokens(_engine(database_url), plant_id)
    if not rows:
        click.echo("no tokens")
    for t in rows:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "live"
        click.echo(f"{t.id}  {t.plant_id}  {t.hint}…  created {t.created_at:%Y-%m-%d %H:%M}  {state}"
                   + (f"  {t.label}" if t.label else ""))


@click.command()
@click.option("--server", "server_url", help="Server URL [default: sync.server_url in the config].")
@click.option("--token-file", type=PathType, help="File holding the plant token, mode 0600 [default: sync.token_file].")
@pass_settings
def sync(settings: Settings, server_url: str | None, token_file: Path | None) -> None:
    """Run one full sync round: push every pending change, pull every new one.

    Exit 0 when in sync; 3 when the server cannot be reached; 4 when it refuses the token;
    5 when rejected changes are waiting to be seen; 2 for a missing server URL or an unsafe
    token file; 1 for anything else."""
    from tiermeet.sync.client import SyncClient, SyncError

    services = settings.services()
    try:
        client = SyncClient.from_services(services, server_url=server_url, token_file=token_file, attempts=4, wait_max=2.0,
                                          retry_timeout=30.0)
    except SyncError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    with client:
        result = client.run_round()
    for note in result.notes:
        click.echo(note, err=True)
    if result.error:
        click.echo(result.error, err=True)
    click.echo(f"pushed {result.pushed} ({result.rejected} rejected, {result.duplicates} already there), "
               f"pulled {result.pulled}, {result.pending} pending, {result.seconds:.1f}s")
    if result.ok and result.rejections_unseen:
        click.echo(f"{result.rejections_unseen} of your changes were refused by the server; open the app's "
                   "rejected-changes view to see why and what stands instead", err=True)
    sys.exit(result.exit_code)
