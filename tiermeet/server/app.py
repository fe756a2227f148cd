"""The central API as a FastAPI app (design.md §6; sync-protocol §2.4–§2.8, §2.12).

``create_app(database_url)`` builds an app on its own engine; nothing is made at import
time. Every route but ``/v1/health`` needs a plant's bearer token, and the plant a request
acts for is the token's. Request bodies above ``MAX_BODY_BYTES`` are refused with 413
before they are read; errors always have the shape ``{"code": …, "detail": …}``.
"""

import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tiermeet.server import apply
from tiermeet.server.apply import HttpError, Reset
from tiermeet.server.db import migrate, open_engine, read_meta
from tiermeet.server.tokens import PlantAuth, authenticate
from tiermeet.sync import jsonutil
from tiermeet.sync.protocol import (
    ID_PATTERN, MAX_BODY_BYTES, MAX_SEQ, PULL_LIMIT, PULL_LIMIT_MAX, ErrorResponse, HealthResponse, PullResponse, PushRequest,
    PushResponse, ResetResponse, SignalsRequest, SignalsResponse, StatusResponse,
)

FAULT_ENV = "TIERMEET_FAULT"


def _version() -> str:
    try:
        return version("tiermeet")
    except PackageNotFoundError:
        return "0"


def _errors(*codes: int) -> dict:
    words = {400: "Bad request", 401: "Missing, unknown or revoked token", 403: "The token's plant may not do this",
             404: "Not found", 409: "Another push of this device is in progress, or the plant has no config",
             410: "The device must resync", 413: "Request body too large",
             422: "Invalid request, or a sequence number reused with a different change (code seq_reused)",
             503: "Busy; retry after the Retry-After seconds"}
    return {code: {"model": ResetResponse if code == 410 else ErrorResponse, "description": words[code]} for code in codes}


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, counting what actually arrives."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await self._refuse(send)
        seen = 0
        limit = self.limit

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            return await self.app(scope, counted, send)
        except _TooLarge:
            return await self._refuse(send)

    async def _refuse(self, send):
        body = b'{"code":"too_large","detail":"the request body is larger than the server accepts"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _fault_hooks(spec: str | None) -> Callable[[], apply.Hooks | None]:
    """Test-only: ``exit_before_commit:K`` / ``exit_after_commit:K`` end the process during
    the K-th push, to prove a crash on either side of the commit loses and doubles nothing."""
    if not spec:
        return lambda: None
    where, _, count = spec.partition(":")
    target = int(count or "1")
    calls = {"n": 0}
    lock = threading.Lock()

    def die() -> None:
        os._exit(137)

    def hooks() -> apply.Hooks | None:
        with lock:
            calls["n"] += 1
            hit = calls["n"] == target
        if not hit:
            return None
        return apply.Hooks(before_commit=die) if where == "exit_before_commit" else apply.Hooks(after_commit=die)

    return hooks


class _Request(Request):
    """A request whose JSON body is decoded by orjson where it reads it as the standard
    library would (``jsonutil.loads_like_stdlib``): several times faster on the batches of
    hundreds of mutations or signals that devices and AI systems send, while what the API
    accepts, and how it says what is wrong, do not change."""

    async def json(self):
        if not hasattr(self, "_json"):
            self._json = jsonutil.loads_like_stdlib(await self.body())
        return self._json


