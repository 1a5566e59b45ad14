"""Shared HTTP machinery of the platform destinations: credentials from named environment
variables, a client with timeouts, a client-side rate limiter that also obeys the server's
throttling signals, bounded retries with jittered exponential backoff, splitting records into
requests by count and bytes, and bisecting whole-request rejections down to the bad records."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

import httpx
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from phasegate.destinations.base import BatchResult, Destination, Record
from phasegate.destinations.configs import DestinationSettings
from phasegate.destinations.identity import InvalidIdentity
from phasegate.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget_s: float = Field(
        default=120.0,
        gt=0,
        description="Time one request may spend retrying before the batch is given up as transient "
        "(the engine resends it later with the same record ids).",
    )
    max_attempts: int = Field(default=8, ge=1)
    initial_backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)


class RateWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: int = Field(gt=0)
    seconds: float = Field(gt=0)


class HttpDestinationSettings(DestinationSettings):
    base_url: str | None = Field(
        default=None, description="Overrides the platform host (a proxy, or a local fake in tests)."
    )
    timeout_s: float = Field(default=30.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    rate_limit: list[RateWindow] | None = Field(
        default=None,
        description="Client-side request windows; the platform's documented limits when omitted. "
        "Lower them when other tools share the same account's quota.",
    )


def read_secret(env: Mapping[str, str], var: str, purpose: str) -> str:
    value = env.get(var, "").strip()
    if not value:
        raise PermanentError(f"{purpose}: environment variable {var} is not set")
    return value


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
# json builds its C encoder anew on every call, which is a third of the cost of encoding a
# record's message; build it once. It is what _ENCODER.encode runs, without the check for
# circular references (markers=None), so it holds no state and threads can share it. Bodies
# are built from warehouse rows and cannot be circular.
_C_ENCODER = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True
)


def encode_json(body: Any) -> bytes:
    """The exact bytes sent, so that size accounting matches the request."""
    if _C_ENCODER is None or not isinstance(body, (dict, list)):
        return _ENCODER.encode(body).encode()
    return "".join(_C_ENCODER(body, 0)).encode()


class RateLimiter:
    """Sliding-window limiter over several windows at once (e.g. 10/s and 150/min). A request
    holds its slot until its response arrives and is stamped with that time, so the server,
    which counts arrivals, can never see more than the limit in any window."""

    def __init__(self, windows: Sequence[RateWindow]):
        self._windows = [(w.requests, w.seconds, deque()) for w in windows]
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def oldest_frees_in(self) -> float:
        """Seconds until our oldest request leaves its window (the longest over the windows);
        infinite when none has completed."""
        with self._lock:
            now = time.monotonic()
            waits = [stamps[0][0] + seconds - now for _, seconds, stamps in self._windows if stamps]
        return max(waits, default=float("inf"))

    def _try_take(self) -> tuple[list[float] | None, float]:
        now = time.monotonic()
        wait = self._paused_until - now
        for limit, seconds, stamps in self._windows:
            while stamps and stamps[0][0] <= now - seconds:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[0][0] + seconds - now)
        if wait > 0:
            return None, wait
        slot = [float("inf")]  # in flight: occupies its place until stamped
        for _, _, stamps in self._windows:
            stamps.append(slot)
        return slot, 0.0

    def acquire(self) -> list[float]:
        while True:
            with self._lock:
                slot, wait = self._try_take()
            if slot is not None:
                return slot
            time.sleep(min(wait, 1.0) if wait != float("inf") else 0.01)

    def release(self, slot: list[float]) -> None:
        with self._lock:
            slot[0] = time.monotonic()
            for _, _, stamps in self._windows:
                # keep each window ordered by stamp for the pruning above
                ordered = sorted(stamps, key=lambda s: s[0])
                stamps.clear()
                stamps.extend(ordered)


def _seconds_until(value: str) -> float | None:
    """Retry-After / reset header value: delta seconds, a Unix time, or an HTTP date."""
    try:
        number = float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    if number > 1e12:  # Unix milliseconds
        return max(0.0, number / 1000 - time.time())
    if number > 1e9:  # Unix seconds
        return max(0.0, number - time.time())
    return max(0.0, number)


def server_wait(response: httpx.Response) -> float | None:
    """How long the server asks us to hold off, from the rate-limit signals the platforms use;
    None when it says nothing."""
    h = response.headers
    for name in ("retry-after", "x-ratelimit-retry-after"):
        if name in h and (wait := _seconds_until(h[name])) is not None:
            return wait
    if h.get("x-hubspot-ratelimit-daily-remaining") == "0":
        return _seconds_to_utc_midnight()
    if h.get("x-hubspot-ratelimit-remaining") == "0":
        interval_ms = h.get("x-hubspot-ratelimit-interval-milliseconds", "10000")
        return float(interval_ms) / 1000 if interval_ms.isdigit() else 10.0
    for prefix in ("x-ratelimit-", "ratelimit-"):
        if h.get(prefix + "remaining") == "0" or response.status_code == 429:
            reset = h.get(prefix + "reset")
            if reset is not None and (wait := _seconds_until(reset)) is not None:
                return wait
    return None


def _seconds_to_utc_midnight() -> float:
    now = time.time()
    return 86400 - now % 86400


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _is_unknown_host(exc: httpx.ConnectError) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return "Name or service not known" in str(exc) or "nodename nor servname" in str(exc)


class HttpClient:
    """One platform's HTTP client. `send` retries timeouts, dropped connections, 5xx and
    throttling within the retry budget, then raises TransientError; any other response is
    returned for the destination to interpret."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        retry: RetrySettings,
        windows: Sequence[RateWindow],
        secrets: Iterable[str] = (),
        auth: tuple[str, str] | None = None,
        throttled: Callable[[httpx.Response], bool] = lambda r: r.status_code == 429,
        wait_hint: Callable[[httpx.Response], float | None] = server_wait,
        route_windows: Mapping[str, Sequence[RateWindow]] | None = None,
    ):
        self.name = name
        self.redact = Redactor(secrets)
        self._retry = retry
        self._limiter = RateLimiter(windows)
        # endpoints the platform limits on their own (e.g. deletion APIs), by path prefix; their
        # requests neither use nor are held back by the default windows
        self._route_limiters = {prefix: RateLimiter(w) for prefix, w in (route_windows or {}).items()}
        self._throttled, self._wait_hint = throttled, wait_hint
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            auth=auth,
            timeout=timeout_s,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if body is not None:
            content = encode_json(body)
        what = f"{self.name}: {method} {path}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retry.max_attempts)
            | tenacity.stop_before_delay(self._retry.budget_s),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retry),
            before_sleep=lambda rs: log.warning(
                "%s: %s; retrying in %.2f s", what, rs.outcome.exception(), rs.upcoming_sleep
            ),
        )
        try:
            return retrying(self._attempt, method, path, content, headers, params)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            hint = getattr(last, "wait", None)
            raise TransientError(
                f"{what}: gave up after {exc.last_attempt.attempt_number} attempt(s): {last}",
                retry_after=hint,
            ) from None

    def _wait(self, rs: tenacity.RetryCallState) -> float:
        # full jitter: many syncs retrying together spread out instead of stampeding
        backoff = tenacity.wait_random_exponential(
            multiplier=self._retry.initial_backoff_s, max=self._retry.max_backoff_s
        )(rs)
        hint = getattr(rs.outcome.exception(), "wait", None) if rs.outcome else None
        return max(backoff, hint or 0.0)

    def limiter_for(self, path: str) -> RateLimiter:
        for prefix, limiter in self._route_limiters.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limiter
        return self._limiter

    def _attempt(self, method, path, content, headers, params) -> httpx.Response:
        limiter = self.limiter_for(path)
        slot = limiter.acquire()
        try:
            response = self._http.request(method, path, content=content, headers=headers, params=params)
        except httpx.ConnectError as exc:
            if _is_unknown_host(exc):
                raise PermanentError(f"{self.name}: unknown host {exc.request.url.host}") from None
            raise _Retry(f"connection failed: {self.redact(str(exc))}") from None
        except httpx.TimeoutException:
            raise _Retry("timed out") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection dropped: {self.redact(str(exc))}") from None
        finally:
            limiter.release(slot)
        wait = self._wait_hint(response)
        if self._throttled(response):
            limiter.pause(wait or 0.0)
            raise _Retry(f"throttled (HTTP {response.status_code})", wait)
        if wait:
            # A success saying the platform's window is used up. If our own requests used it,
            # its first slot frees no later than our oldest one leaves our window (we stamp at
            # the response, after the platform counted the arrival); a whole interval from now
            # would idle after every burst (HubSpot: 83% of its limit instead of ~100%, see
            # BENCHMARKS.md). If others share the quota a 429 may follow, and is obeyed.
            success = response.status_code not in RETRY_STATUSES
            limiter.pause(min(wait, limiter.oldest_frees_in()) if success else wait)
        if response.status_code in RETRY_STATUSES:
            raise _Retry(f"HTTP {response.status_code}: {self.message(response)}", wait)
        return response

    def message(self, response: httpx.Response) -> str:
        """The platform's own error message, shortened and with secrets removed."""
        return self.redact(error_message(response))[:500]

    def refuse(self, response: httpx.Response) -> PermanentError:
        return PermanentError(f"{self.name}: HTTP {response.status_code}: {self.message(response)}")


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    return _find_message(body) or json.dumps(body)[:300]


