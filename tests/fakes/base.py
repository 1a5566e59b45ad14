"""A threaded loopback HTTP server that plays one platform: it records every request, checks
auth, enforces the platform's request-rate windows (and remembers the peak rate it saw), and
can be told to fail the next requests in the usual ways (5xx, throttling, stalls, drops)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercase names
    body: bytes
    arrived: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


class FakePlatform:
    """Subclasses implement `authorized`, `handle` and the platform's own throttle reply."""

    rate_windows: ClassVar[tuple[tuple[int, float], ...]] = ()
    # endpoints limited on their own, by path prefix: their requests count only against these
    route_windows: ClassVar[dict[str, tuple[tuple[int, float], ...]]] = {}

    def __init__(self, *, rate_windows: tuple[tuple[int, float], ...] | None = None, retry_after_s=0.05):
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.windows = self.rate_windows if rate_windows is None else rate_windows
        self.retry_after_s = retry_after_s
        self.reject_keys: set[str] = set()  # customers the platform refuses, its per-record way
        self.throttled = 0  # throttle replies sent (injected or earned)
        self.limit_violations = 0  # requests refused for exceeding a count/size limit
        self._faults: deque[tuple[str, Any]] = deque()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FakePlatform:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # a short poll interval makes shutdown prompt
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- failure injection -----------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503) -> None:
        self._faults.extend([("fail", status)] * n)

    def throttle_next(self, n: int) -> None:
        self._faults.extend([("throttle", None)] * n)

    def stall_next(self, n: int, seconds: float) -> None:
        """Hold the request past the client's timeout, then drop it unprocessed."""
        self._faults.extend([("stall", seconds)] * n)

    def drop_next(self, n: int) -> None:
        self._faults.extend([("drop", None)] * n)

    def slow_next(self, n: int, seconds: float) -> None:
        """Answer normally, but late."""
        self._faults.extend([("slow", seconds)] * n)

    # -- observations ----------------------------------------------------------------------
    def route(self, path: str) -> str | None:
        """The route_windows prefix a path falls under; None for the default windows."""
        for prefix in self.route_windows:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return prefix
        return None

    def peak(self, seconds: float, route: str | None = None) -> int:
        """Most requests that arrived within any window of `seconds` (on `route`, when given)."""
        stamps = sorted(r.arrived for r in self.requests if route is None or self.route(r.path) == route)
        best, start = 0, 0
        for end, t in enumerate(stamps):
            while t - stamps[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # -- platform behaviour (subclasses) ---------------------------------------------------
    def authorized(self, req: Request) -> bool:
        raise NotImplementedError

    def unauthorized(self, req: Request) -> Reply:
        return Reply(401, {"message": "Unauthorized"})

    def throttle(self, req: Request, wait_s: float) -> Reply:
        return Reply(429, {"message": "Too Many Requests"}, {"Retry-After": f"{wait_s:.3f}"})

    def server_error(self, status: int) -> Reply:
        return Reply(status, {"message": "Internal error"})

    def handle(self, req: Request) -> Reply:
        raise NotImplementedError

    # -- plumbing --------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        url = urlsplit(h.path)
        req = Request(
            method=h.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=h.rfile.read(length) if length else b"",
            arrived=time.monotonic(),
        )
        with self.lock:
            self.requests.append(req)
            fault = self._faults.popleft() if self._faults else None
            over = self._over_rate(req)
        kind, arg = fault or (None, None)
        if kind in ("drop", "stall"):
            if kind == "stall":
                time.sleep(arg)
            h.close_connection = True
            return
        if kind == "slow":
            time.sleep(arg)
        reply = self._reply(req, kind, arg, over)
        self._write(h, reply)

    def _reply(self, req: Request, kind: str | None, arg: Any, over: float | None) -> Reply:
        if kind == "fail":
            return self.server_error(arg)
        with self.lock:
            if kind == "throttle" or over is not None:
                self.throttled += 1
                return self.throttle(req, self.retry_after_s if over is None else over)
            if not self.authorized(req):
                return self.unauthorized(req)
            return self.handle(req)

    def _over_rate(self, req: Request) -> float | None:
        """Seconds until the request would have been within every window of its route; None
        when it is."""
        now, route = req.arrived, self.route(req.path)
        windows = self.windows if route is None else self.route_windows[route]
        wait = None
        for limit, seconds in windows:
            recent = [
                r.arrived for r in self.requests if r.arrived > now - seconds and self.route(r.path) == route
            ]
            if len(recent) > limit:
                w = recent[-limit - 1] + seconds - now
                wait = max(wait or 0.0, w)
        return wait

    def _write(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = reply.body
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        h.send_response(reply.status)
        if data and not isinstance(body, bytes):
            h.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def too_large(self) -> None:
        self.limit_violations += 1