class _Route(APIRoute):
    """Routes that hand their endpoints a ``_Request``."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_Request(request.scope, request.receive))

        return route


def _json(answer: dict) -> Response:
    """An answer the server built itself from values it checked (in the shape of the
    route's response model, which the OpenAPI documents), serialized once as it is."""
    return Response(jsonutil.dumpb(answer), media_type="application/json")


def create_app(database_url: str, *, engine=None, run_migrations: bool = True, now: Callable[[], datetime] | None = None,
               fault: str | None = None, push_hooks: Callable[[], apply.Hooks | None] | None = None) -> FastAPI:
    """The API on ``database_url`` (migrated to the newest schema unless told not to).
    ``fault`` and ``push_hooks`` are for tests of crashes and races around a push's commit."""
    engine = engine or open_engine(database_url)
    if run_migrations:
        migrate(engine)
    clock = now or (lambda: datetime.now(timezone.utc))
    hooks = push_hooks or _fault_hooks(fault if fault is not None else os.environ.get(FAULT_ENV))
    busy: set[str] = set()
    busy_lock = threading.Lock()
    bearer = HTTPBearer(auto_error=False, description="A plant token (tiermeet token create --plant P).")

    app = FastAPI(
        title="tiermeet central API",
        version=_version(),
        description="Signals in from AI systems; push and pull sync for plants that work offline.",
    )
    app.router.route_class = _Route
    app.state.engine = engine
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(HttpError)
    async def _http_error(_request: Request, exc: HttpError):
        return JSONResponse(ErrorResponse(code=exc.code, detail=exc.detail, expected_seq=exc.expected_seq)
                            .model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        return JSONResponse({"code": "invalid_request", "detail": problems or "invalid request",
                             "errors": jsonable_encoder(exc.errors()[:10], custom_encoder={bytes: repr})}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"code": "http_error", "detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(OperationalError)
    async def _busy(_request: Request, exc: OperationalError):
        return JSONResponse({"code": "busy", "detail": "the database is busy; retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _db_error(_request: Request, exc: DBAPIError):
        return JSONResponse({"code": "busy", "detail": "the database could not complete the request; retry shortly"},
                            status_code=503, headers={"Retry-After": "1"})

    def plant(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> PlantAuth:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HttpError(401, "no_token", "send a plant token as 'Authorization: Bearer …'",
                            headers={"WWW-Authenticate": "Bearer"})
        with engine.connect() as connection:
            found = authenticate(connection, credentials.credentials, clock())
        if found is None:
            raise HttpError(401, "bad_token", "the token is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
        return found

    @app.get("/v1/health", response_model=HealthResponse, tags=["ops"])
    def health() -> HealthResponse:
        """Liveness and the database in use; no token needed."""
        with engine.connect() as connection:
            _version_number, epoch, _clock = read_meta(connection)
        return HealthResponse(status="ok", version=_version(), database=engine.dialect.name, server_epoch=epoch)

    @app.post("/v1/sync/push", response_model=PushResponse, responses=_errors(400, 401, 403, 409, 413, 422, 503),
              tags=["sync"])
    def push(body: PushRequest, who: PlantAuth = Depends(plant)):
        """Apply a device's mutations in seq order, once each; answered after the commit."""
        with busy_lock:
            if body.client_id in busy:
                raise HttpError(409, "push_in_progress", "another push from this device is being applied; retry shortly",
                                headers={"Retry-After": "1"})
            busy.add(body.client_id)
        try:
            return _json(apply.push(engine, who, body, now=clock(), hooks=hooks()))
        finally:
            with busy_lock:
                busy.discard(body.client_id)

    @app.get("/v1/sync/pull", response_model=PullResponse, responses=_errors(401, 403, 410, 422, 503), tags=["sync"])
    def pull(
        cursor: int = Query(0, ge=0, le=MAX_SEQ, description="The last server_seq this device applied."),
        epoch: str | None = Query(None, max_length=64, description="The server epoch the cursor belongs to."),
        limit: int = Query(PULL_LIMIT, ge=1, le=PULL_LIMIT_MAX),
        client_id: str = Header(..., alias="X-Client-Id", pattern=ID_PATTERN),
        who: PlantAuth = Depends(plant),
    ):
        """Changes after the cursor in this plant's scopes, in server_seq order."""
        try:
            body = apply.pull_page(engine, who, client_id, cursor, epoch, limit, now=clock())
        except Reset as reset:
            return JSONResponse(ResetResponse(reset=reset.reason, server_epoch=reset.server_epoch).model_dump(), status_code=410)
        return Response(body, media_type="application/json")

    @app.post("/v1/signals", response_model=SignalsResponse, responses=_errors(401, 409, 413, 422, 503), tags=["signals"])
    def signals(body: SignalsRequest, who: PlantAuth = Depends(plant)):
        """Signals from an AI system in the ingest contract; idempotent on (source, external_id).
        Each row is added, reported as a duplicate, or rejected with the field and reason."""
        return _json(apply.post_signals(engine, who, body.signals, now=clock()))

    @app.get("/v1/sync/status", response_model=StatusResponse, responses=_errors(401, 503), tags=["sync"])
    def status(who: PlantAuth = Depends(plant)) -> dict:
        """The plant's devices: last seen, last processed seq, rejections."""
        return apply.plant_status(engine, who)

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the database URL from ``TIERMEET_SERVER_DB_URL``."""
    return create_app(os.environ["TIERMEET_SERVER_DB_URL"])