def _find_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("detail", "message", "msg", "title", "reason", "error_user_msg"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        for key in ("errors", "error", "meta"):
            if key in body and (found := _find_message(body[key])):
                return found
    if isinstance(body, list):
        found = [m for m in (_find_message(item) for item in body[:5]) if m]
        return "; ".join(found) or None
    if isinstance(body, str):
        return body
    return None


class RequestRejected(Exception):
    """The platform refused a whole request as invalid without saying which item was at fault."""


def chunk(
    items: Sequence[T],
    *,
    max_count: int | None = None,
    max_bytes: int | None = None,
    size: Callable[[T], int] = lambda item: len(encode_json(item)),
    overhead: int = 0,
) -> list[list[T]]:
    """Groups items into requests of at most `max_count` items and `max_bytes` serialized bytes
    (`overhead` is the request envelope). An item too large on its own travels alone; callers
    reject such items before, with the platform's per-item limit as the reason."""
    chunks: list[list[T]] = []
    current: list[T] = []
    used = overhead
    for item in items:
        n = size(item) + 1  # the separating comma
        full = (max_count is not None and len(current) >= max_count) or (
            max_bytes is not None and used + n > max_bytes
        )
        if current and full:
            chunks.append(current)
            current, used = [], overhead
        current.append(item)
        used += n
    if current:
        chunks.append(current)
    return chunks


def send_bisecting(items: Sequence[T], send: Callable[[list[T]], None]) -> list[tuple[T, str]]:
    """Sends `items` with `send`; when `send` raises RequestRejected for a group, halves it
    until the refused items are alone. Returns the refused (item, platform message) pairs; the
    others were delivered. Only for requests that are safe to resend: a rejected request
    applied nothing, or the platform applies the same item idempotently."""
    refused: list[tuple[T, str]] = []
    pending = [list(items)] if items else []
    while pending:
        group = pending.pop()
        try:
            send(group)
        except RequestRejected as exc:
            if len(group) == 1:
                refused.append((group[0], str(exc)))
            else:
                mid = len(group) // 2
                pending += [group[mid:], group[:mid]]
    return refused


def unique_records(records: Iterable[Record]) -> list[Record]:
    """The engine never repeats a record id within a batch, but platforms such as Klaviyo fail
    a whole request on a repeated dedup key, so be certain."""
    seen: dict[str, Record] = {}
    for record in records:
        seen.setdefault(record.record_id, record)
    return list(seen.values())


def split_deletes(records: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """(records to send, deletes). A customer deleted in this batch gets none of the batch's other
    records: platforms apply requests to different endpoints in no promised order, so an upsert
    sent beside the delete could recreate the profile after it is erased. Those records are moot
    and count as delivered: the customer is gone and leaves every later sync."""
    deleted = {r.key for r in records if r.kind == "delete"}
    return [r for r in records if r.key not in deleted], [r for r in records if r.kind == "delete"]


def result_for(records: Sequence[Record], rejected: Mapping[str, str]) -> BatchResult:
    return BatchResult(
        accepted=[r.record_id for r in records if r.record_id not in rejected],
        rejected={rid: reason for rid, reason in rejected.items()},
    )


class HttpDestination(Destination):
    """A destination talking to one platform over HTTP. Credentials are read on first use, so
    a missing variable surfaces from check() as a PermanentError naming it."""

    settings_type: ClassVar[type[HttpDestinationSettings]]
    default_base_url: ClassVar[str]
    default_rate_limit: ClassVar[tuple[RateWindow, ...]]
    # Enough batches in flight to hide request latency; the shared limiter keeps the rate.
    default_concurrency: ClassVar[int] = 4
    _client_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: HttpDestinationSettings, env: Mapping[str, str] | None = None):
        self.settings = settings
        self.env = os.environ if env is None else env
        self._client: HttpClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r})"

    @property
    def client(self) -> HttpClient:
        # Batches are written from several threads: they must share one client, so one limiter.
        with self._client_lock:
            if self._client is None:
                self._client = self.make_client()
            return self._client

    def base_url(self) -> str:
        return self.settings.base_url or self.default_base_url

    def windows(self) -> Sequence[RateWindow]:
        return self.settings.rate_limit or self.default_rate_limit

    def route_windows(self) -> Mapping[str, Sequence[RateWindow]]:
        """Endpoints with their own documented limits, by path prefix."""
        return {}

    def http_client(self, *, headers: Mapping[str, str], secrets: Iterable[str], **kw: Any) -> HttpClient:
        return HttpClient(
            self.type,
            self.base_url(),
            headers=headers,
            timeout_s=self.settings.timeout_s,
            retry=self.settings.retry,
            windows=self.windows(),
            secrets=secrets,
            route_windows=self.route_windows(),
            **kw,
        )

    def make_client(self) -> HttpClient:
        raise NotImplementedError

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class Unsendable(ValueError):
    """A record the platform would refuse; rejected locally with this reason, never sent."""


