"""Plants and their bearer tokens (sync-protocol §2.8).

A token is 32 random bytes with a readable prefix naming the plant (``tmp_<plant>_…``). It
is shown once, when made; the server keeps only its SHA-256. A plant may have two live
tokens at once, so a new one can be rolled out before the old one is revoked. The plant a
request acts for comes from its token, never from the request.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from tiermeet.server.db import transaction, utcnow
from tiermeet.store.models_sync import ApiToken, Plant

PLANTS = Plant.__table__
TOKENS = ApiToken.__table__
# Run on every request, so built once.
_BY_HASH = (select(TOKENS.c.id, TOKENS.c.plant_id, TOKENS.c.revoked_at, TOKENS.c.expires_at, PLANTS.c.enterprise)
            .join(PLANTS, PLANTS.c.id == TOKENS.c.plant_id).where(TOKENS.c.sha256 == bindparam("sha256")))
_CONFIG = select(PLANTS.c.config_toml).where(PLANTS.c.id == bindparam("plant_id"))
#: Live tokens a plant may hold at once (the current one and its replacement).
MAX_LIVE = 2
PREFIX = "tmp_"


class TokenError(Exception):
    """A token command that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class PlantAuth:
    """The plant a request acts for."""

    id: str
    enterprise: bool
    token_id: str


@dataclass(frozen=True)
class TokenInfo:
    id: str
    plant_id: str
    hint: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    """The SHA-256 the server keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def upsert_plant(engine: Engine, plant_id: str, name: str, *, config_toml: str | None = None,
                 enterprise: bool | None = None) -> None:
    """Register a plant, or refresh its name and config."""
    with transaction(engine) as connection:
        exists = connection.execute(select(PLANTS.c.id).where(PLANTS.c.id == plant_id)).first()
        values = {"name": name}
        if config_toml is not None:
            values["config_toml"] = config_toml
        if enterprise is not None:
            values["enterprise"] = enterprise
        if exists:
            connection.execute(update(PLANTS).where(PLANTS.c.id == plant_id).values(**values))
        else:
            connection.execute(PLANTS.insert().values(**{"id": plant_id, "created_at": utcnow(), "config_toml": None,
                                                         **values, "enterprise": bool(enterprise)}))


def create_token(engine: Engine, plant_id: str, *, label: str | None = None) -> str:
    """A new token for ``plant_id``; the only time it is ever shown."""
    with transaction(engine) as connection:
        if connection.execute(select(PLANTS.c.id).where(PLANTS.c.id == plant_id)).first() is None:
            raise TokenError(f"no plant {plant_id!r} on this server; register it by giving its config: "
                             f"tiermeet --config PLANT.toml token create --plant {plant_id}")
        live = connection.execute(select(func.count()).select_from(TOKENS).where(
            TOKENS.c.plant_id == plant_id, TOKENS.c.revoked_at.is_(None))).scalar_one()
        if live >= MAX_LIVE:
            raise TokenError(f"plant {plant_id!r} already has {live} live tokens; revoke one before making another")
        token = f"{PREFIX}{plant_id}_{secrets.token_urlsafe(32)}"
        token_id = secrets.token_hex(8)
        connection.execute(TOKENS.insert().values(
            id=token_id, plant_id=plant_id, sha256=token_hash(token), hint=token[: len(PREFIX) + len(plant_id) + 5],
            label=label, created_at=utcnow()))
    return token


def revoke_token(engine: Engine, token_id: str) -> str:
    """Revoke a token by its id (``token list`` shows ids); returns its plant."""
    with transaction(engine) as connection:
        row = connection.execute(select(TOKENS.c.plant_id, TOKENS.c.revoked_at).where(TOKENS.c.id == token_id)).first()
        if row is None:
            raise TokenError(f"no token with id {token_id!r}")
        if row.revoked_at is None:
            connection.execute(update(TOKENS).where(TOKENS.c.id == token_id).values(revoked_at=utcnow()))
        return row.plant_id


def list_tokens(engine: Engine, plant_id: str | None = None) -> list[TokenInfo]:
    """Tokens (never their secret), oldest first."""
    query = select(TOKENS.c.id, TOKENS.c.plant_id, TOKENS.c.hint, TOKENS.c.label, TOKENS.c.created_at, TOKENS.c.revoked_at)
    if plant_id is not None:
        query = query.where(TOKENS.c.plant_id == plant_id)
    with engine.connect() as connection:
        return [TokenInfo(*row) for row in connection.execute(query.order_by(TOKENS.c.created_at, TOKENS.c.id))]


def authenticate(connection: Connection, token: str, now: datetime) -> PlantAuth | None:
    """The plant of a live token, or None."""
    if not token.startswith(PREFIX) or len(token) > 300:
        return None
    row = connection.execute(_BY_HASH, {"sha256": token_hash(token)}).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return PlantAuth(row.plant_id, bool(row.enterprise), row.id)


def plant_config_toml(connection: Connection, plant_id: str) -> str | None:
    """The config a plant was registered with (it checks the signals posted for it)."""
    return connection.execute(_CONFIG, {"plant_id": plant_id}).scalar_one_or_none()
