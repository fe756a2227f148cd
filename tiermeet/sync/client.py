"""The device's sync client: one full round is push everything, then pull everything.

Push sends the outbox in seq order, at most 500 mutations (and about 4 MiB) per request,
one request at a time. Network errors, 5xx and 409 are retried with exponential backoff
and jitter; a 200 is handled in one local transaction (acknowledged rows to the archive,
rejections recorded). A gap (the server lost changes it had acknowledged, e.g. restored
from a backup) is filled from the archive; ``seq_reused`` (this device lost changes the
server had) renumbers the pending ones. Pull applies one page per local transaction and
resyncs from the start, at most once per round, when the server's epoch changed. No local
transaction is held open across a network call.

For the app's background worker: ``SyncClient(...).run_round() -> RoundResult`` (never
raises; the result says what happened) and ``sync_status(services) -> SyncStatus``.
"""

import functools
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import stamina

from tiermeet.sync import jsonutil, local
from tiermeet.sync.local import RejectionView, SyncStatus, rejections, status_of
from tiermeet.sync.protocol import PROTOCOL_VERSION, MAX_PUSH_MUTATIONS, PULL_LIMIT_MAX

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4
EXIT_REJECTIONS = 5
#: Rounds of push-then-pull in one sync while new local changes keep appearing.
MAX_CYCLES = 3


class SyncError(Exception):
    """A round that could not finish; ``kind`` is unreachable, refused, protocol or usage."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Retry(Exception):
    """A response worth trying again (5xx, 409, 429)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def load_token(path: Path) -> str:
    """The token in ``path``; refused unless only its owner can read it (mode 0600)."""
    path = Path(path).expanduser()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise SyncError("usage", f"token file {path} not found") from None
    if mode & 0o077:
        raise SyncError("usage", f"token file {path} can be read by others (mode {mode:04o}); "
                                 f"make it private with: chmod 600 {path}")
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise SyncError("usage", f"token file {path} is empty")
    return token