def prepare(
    records: Iterable[Record], build: Callable[[Record], T]
) -> tuple[list[tuple[Record, T]], dict[str, str]]:
    """Builds each record's wire item; records that cannot be sent are set aside with a reason."""
    ready: list[tuple[Record, T]] = []
    rejected: dict[str, str] = {}
    for record in records:
        try:
            ready.append((record, build(record)))
        except (Unsendable, InvalidIdentity) as exc:
            rejected[record.record_id] = str(exc)
    return ready, rejected


def within(item: Any, limit: int, what: str) -> Any:
    encoded_within(item, limit, what)
    return item


def encoded_within(item: Any, limit: int, what: str) -> bytes:
    """The item's JSON bytes, checked against the platform's per-item limit. Destinations keep
    these bytes and join them into the request body (json_array), so each item is encoded
    once rather than again to size the request and again to send it."""
    data = encode_json(item)
    if len(data) > limit:
        raise Unsendable(f"{what}: {len(data)} bytes serialized, over the platform's limit of {limit}")
    return data


def json_array(head: bytes, items: Iterable[bytes], tail: bytes = b"") -> bytes:
    """A request body around a JSON array of pre-encoded items, e.g. json_array(b'{"batch":',
    items, b"}"): the same bytes encode_json would give for the whole body."""
    return head + b"[" + b",".join(items) + b"]" + tail


