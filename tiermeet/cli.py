"""The ``tiermeet`` command line (design.md §4).

Each command imports what it needs when it runs, so ``tiermeet --help`` and the board
start fast. Settings come from ``--config``/``TIERMEET_CONFIG`` (else the user config
file if there is one, else the built-in demo plant) and ``--db``/``TIERMEET_DB`` (else
the platform's user data dir).
"""

import gc
import sys
from pathlib import Path

import click

EXIT_REJECTED = 1
EXIT_UNUSABLE = 2


class Settings:
    """Where the config and database are, resolved once per invocation."""

    def __init__(self, db: Path | None, config: Path | None) -> None:
        self.db_option = db
        self.config_option = config

    @property
    def config_path(self) -> Path | None:
        """The config file in use, or None for the built-in demo plant."""
        if self.config_option is not None:
            return self.config_option
        from tiermeet.paths import default_config_path

        path = default_config_path()
        return path if path.exists() else None

    def db_path(self, default=None) -> Path:
        """The database file in use."""
        if self.db_option is not None:
            return self.db_option
        from tiermeet.paths import default_db_path

        return (default or default_db_path)()

    def load_config(self):
        """The validated config, or exit 2 with every problem listed."""
        from tiermeet.settings import ConfigError, load_config

        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            fail(str(exc), EXIT_UNUSABLE)

    def services(self, db: Path | None = None, *, prepare: bool = True):
        """Services on the database, migrated to head, or exit 2 with the reason."""
        from tiermeet.services.bundle import open_services
        from tiermeet.store.migrate import SchemaError

        config = self.load_config()
        try:
            return open_services(db or self.db_path(), config, prepare=prepare)
        except SchemaError as exc:
            fail(str(exc), EXIT_UNUSABLE)


def fail(message: str, code: int = 1):
    """Print ``message`` to stderr and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


pass_settings = click.make_pass_decorator(Settings)
PathType = click.Path(path_type=Path, dir_okay=False)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=PathType, envvar="TIERMEET_DB", help="Database file [env TIERMEET_DB; default: user data dir].")
@click.option("--config", "config", type=PathType, envvar="TIERMEET_CONFIG", help="Plant config TOML [env TIERMEET_CONFIG].")
@click.option("--tier", type=click.IntRange(1, 4), help="Tier board to open (1 line, 2 area, 3 plant).")
@click.option("--scope", help="Line, area or 'plant' the board covers.")
@click.option("--kiosk", is_flag=True, help="Shop-floor kiosk: no quit key, high-contrast theme.")
@click.version_option(package_name="tiermeet")
@click.pass_context
def main(ctx: click.Context, db: Path | None, config: Path | None, tier: int | None, scope: str | None, kiosk: bool) -> None:
    """tiermeet: tiered daily-management meetings for AI signals.

    Without a command, opens the tier board (asking which one when neither the options nor
    the config's [kiosk] section say)."""
    ctx.obj = Settings(db, config)
    if ctx.invoked_subcommand is None:
        _open_board(ctx.obj.services(prepare=False), tier, scope, kiosk)


def _open_board(services, tier: int | None, scope: str | None, kiosk: bool = False) -> None:
    from tiermeet.ui.app import TierMeetApp

    from tiermeet.domain.errors import DomainError
    from tiermeet.services.board import scope_for

    config = services.ctx.config
    try:
        scope_for(config, tier, scope)
    except DomainError as exc:
        fail(f"--scope: {exc}", EXIT_UNUSABLE)
    if tier is not None and config.tier(tier) is None:
        fail(f"--tier: this plant runs no tier {tier}; it runs {', '.join(str(t.level) for t in config.tiers)}", EXIT_UNUSABLE)
    TierMeetApp(services, tier=tier or config.kiosk.tier, scope=scope or config.kiosk.scope, kiosk=kiosk).run()


@main.command()
@click.option("--db", type=PathType, help="Demo database file [default: demo.db in the user data dir].")
@click.option("--no-open", is_flag=True, help="Only build the demo database and print its path.")
@pass_settings
def demo(settings: Settings, db: Path | None, no_open: bool) -> None:
    """Build (once) a demo plant database, then open the board on it."""
    from tiermeet.demo.build import build_demo, demo_present, is_demo
    from tiermeet.paths import default_demo_db_path
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    path = db or settings.db_option or default_demo_db_path()
    services = open_services(path, load_config(None))
    if is_demo(services):
        click.echo(f"Using demo plant database: {path}")
    elif demo_present(services):
        fail(f"{path} already holds a plant's own data; give the demo its own file with --db", EXIT_UNUSABLE)
    else:
        click.echo("Building the demo plant: two weeks of history, a few seconds…", err=True)
        build_demo(services)
        click.echo(f"Built demo plant database: {path}")
    if not no_open:
        _open_board(services, None, None)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="Read every file as this format.")