@dataclass
class RoundResult:
    """What one round did."""

    pushed: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    pulled: int = 0
    resets: int = 0
    requests: int = 0
    pending: int = 0
    rejections_unseen: int = 0
    error: str | None = None
    error_kind: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The round finished: everything pushed, everything pulled."""
        return self.error is None

    @property
    def exit_code(self) -> int:
        """0 in sync; 3 unreachable; 4 token refused; 5 rejections waiting; 2 usage; 1 other."""
        if self.error_kind == "unreachable":
            return EXIT_UNREACHABLE
        if self.error_kind == "refused":
            return EXIT_REFUSED
        if self.error_kind == "usage":
            return EXIT_USAGE
        if self.error is not None:
            return EXIT_FAILED
        if self.rejections_unseen:
            return EXIT_REJECTIONS
        return EXIT_OK


#: Mutations per push for a sync behind a kiosk's screen (``background``).
BACKGROUND_BATCH = 500


class SyncClient:
    """Syncs one device database with a server.

    ``background``: the sync runs in a kiosk app, beside a person recording decisions. It
    then pushes smaller batches and records each answer before sending the next batch, so
    that its writes and its Python work leave the app's own transactions room (a decision
    stays within its 20 ms); ``tiermeet sync`` pushes at full speed."""

    def __init__(self, engine, *, server_url: str, token: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, attempts: int = 6, wait_initial: float = 0.2, wait_max: float = 5.0,
                 retry_timeout: float = 120.0, batch: int = MAX_PUSH_MUTATIONS, page: int = PULL_LIMIT_MAX,
                 now=None, background: bool = False) -> None:
        self.engine = engine
        self.server_url = server_url.rstrip("/")
        self.batch = min(batch, BACKGROUND_BATCH if background else MAX_PUSH_MUTATIONS)
        self.background = background
        self.page = page
        self.attempts = attempts
        self.wait_initial = wait_initial
        self.wait_max = wait_max
        self.retry_timeout = retry_timeout
        self._now = now or (lambda: datetime.now(timezone.utc))
        self.http = httpx.Client(base_url=self.server_url, transport=transport, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}", "User-Agent": "tiermeet-sync"})

    @classmethod
    def from_services(cls, services, *, server_url: str | None = None, token_file: Path | None = None, **kw) -> "SyncClient":
        """A client for the services' database, with the server URL and token file from the
        config unless given."""
        sync = services.ctx.config.sync
        url = server_url or sync.server_url
        path = token_file or sync.token_file
        if not url:
            raise SyncError("usage", "no server URL: set [sync] server_url in the config or pass --server")
        if not path:
            raise SyncError("usage", "no token file: set [sync] token_file in the config or pass --token-file")
        return cls(services.ctx.engine, server_url=url, token=load_token(path), **kw)

    @property
    def client_id(self) -> str:
        """This device's client id (made on first use)."""
        if getattr(self, "_client_id", None) is None:
            self._client_id = local.ensure_client_id(self.engine)
        return self._client_id

    def pull_only(self) -> RoundResult:
        """Pull everything without pushing (the outbox stays as it is)."""
        result = RoundResult()
        self._pull_all(result)
        return result

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one round -----------------------------------------------------------------------

    def run_round(self) -> RoundResult:
        """Push everything, pull everything (again while new local changes appear)."""
        result = RoundResult()
        started = time.perf_counter()
        try:
            for _ in range(MAX_CYCLES):
                self._push_all(result)
                self._pull_all(result)
                self._refill_from_archive(result)
                if local.pending_count(self.engine) == 0:
                    break
        except SyncError as exc:
            result.error, result.error_kind = str(exc), exc.kind
        except httpx.HTTPError as exc:
            result.error, result.error_kind = f"cannot reach {self.server_url}: {exc}", "unreachable"
        result.seconds = time.perf_counter() - started
        try:
            local.record_outcome(self.engine, ok=result.ok, error=result.error, now=self._now())
            state = status_of(self.engine)
            result.pending, result.rejections_unseen = state.pending, state.rejections_unseen
        except Exception as exc:  # noqa: BLE001 - the round's own result matters more
            result.notes.append(f"could not record the outcome: {exc}")
        return result

    # -- HTTP with retries ---------------------------------------------------------------

    def _request(self, method: str, url: str, result: RoundResult, **kw) -> httpx.Response:
        def retryable(exc: Exception) -> bool:
            return isinstance(exc, (_Retry, httpx.TransportError))

        try:
            for attempt in stamina.retry_context(on=retryable, attempts=self.attempts, timeout=self.retry_timeout,
                                                 wait_initial=self.wait_initial, wait_max=self.wait_max):
                with attempt:
                    result.requests += 1
                    response = self.http.request(method, url, **kw)
                    if response.status_code >= 500 or response.status_code in (409, 429):
                        raise _Retry(response)
                    return response
        except _Retry as exc:
            raise SyncError("unreachable", f"the server kept answering {exc.response.status_code} "
                                           f"({_detail(exc.response)}) at {self.server_url}") from None
        except httpx.TransportError as exc:
            raise SyncError("unreachable", f"cannot reach {self.server_url}: {exc.__class__.__name__}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise SyncError("refused", f"the server refused this device's token ({response.status_code}: {_detail(response)})")
        if response.status_code >= 400:
            raise SyncError("protocol", f"the server answered {response.status_code}: {_detail(response)}")

    def _wall_ms(self) -> int:
        return int(self._now().timestamp() * 1000)

    # -- push ----------------------------------------------------------------------------

    def _post_push(self, batch: local.Batch, result: RoundResult) -> httpx.Response:
        state = local.read_state(self.engine)
        head = {"protocol_version": PROTOCOL_VERSION, "client_id": self.client_id, "client_kind": "kiosk",
                "app_version": _app_version(), "schema_version": _schema(), "client_hlc": state.get("hlc"),
                "client_wall_ms": self._wall_ms()}
        body = jsonutil.dumpb(head)[:-1] + b',"mutations":[' + b",".join(batch.encoded) + b"]}"
        first, last = batch.mutations[0]["seq"], batch.mutations[-1]["seq"]
        return self._request("POST", "/v1/sync/push", result, content=body,
                             headers={"Idempotency-Key": f"{self.client_id}:{first}-{last}",
                                      "Content-Type": "application/json"})

    def _push(self, batch: local.Batch, result: RoundResult) -> dict:
        data = self._answer(self._post_push(batch, result), result)
        self._record(data, batch, result)
        return data

    def _answer(self, response: httpx.Response, result: RoundResult) -> dict:
        """The server's answer to a push, not yet recorded here; after ``seq_reused``, the
        pending changes are renumbered and ``_Renumbered`` raised."""
        if response.status_code == 422 and _code(response) == "seq_reused":
            expected = response.json().get("expected_seq")
            moved = local.renumber_pending(self.engine, int(expected))
            result.notes.append(f"this device had lost changes the server already had; renumbered {moved} pending "
                                f"changes from seq {expected}")
            raise _Renumbered
        self._check(response)
        return jsonutil.loads(response.content)

    def _record(self, data: dict, batch: local.Batch, result: RoundResult) -> None:
        """Record the server's answer to a push here (acknowledged changes archived,
        rejections kept to show), and count it."""
        counts = local.apply_push_response(self.engine, data, batch.mutations, now=self._now(), wall_ms=self._wall_ms())
        result.pushed += counts["applied"] + counts["rejected"]
        result.applied += counts["applied"]
        result.duplicates += counts["duplicate"]
        result.rejected += counts["rejected"]

    def _push_all(self, result: RoundResult) -> None:
        """Push the outbox in batches, one request at a time. While the server applies a
        batch, the next batch is read and encoded here, and (unless in the background) the
        answer to the batch before is recorded; the next is sent only if the server took
        the whole batch before it (otherwise the outbox is read again from its start). An
        answer the process stops before recording costs nothing: those changes are pushed
        again, and the server answers them as duplicates."""
        renumbered = False
        stalls = 0
        recording = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiermeet-push") as worker:
            try:
                batch = local.pending(self.engine, limit=self.batch)
                while batch.mutations:
                    first, last = batch.mutations[0]["seq"], batch.mutations[-1]["seq"]
                    upcoming = worker.submit(local.pending, self.engine, limit=self.batch, after_seq=last)
                    response = self._post_push(batch, result)
                    recording = _settled(recording)
                    try:
                        data = self._answer(response, result)
                    except _Renumbered:
                        if renumbered:
                            raise SyncError("protocol", "the server refused the renumbered changes as reused sequence "
                                                        "numbers too") from None
                        renumbered = True
                        upcoming.result()
                        batch = local.pending(self.engine, limit=self.batch)
                        continue
                    if self.background or data.get("expected_seq") is not None:
                        self._record(data, batch, result)
                    else:
                        recording = worker.submit(self._record, data, batch, result)
                    if data.get("expected_seq") is not None:
                        self._fill_gap(int(data["expected_seq"]), first - 1, result)
                    if data["last_processed_seq"] < first:
                        stalls += 1
                        if stalls > 2:
                            raise SyncError("protocol", f"the server does not take seq {first} "
                                                        f"(it has {data['last_processed_seq']})")
                    else:
                        stalls = 0
                    if data["last_processed_seq"] >= last:
                        batch = upcoming.result()
                    else:
                        upcoming.result()
                        recording = _settled(recording)
                        batch = local.pending(self.engine, limit=self.batch)
            except BaseException:
                _settled(recording, quietly=True)
                raise
            _settled(recording)

    def _fill_gap(self, first: int, last: int, result: RoundResult) -> None:
        """The server needs changes it had acknowledged before (it was restored): send them
        again from the archive."""
        while first <= last:
            batch = local.pending(self.engine, limit=self.batch, archived_from=first, archived_to=last)
            if not batch.mutations or batch.mutations[0]["seq"] != first:
                raise SyncError("protocol", f"the server is missing changes {first}–{last} of this device, "
                                            "which are no longer kept here")
            data = self._push(batch, result)
            if data["last_processed_seq"] < batch.mutations[-1]["seq"]:
                raise SyncError("protocol", f"the server did not take the re-sent changes from seq {first}")
            result.notes.append(f"re-sent {len(batch.mutations)} changes the server had lost")
            first = batch.mutations[-1]["seq"] + 1

    def _refill_from_archive(self, result: RoundResult) -> None:
        state = local.read_state(self.engine)
        server_last = int(state.get("server_last_processed_seq", "0"))
        acked = int(state.get("last_acked_seq", "0"))
        if server_last < acked:
            self._fill_gap(server_last + 1, acked, result)

    # -- pull ----------------------------------------------------------------------------

    def _get_page(self, cursor: int, epoch: str | None, result: RoundResult) -> httpx.Response:
        params = {"cursor": cursor, "limit": self.page}
        if epoch:
            params["epoch"] = epoch
        return self._request("GET", "/v1/sync/pull", result, params=params, headers={"X-Client-Id": self.client_id})

    def _pull_all(self, result: RoundResult) -> None:
        """Pull pages until the server has no more. While a page is applied here, the next
        one is already being fetched (still one request at a time), so the server's work
        and this device's overlap; a page is applied only after the one before it."""
        resets = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiermeet-pull") as fetcher:
            ahead = None
            while True:
                if ahead is None:
                    state = local.read_state(self.engine)
                    response = self._get_page(int(state.get("pull_cursor", "0")), state.get("server_epoch"), result)
                else:
                    response, ahead = ahead.result(), None
                if response.status_code == 410:
                    if resets:
                        raise SyncError("protocol", "the server asked for a second resync in one round; will try again later")
                    resets += 1
                    result.resets += 1
                    local.reset_for_resync(self.engine, response.json()["server_epoch"])
                    result.notes.append(f"resync from the start ({response.json().get('reset')})")
                    continue
                self._check(response)
                page = jsonutil.loads(response.content)
                if page["has_more"]:
                    ahead = fetcher.submit(self._get_page, int(page["next_cursor"]), page["server_epoch"], result)
                result.pulled += local.apply_pull_page(self.engine, page, now=self._now(), wall_ms=self._wall_ms())
                if not page["has_more"]:
                    return


class _Renumbered(Exception):
    pass


def _settled(recording: Future | None, *, quietly: bool = False) -> None:
    """Wait for a push's answer to be recorded, raising what recording it raised (unless
    ``quietly``: another error is on its way out, and it says what went wrong first)."""
    if recording is None:
        return
    if quietly:
        recording.exception()
    else:
        recording.result()


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("detail") or data)
    except ValueError:
        return response.text[:200] or response.reason_phrase


@functools.cache
def _app_version() -> str:
    """The installed version, sent with every push: read once, since looking it up parses
    the package's metadata (a fifth of a week-offline push's CPU on the device)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tiermeet")
    except PackageNotFoundError:
        return "0"


def _schema() -> str:
    from tiermeet.store.migrate import HEAD_REVISION

    return HEAD_REVISION


def sync_status(services) -> SyncStatus:
    """The sync status of the services' database, for the app's indicator (no network)."""
    return status_of(services.ctx.engine, configured=bool(services.ctx.config.sync.server_url))


def rejected_changes(services) -> list[RejectionView]:
    """Changes the server refused, newest first, with the reason and the winning value."""
    return rejections(services.ctx.engine)


__all__ = ["RoundResult", "SyncClient", "SyncError", "SyncStatus", "load_token", "rejected_changes", "sync_status"]