class EngagementSettings(HttpDestinationSettings):
    default_phone_region: str | None = Field(
        default="US", description="Region for phone numbers written without a country code."
    )
    clear_on_remove: list[str] = Field(
        default_factory=list,
        description="Attributes cleared at the platform when a customer leaves the sync "
        "(e.g. onboarding_phase, onboarding_phase_entered_on).",
    )


def attributes_to_clear(record: Record, settings: EngagementSettings) -> list[str]:
    """A remove clears the attributes it names (if the engine sends them) and clear_on_remove."""
    names = list(dict.fromkeys([*record.payload, *settings.clear_on_remove]))
    names = [n for n in names if n not in ("email", "phone")]
    if not names:
        raise Unsendable(
            "remove: nothing to clear; set clear_on_remove to the attributes to clear "
            "(e.g. [<journey>_phase, <journey>_phase_entered_on])"
        )
    return names


def event_time(record: Record) -> str:
    """occurred_on is a date; platforms want an instant: midnight UTC of that day."""
    return f"{record.payload['occurred_on']}T00:00:00Z"


def event_properties(record: Record) -> dict[str, Any]:
    p = record.payload
    return {k: p.get(k) for k in ("journey", "phase", "other_phase", "transition_id", "occurred_on")}


def event_unix(record: Record) -> int:
    return int(
        datetime.fromisoformat(str(record.payload["occurred_on"])[:10])
        .replace(tzinfo=timezone.utc)
        .timestamp()
    )