@pass_settings
def ingest(settings: Settings, files: tuple[str, ...], fmt: str | None) -> None:
    """Add signals from JSON Lines or CSV FILES ('-' reads stdin).

    Prints each rejected row as FILE:LINE: field: reason and a summary line. Exit 0 when
    nothing was rejected, 1 when a row was, 2 when a file could not be used."""
    from tiermeet.ingest.readers import UnusableInput, detect_format, read_rows
    from tiermeet.services.ingest import IngestError, IngestReport

    services = settings.services()
    # What this process has made so far lasts until it ends: frozen, it is not walked again
    # by every full collection the rows of a large file set off (about 2% of an ingest).
    gc.freeze()
    total, rejected, unusable = IngestReport(), 0, False
    for name in files:
        label = "<stdin>" if name == "-" else name
        try:
            if name == "-":
                report = services.ingest.ingest(read_rows(sys.stdin.buffer, label, fmt or "jsonl"), origin=label)
            else:
                report = services.ingest.ingest_file(Path(name), detect_format(name, fmt), origin=label)
        except FileNotFoundError:
            click.echo(f"{name}: file not found", err=True)
            unusable = True
            continue
        except (UnusableInput, IngestError, OSError) as exc:
            click.echo(f"{name}: cannot be read: {exc}" if isinstance(exc, OSError) else str(exc), err=True)
            unusable = True
            continue
        for line, field, reason in report.rejected:
            click.echo(f"{label}:{line}: {field}: {reason}", err=True)
        total.merge(report)
        rejected += len(report.rejected)
    click.echo(f"{total.added} added, {total.duplicates} duplicates, {rejected} rejected")
    sys.exit(EXIT_UNUSABLE if unusable else EXIT_REJECTED if rejected else 0)


@main.command()
@click.option("--tier", type=click.IntRange(1, 4), help="Only this tier.")
@click.option("--scope", help="A line, an area or 'plant'.")
@click.option("--status", help="A status (default: the active ones: open, acknowledged, actioned).")
@click.option("--category", type=click.Choice(["safety", "quality", "delivery", "cost", "people"]))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@pass_settings
def signals(settings: Settings, tier, scope, status, category, fmt, limit) -> None:
    """List signals in board order: time left in the window, then severity."""
    from tiermeet.domain.enums import SignalStatus
    from tiermeet.domain.errors import DomainError
    from tiermeet.listing import render_signals
    from tiermeet.services.board import scope_for
    from tiermeet.store.queries import Filters

    config = settings.load_config()
    if status is not None and status not in {s.value for s in SignalStatus}:
        fail(f"--status: {status!r} is not one of {', '.join(s.value for s in SignalStatus)}", EXIT_UNUSABLE)
    try:
        where = scope_for(config, tier, scope)
    except DomainError as exc:
        fail(f"--scope: {exc}", EXIT_UNUSABLE)
    services = settings.services()
    rows = services.board.page(where, Filters(statuses=(status,) if status else None, category=category), limit=limit)
    click.echo(render_signals(rows, fmt, services.ctx.clock.now()), nl=False)


@main.group()
def config() -> None:
    """Check the plant config."""


@config.command("check")
@pass_settings
def config_check(settings: Settings) -> None:
    """Validate the config; list every problem with its key and exit 1 if there is one."""
    from tiermeet.settings import ConfigError, load_config

    path = settings.config_path
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fail(str(exc), 1)
    from tiermeet.domain.policy_lint import shadowed_rules

    for warning in shadowed_rules(cfg.governance):
        click.echo(f"{path or '<built-in demo config>'}: warning: {warning}")
    lines = sum(len(a.lines) for a in cfg.areas)
    click.echo(f"{path or '<built-in demo config>'}: OK — {cfg.plant.name}: {len(cfg.areas)} areas, {lines} lines, "
               f"{len(cfg.tiers)} tiers, {len(cfg.people)} people, {len(cfg.governance.rules)} rules "
               f"(policy {cfg.governance.version})")


@main.group()
def db() -> None:
    """Database upkeep: upgrade, current, check, backup."""


@db.command("upgrade")
@pass_settings
def db_upgrade(settings: Settings) -> None:
    """Migrate the database to this version's schema (a backup is taken first)."""
    from tiermeet.store.engine import make_engine
    from tiermeet.store.migrate import HEAD_REVISION, SchemaError, upgrade

    path = settings.db_path()
    try:
        saved = upgrade(make_engine(path), path)
    except SchemaError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    click.echo(f"{path}: at revision {HEAD_REVISION}" + (f" (backup before upgrade: {saved})" if saved else ""))


@db.command("current")
@pass_settings
def db_current(settings: Settings) -> None:
    """Print the database's schema revision and this version's."""
    from tiermeet.store.migrate import HEAD_REVISION, current_revision

    path = settings.db_path()
    click.echo(f"{path}: revision {current_revision(path) or '(none: not created yet)'}; this tiermeet expects {HEAD_REVISION}")


@db.command("check")
@pass_settings
def db_check(settings: Settings) -> None:
    """Integrity, foreign keys, pragmas and revision; exit 1 if anything is wrong."""
    from tiermeet.store.health import check_database

    path = settings.db_path()
    if not path.exists():
        fail(f"{path}: no database here", EXIT_UNUSABLE)
    findings = check_database(path)
    for finding in findings:
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'} {finding.name}: {finding.detail}")
    if not all(f.ok for f in findings):
        sys.exit(1)


@db.command("backup")
@click.argument("dest", type=PathType)
@pass_settings
def db_backup(settings: Settings, dest: Path) -> None:
    """Copy the live database to DEST with SQLite's online backup."""
    from tiermeet.store.migrate import backup

    path = settings.db_path()
    if not path.exists():
        fail(f"{path}: no database here", EXIT_UNUSABLE)
    if dest.exists():
        fail(f"{dest}: already exists; choose a new file", EXIT_UNUSABLE)
    click.echo(f"backed up {path} to {backup(path, dest)}")


@main.command()
@click.option("--at", "at", help="Sweep as of this ISO 8601 time instead of now (plant time if no offset).")
@pass_settings
def sweep(settings: Settings, at: str | None) -> None:
    """Escalate signals whose response window has closed; safe to run every minute.

    A breached signal moves up one tier with an automatic reason and its context packet;
    at the top tier it is flagged. Shelved signals whose time is up come back."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    config = settings.load_config()
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at: {at!r} is not an ISO 8601 time (e.g. 2026-11-25T14:00:00+01:00)", EXIT_UNUSABLE)
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(config.plant.timezone))
    click.echo(settings.services().governance.sweep(when).summary())


@main.group()
def model() -> None:
    """The kill switch: suspend or resume a model's autonomy."""


@model.command("suspend")
@click.argument("source")
@click.option("--by", "by", required=True, help="Your person id or badge.")
@click.option("--reason", required=True, help="Why (recorded).")
@pass_settings
def model_suspend(settings: Settings, source: str, by: str, reason: str) -> None:
    """Suspend SOURCE's autonomy: its signals need a person's sign-off."""
    from tiermeet.domain.errors import DomainError

    try:
        settings.services().governance.suspend(source, actor=by, reason=reason)
    except DomainError as exc:
        fail(str(exc), 1)
    click.echo(f"{source}: autonomy suspended; its signals now need sign-off")


@model.command("resume")
@click.argument("source")
@click.option("--by", "by", required=True, help="Your person id or badge.")
@click.option("--reason", required=True, help="Why (recorded).")
@pass_settings
def model_resume(settings: Settings, source: str, by: str, reason: str) -> None:
    """Give SOURCE its autonomy back."""
    from tiermeet.domain.errors import DomainError

    try:
        settings.services().governance.resume(source, actor=by, reason=reason)
    except DomainError as exc:
        fail(str(exc), 1)
    click.echo(f"{source}: autonomy resumed")


@main.command()
@click.argument("meeting", required=False)
@click.option("--last", is_flag=True, help="The most recent meeting.")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@pass_settings
def minutes(settings: Settings, meeting: str | None, last: bool, fmt: str) -> None:
    """Export a meeting's minutes: attendees, duration, decisions, actions, escalations."""
    from zoneinfo import ZoneInfo

    from tiermeet.domain.errors import DomainError

    if bool(meeting) == last:
        fail("name one meeting: a MEETING_ID (or M-… reference) or --last", EXIT_UNUSABLE)
    services = settings.services()
    try:
        key = services.minutes.last_meeting_id() if last else meeting
        result = services.minutes.minutes(key)
    except DomainError as exc:
        fail(str(exc), 1)
    zone = ZoneInfo(services.ctx.config.plant.timezone)
    click.echo(result.to_json() if fmt == "json" else result.to_markdown(zone), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tier", type=click.IntRange(1, 4))
@click.option("--scope")
@pass_settings
def web(settings: Settings, host: str, port: int, tier: int | None, scope: str | None) -> None:
    """Serve the app in a browser (for supervisors in an office)."""
    import shlex

    from textual_serve.server import Server

    command = [sys.executable, "-m", "tiermeet", "--db", str(settings.db_path())]
    if settings.config_path is not None:
        command += ["--config", str(settings.config_path)]
    if tier is not None:
        command += ["--tier", str(tier)]
    if scope is not None:
        command += ["--scope", scope]
    where = "only this machine (use --host 0.0.0.0 to open it to the network)" if host in ("127.0.0.1", "localhost") else "the network"
    click.echo(f"Serving tiermeet at http://{host}:{port} — reachable from {where}. Ctrl+C stops it.")
    Server(shlex.join(command), host=host, port=port, title="tiermeet").serve()


from tiermeet.cli_sync import register as _register_sync  # noqa: E402 - needs the group above

_register_sync(main)

from tiermeet.cli_governance import register as _register_governance  # noqa: E402 - needs the group above

_register_governance(main)
