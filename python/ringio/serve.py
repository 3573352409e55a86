"""An HTTP/1.1 server on one ringio Ring, and a tiny handler API.

``python -m ringio serve`` runs it with the Fibonacci service (``POST /N``
answers the Nth Fibonacci number, plus ``GET /`` and ``GET /health``).  Your
own service is a :class:`App` with plain Python callables::

    from ringio.serve import App, Server

    app = App()

    @app.route("GET", "/hello/{name}")
    def hello(req, name):
        return f"hello {name}\\n"          # str, bytes, dict (JSON), Response, (status, body)

    with Server(app, port=0) as server:    # binds at once; port 0 picks a free port
        server.start()                      # a background thread (or: serve_forever())
        ...
        server.stop()

The server loop (:meth:`Server.serve_forever`) uses one ring: a multishot
accept, one multishot receive per connection (provided buffers, re-armed on
``-ENOBUFS``), one send per connection per loop turn (every response a turn
produced for that connection, joined), a periodic ``submit_timeout`` tick for
idle timeouts, and one ``io_uring_enter`` per turn (``batch()`` +
``wait_many()``).  Requests are parsed incrementally and pipelining-safe
(several requests in one receive, a request split over several), under limits
on header and body size; a malformed request gets a ``400`` and closes only
its own connection.  A head (request line and headers) is parsed once and
its fields reused when a client sends the same bytes again, as keep-alive
clients do (a bounded cache per server; each request still gets its own
``Request`` and headers dict).  Everything goes through the Ring API, so the same code
runs on every backend (``backend="sim"`` included).
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import ringio

__all__ = ["App", "HTTPError", "Request", "Response", "Server", "fibonacci", "fibonacci_app"]

# --------------------------------------------------------------------------- handler API


class Request:
    """One parsed request.  ``headers`` maps lower-case names to values (repeated
    headers joined with ``", "``); ``body`` is bytes (``b""`` without one)."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "body", "keep_alive",
                 "content_length")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 keep_alive: bool, content_length: int) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = b""
        self.keep_alive = keep_alive
        self.content_length = content_length

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} {self.version}>"


class Response:
    """What a handler may return when a plain body is not enough."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, body: bytes | str | bytearray | memoryview = b"", status: int = 200, *,
                 content_type: str | None = None,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None) -> None:
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        self.status = status if status.__class__ is int else int(status)
        self.body = body if body.__class__ is bytes else bytes(body)
        self.content_type = content_type or "application/octet-stream"
        self.headers = () if not headers else list(headers.items()) if isinstance(headers, dict) \
            else list(headers)


class HTTPError(Exception):
    """Raise in a handler to answer ``status`` with ``message`` as the body."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = int(status)
        self.message = message if message is not None else _reason(self.status)
        super().__init__(self.status, self.message)


Handler = Callable[..., Any]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(int|str|path))?\}")
_CONVERTERS = {None: ("[^/]+", str), "str": ("[^/]+", str), "int": ("-?[0-9]+", int),
               "path": (".+", str)}


class App:
    """A routing table: ``(method, pattern) -> handler``.

    Patterns are paths with ``{name}`` (one segment), ``{name:int}`` (an
    integer, passed as ``int``) or ``{name:path}`` (the rest of the path)
    parameters; the handler is called as ``handler(request, **params)``.
    It returns the body: ``str`` (text/plain), ``bytes``, ``dict``/``list``
    (JSON), ``None`` (204), a ``(status, body)`` tuple or a :class:`Response`;
    or raises :class:`HTTPError`.  Any other exception answers 500 and is
    printed to stderr; the connection stays open.  ``HEAD`` uses the ``GET``
    handler and drops the body.
    """

    def __init__(self) -> None:
        self._static: dict[tuple[str, str], Handler] = {}
        self._static_paths: set[str] = set()
        self._patterns: list[tuple[str, re.Pattern[str], list[tuple[str, Callable]], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> Handler:
        """Register ``handler`` for ``method`` (e.g. ``"GET"``) and ``pattern``."""
        method = method.upper()
        if not pattern.startswith("/"):
            raise ValueError(f"pattern must start with '/': {pattern!r}")
        if not _PARAM.search(pattern):
            self._static[(method, pattern)] = handler
            self._static_paths.add(pattern)
            return handler
        rx, convs, pos = ["^"], [], 0
        for m in _PARAM.finditer(pattern):
            rx.append(re.escape(pattern[pos:m.start()]))
            expr, conv = _CONVERTERS[m.group(2)]
            rx.append(f"(?P<{m.group(1)}>{expr})")
            convs.append((m.group(1), conv))
            pos = m.end()
        rx.append(re.escape(pattern[pos:]) + "$")
        self._patterns.append((method, re.compile("".join(rx)), convs, handler))
        return handler

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`."""
        return lambda fn: self.add(method, pattern, fn)

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, Any]] | int:
        """``(handler, params)``, or 404 (no such path) or 405 (not with this method)."""
        h = self._static.get((method, path))
        if h is not None:
            return h, {}
        found_path = path in self._static_paths
        for m, rx, convs, handler in self._patterns:
            match = rx.match(path)
            if match is None:
                continue
            if m != method:
                found_path = True
                continue
            try:
                return handler, {name: conv(match.group(name)) for name, conv in convs}
            except ValueError:
                return 400
        if method == "HEAD":
            return self.find("GET", path)
        return 405 if found_path else 404

    def handle(self, req: Request) -> Response:
        """Run the handler for ``req`` and turn what it returns into a Response."""
        try:
            handler = self._static.get((req.method, req.path))
            if handler is not None:  # the common case: a path without parameters
                out = handler(req)
            else:
                found = self.find(req.method, req.path)
                if found.__class__ is int:
                    raise HTTPError(found)  # type: ignore[arg-type]
                handler, params = found  # type: ignore[misc]
                out = handler(req, **params)
            if out.__class__ is str:
                return Response(out)
            return _to_response(out)
        except HTTPError as e:
            return Response(f"{e.message}\n", e.status)
        except Exception:  # noqa: BLE001 -- a handler's bug answers 500, the server goes on
            sys.stderr.write(f"ringio serve: error in the handler of {req.method} {req.path}:\n")
            traceback.print_exc()
            return Response("internal server error\n", 500)


def _to_response(out: Any) -> Response:
    if out.__class__ is str:
        return Response(out)
    if isinstance(out, Response):
        return out
    if isinstance(out, (bytes, bytearray, memoryview)):
        return Response(bytes(out))
    if out is None:
        return Response(b"", 204)
    if isinstance(out, tuple) and len(out) == 2:
        status, body = out
        r = _to_response(body)
        r.status = int(status)
        return r
    if isinstance(out, (dict, list)):
        return Response(json.dumps(out).encode(), content_type="application/json")
    if isinstance(out, str):
        return Response(out)
    raise TypeError(f"a handler returned {type(out).__name__}: return str, bytes, dict, list, "
                    "None, (status, body) or Response")


# --------------------------------------------------------------------------- the seed's service

#: The largest N ``POST /N`` accepts: F(10000) already has 2090 digits.
FIBONACCI_MAX = 10_000


def fibonacci(n: int) -> int:
    """F(n) with F(0) = 0, F(1) = 1."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fibonacci_app() -> App:
    """The service ``python -m ringio serve`` runs: ``POST /N``, ``GET /``, ``GET /health``."""
    app = App()

    @app.route("GET", "/")
    def index(req: Request) -> str:
        return "ringio serve: POST /N answers the Nth Fibonacci number; GET /health\n"

    @app.route("GET", "/health")
    def health(req: Request) -> str:
        return "ok\n"

    @app.route("POST", "/{n:int}")
    def fib(req: Request, n: int) -> str:
        if not 0 <= n <= FIBONACCI_MAX:
            raise HTTPError(400, f"N must be between 0 and {FIBONACCI_MAX}")
        return f"{fibonacci(n)}\n"

    return app


# --------------------------------------------------------------------------- wire format

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters other than HTAB, CR, LF anywhere in the head; a CR or LF that is not part
# of a line break is caught by counting them against the lines.
_CTL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_COMMON_METHODS = frozenset(("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"))
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


_STATUS_LINES: dict[int, bytes] = {}
_PREFIXES: dict[tuple[int, str], bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {_reason(status)}\r\n".encode()
    return line


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: Heads (request line and headers) parsed once per server and reused: keep-alive clients
#: send the same head again and again.  Only heads up to this size are kept, at most
#: _HEAD_CACHE_ENTRIES of them (then the cache starts over).
_HEAD_CACHE_MAX_BYTES = 1024
_HEAD_CACHE_ENTRIES = 512


def _parse_head(head: bytes, max_body: int, cache: dict[bytes, tuple] | None = None) -> Request:
    """The request of ``head`` (request line and headers, without the final CRLFCRLF).
    ``cache`` maps heads already parsed to their fields (_parse_fields); every request
    gets its own headers dict all the same, since a handler may change it."""
    fields = cache.get(head) if cache is not None else None
    if fields is None:
        fields = _parse_fields(head.decode("latin-1"))
        if cache is not None and len(head) <= _HEAD_CACHE_MAX_BYTES:
            if len(cache) >= _HEAD_CACHE_ENTRIES:
                cache.clear()
            cache[head] = fields
    method, target, version, headers, keep, length = fields
    if length > max_body:
        raise _BadRequest(413, f"the body limit is {max_body} bytes")
    return Request(method, target, version, headers.copy(), keep, length)


def _parse_fields(head: str) -> tuple[str, str, str, dict[str, str], bool, int]:
    """``(method, target, version, headers, keep_alive, content_length)`` of a head, or
    _BadRequest.  A pure function of ``head``: the server caches its results."""
    lines = head.split("\r\n")
    if _CTL.search(head) is not None:
        raise _BadRequest(400, "control character in the request head")
    breaks = len(lines) - 1
    if head.count("\r") != breaks or head.count("\n") != breaks:
        raise _BadRequest(400, "bare CR or LF in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        if version.startswith("HTTP/") and len(version) == 8 and version[5].isdigit():
            raise _BadRequest(505, "HTTP/1.0 and HTTP/1.1 only")
        raise _BadRequest(400, "malformed request line")
    if method not in _COMMON_METHODS and not _TOKEN.fullmatch(method):
        raise _BadRequest(400, "malformed method")
    if not target.startswith("/") or _BAD_TARGET.search(target) is not None:
        raise _BadRequest(400, "malformed request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise _BadRequest(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        old = headers.get(name)
        if old is None:
            headers[name] = value
        elif name == "content-length" or name == "host":
            raise _BadRequest(400, f"repeated {name} header")
        else:
            headers[name] = f"{old}, {value}"
    if "transfer-encoding" in headers:
        raise _BadRequest(501, "Transfer-Encoding is not supported: send Content-Length")
    length = 0
    cl = headers.get("content-length")
    if cl is not None:
        if not (cl.isascii() and cl.isdigit()):
            raise _BadRequest(400, "malformed Content-Length")
        length = int(cl)
    if version == "HTTP/1.1":
        if "host" not in headers:
            raise _BadRequest(400, "HTTP/1.1 requests need a Host header")
        conn = headers.get("connection")
        keep = conn is None or "close" not in conn.lower()
    else:
        conn = headers.get("connection")
        keep = conn is not None and "keep-alive" in conn.lower()
    return method, target, version, headers, keep, length


# --------------------------------------------------------------------------- the server


class _Conn:
    """A connection: its recv leg's user_data is the _Conn, its sends' the _SendTag."""

    __slots__ = ("fd", "buf", "head", "out", "out_bytes", "sending", "send_tag", "armed",
                 "closing", "tick", "recv_op", "done", "linger", "linger_tick", "shut_tag",
                 "shut_pending", "close_wanted")

    def __init__(self, fd: int, tick: int) -> None:
        self.fd = fd
        self.buf = bytearray()  # received bytes not parsed yet
        self.head: Request | None = None  # headers parsed, body still arriving
        self.out: list[bytes] = []  # responses not handed to the kernel yet
        self.out_bytes = 0
        self.sending: bytes | memoryview | None = None  # the one send in flight
        self.send_tag = _SendTag(self)
        self.armed = False  # the multishot receive is in the kernel
        self.closing = False  # read no more requests; close once the output is sent
        self.tick = tick  # the tick of the last activity (idle timeout)
        self.recv_op: Any = None
        self.linger = 0  # 1: our side is shut down for writing; 2: for reading too
        self.linger_tick = 0
        self.shut_tag = _ShutTag(self)
        self.shut_pending = 0  # shutdowns submitted (maybe only staged) and not completed
        self.close_wanted = False  # close once they complete
        self.done = False  # fd closed


class _ShutTag:
    __slots__ = ("conn",)

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn


class _SendTag:
    __slots__ = ("conn",)

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn


_ACCEPT = "accept"
_TICK = "tick"
_ENOBUFS = -errno.ENOBUFS


class Server:
    """An HTTP/1.1 server of ``app`` on one ringio Ring.

    The listening socket is bound in the constructor (``port=0`` picks a free
    port: see :attr:`address`).  :meth:`serve_forever` runs the loop in the
    calling thread until :meth:`shutdown` (safe from any thread and from a
    signal handler); :meth:`start`/:meth:`stop` run it in a background thread.
    On shutdown the server stops accepting, closes every connection (open
    keep-alive connections included), closes its ring and its socket.

    Limits: ``max_header_bytes`` (request line + headers, else 431),
    ``max_body_bytes`` (Content-Length, else 413), ``idle_timeout`` seconds
    without any bytes from a connection (closed between 1 and 1.25 times it,
    measured with the ring's own timeouts), ``max_output_bytes`` of responses
    a client has not taken (a client that pipelines without reading is
    closed).  ``backend`` is passed to ``ringio.Ring``.
    """

    def __init__(self, app: App | None = None, host: str = "127.0.0.1", port: int = 8000, *,
                 backend: str = "auto", entries: int = 1024, idle_timeout: float = 30.0,
                 max_header_bytes: int = 16384, max_body_bytes: int = 1 << 20,
                 max_output_bytes: int = 4 << 20, recv_buffer_size: int = 4096,
                 recv_buffer_count: int = 8, backlog: int = 1024) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        self.app = app if app is not None else fibonacci_app()
        self.backend = backend
        self.entries = entries
        self.idle_timeout = float(idle_timeout)
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.max_output_bytes = max_output_bytes
        self.recv_buffer_size = recv_buffer_size
        self.recv_buffer_count = recv_buffer_count
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(backlog)
        except BaseException:
            self._listener.close()
            raise
        self._stop = False
        self._accept_later = False
        self._tick = 0
        self._ring: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self.conns: dict[int, _Conn] = {}
        self._heads: dict[bytes, tuple] = {}  # head bytes -> _parse_fields(head)
        #: Counters: accepted connections, answers, answers to bad requests, connections closed
        #: for idleness, multishot receives re-armed after they ended (-ENOBUFS).
        self.counters = {"accepted": 0, "requests": 0, "bad_requests": 0, "idle_closed": 0,
                         "recv_rearms": 0}

    # -- public surface -------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on."""
        return self._listener.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def shutdown(self) -> None:
        """Ask the loop to stop (any thread, or a signal handler); returns at once."""
        self._stop = True
        ring = self._ring
        if ring is not None:
            try:
                ring.break_wait()
            except Exception:  # noqa: BLE001 -- the ring is closing already: nothing to wake
                pass

    def start(self) -> Server:
        """Run :meth:`serve_forever` in a daemon thread; return once it serves."""
        if self._thread is not None:
            raise RuntimeError("the server was started already")
        self._thread = threading.Thread(target=self._thread_main, name="ringio-serve", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """:meth:`shutdown` and wait for the loop (started by :meth:`start`) to finish."""
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the server loop did not stop in time")
        else:
            self.close()

    def close(self) -> None:
        """Close the listening socket (the loop does this itself on shutdown)."""
        self._listener.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self.stop()
        self.close()

    def _thread_main(self) -> None:
        try:
            self.serve_forever()
        except BaseException as e:  # noqa: BLE001 -- handed to start()/the log
            self._error = e
            if self._ready.is_set():
                traceback.print_exc()
        finally:
            self._ready.set()

    # -- the loop ---------------------------------------------------------------------------

    def _make_ring(self) -> Any:
        try:
            # A single-threaded loop: task work may wait for our next io_uring_enter.
            return ringio.Ring(self.entries, ringio.IORING_SETUP_COOP_TASKRUN, backend=self.backend)
        except (OSError, ValueError):
            return ringio.Ring(self.entries, backend=self.backend)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`; then close every connection, the ring and the socket."""
        try:
            ring = self._make_ring()
        except BaseException:
            self._finished.set()
            self.close()
            raise
        self._ring = ring
        try:
            self._loop(ring)
        finally:
            self._teardown(ring)

    def _loop(self, ring: Any) -> None:
        conns = self.conns
        lfd = self._listener.fileno()
        size, count = self.recv_buffer_size, self.recv_buffer_count
        accept_flags = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        send, recv_ms = ring.submit_send, ring.submit_recv_multishot
        wait_many, batch = ring.wait_many, ring.batch
        tick_seconds = self.idle_timeout / 4
        idle_ticks = 4
        tick = 0
        dirty: list[_Conn] = []  # connections with new output this turn
        feed = self._feed
        counters = self.counters

        ring.submit_accept_multishot(lfd, _ACCEPT, accept_flags)
        ring.submit_timeout(tick_seconds, _TICK)
        self._ready.set()
        comps: list = []
        while True:
            with batch():
                for c in comps:
                    ud = c.user_data
                    cls = ud.__class__
                    if cls is _Conn:  # a receive leg
                        res = c.res
                        if res > 0:
                            ud.tick = tick
                            if not ud.closing:
                                feed(ud, c.result, dirty)
                        if not c.more:
                            if (res > 0 or res == _ENOBUFS) and not ud.closing:
                                counters["recv_rearms"] += 1
                                ud.recv_op = recv_ms(ud.fd, size, count, ud, sequence=c.sequence + 1)
                            else:
                                ud.armed = False
                                ud.recv_op = None
                                ud.closing = True  # EOF, error, or our shutdown()
                                if ud.sending is None and not ud.out:
                                    self._close_conn(ud)  # else: once the responses are sent
                    elif cls is _SendTag:
                        conn = ud.conn
                        res = c.res
                        data = conn.sending
                        if res < 0 or conn.done:
                            conn.sending = None
                            conn.out.clear()
                            conn.closing = True
                            self._finish(ring, conn)
                        elif res < len(data):
                            rest = memoryview(data)[res:]
                            conn.sending = rest
                            send(conn.fd, rest, conn.send_tag)
                        else:
                            conn.sending = None
                            if conn.out:
                                dirty.append(conn)
                            elif conn.closing:
                                self._finish(ring, conn)
                    elif ud is _ACCEPT:
                        fd = c.res
                        if fd >= 0:
                            counters["accepted"] += 1
                            _nodelay(fd)
                            conn = _Conn(fd, tick)
                            conns[fd] = conn
                            conn.armed = True
                            conn.recv_op = recv_ms(fd, size, count, conn)
                        elif not self._stop:
                            sys.stderr.write(f"ringio serve: accept: {os.strerror(-fd)}\n")
                        if not c.more and not self._stop:
                            if fd >= 0:
                                ring.submit_accept_multishot(lfd, _ACCEPT, accept_flags)
                            else:  # EMFILE and friends: try again at the next tick
                                self._accept_later = True
                    elif ud is _TICK:
                        tick += 1
                        self._on_tick(ring, tick, idle_ticks)
                        ring.submit_timeout(tick_seconds, _TICK)
                        if self._accept_later:
                            self._accept_later = False
                            ring.submit_accept_multishot(lfd, _ACCEPT, accept_flags)
                    elif cls is _ShutTag:
                        conn = ud.conn
                        conn.shut_pending -= 1
                        if conn.close_wanted and not conn.shut_pending:
                            self._close_conn(conn)
                if dirty:
                    for conn in dirty:
                        if conn.sending is None and conn.out and not conn.done:
                            out = conn.out
                            data = out[0] if len(out) == 1 else b"".join(out)
                            out.clear()
                            conn.out_bytes = 0
                            conn.sending = data
                            send(conn.fd, data, conn.send_tag)
                    dirty.clear()
                if self._stop:
                    return
                comps = wait_many(256)

    def _feed(self, conn: _Conn, data: bytes, dirty: list[_Conn]) -> None:
        """Parse what arrived and queue the responses (pipelined requests in order)."""
        buf = conn.buf
        if buf:
            buf += data
            data = buf
        n = len(data)
        pos = 0
        app_handle = self.app.handle
        heads = self._heads
        respond = self._respond
        queued = False
        try:
            while pos < n:
                req = conn.head
                if req is None:
                    while data.startswith(b"\r\n", pos):  # stray CRLFs between requests (RFC 9112)
                        pos += 2
                    end = data.find(b"\r\n\r\n", pos)
                    if end < 0:
                        if n - pos > self.max_header_bytes:
                            raise _BadRequest(431, f"the header limit is {self.max_header_bytes} bytes")
                        break
                    if end - pos > self.max_header_bytes:
                        raise _BadRequest(431, f"the header limit is {self.max_header_bytes} bytes")
                    head = data[pos:end]
                    if head.__class__ is not bytes:
                        head = bytes(head)  # a slice of conn.buf: the cache keys on bytes
                    req = _parse_head(head, self.max_body_bytes, heads)
                    pos = end + 4
                    conn.head = req
                    if req.content_length > n - pos and req.version == "HTTP/1.1" and \
                            req.headers.get("expect", "").lower() == "100-continue":
                        conn.out.append(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it
                        queued = True
                length = req.content_length
                if length:
                    if n - pos < length:
                        break
                    req.body = bytes(data[pos:pos + length])
                    pos += length
                conn.head = None
                respond(conn, req, app_handle(req))
                queued = True
                if conn.closing:
                    pos = n
                    break
                if conn.out_bytes > self.max_output_bytes:
                    conn.closing = True  # the client does not read what it asked for
                    pos = n
                    break
        except _BadRequest as e:
            self.counters["bad_requests"] += 1
            conn.closing = True
            conn.head = None
            self._respond(conn, None, Response(f"{e.message}\n", e.status))
            queued = True
            pos = n
        if buf:
            del buf[:pos]
        elif pos < n:
            buf += data[pos:]
        if queued:
            dirty.append(conn)

    def _respond(self, conn: _Conn, req: Request | None, resp: Response) -> None:
        self.counters["requests"] += 1
        keep = req is not None and req.keep_alive and not conn.closing
        body = resp.body
        key = (resp.status, resp.content_type)
        prefix = _PREFIXES.get(key)
        if prefix is None:  # status line and Content-Type, up to the Content-Length value
            prefix = _status_line(resp.status) + b"Content-Type: " + resp.content_type.encode("latin-1") \
                + b"\r\nContent-Length: "
            if len(_PREFIXES) < 1024:
                _PREFIXES[key] = prefix
        extra = b""
        if resp.headers:
            extra = "".join(f"{k}: {v}\r\n" for k, v in resp.headers).encode("latin-1")
        if not keep:
            conn.closing = True
            extra += b"Connection: close\r\n"
        elif req.version == "HTTP/1.0":
            extra += b"Connection: keep-alive\r\n"
        if req is not None and req.method == "HEAD":
            body = b""
        data = b"%s%d\r\n%s\r\n%s" % (prefix, len(resp.body), extra, body)
        conn.out.append(data)
        conn.out_bytes += len(data)

    def _finish(self, ring: Any, conn: _Conn, linger: bool = True) -> None:
        """The output of a closing connection is sent: end its receive, then close it.

        Lingering close (RFC 9112, 9.6): shut down our sending side only, so the peer reads
        our answers and then EOF, and keep receiving (and dropping) until the peer closes,
        for one to two ticks at most.  Closing at once while the peer still sends (the body
        of a request we refused, say) would answer its data with a reset, which can
        destroy the answer before the peer has read it.  The final leg of the receive
        closes the descriptor."""
        if not conn.armed:
            self._close_conn(conn)
        elif linger and conn.linger == 0:
            conn.linger = 1
            conn.linger_tick = self._tick
            conn.shut_pending += 1
            ring.submit_shutdown(conn.fd, socket.SHUT_WR, conn.shut_tag)
        elif conn.linger < 2:
            conn.linger = 2  # the receive ends with EOF
            conn.shut_pending += 1
            ring.submit_shutdown(conn.fd, socket.SHUT_RDWR, conn.shut_tag)

    def _close_conn(self, conn: _Conn) -> None:
        if conn.done:
            return
        if conn.shut_pending:
            # A shutdown of this descriptor may still be staged: closing now would let the
            # next accept reuse the number and the shutdown hit the new connection.
            conn.close_wanted = True
            return
        conn.done = True
        self.conns.pop(conn.fd, None)
        os.close(conn.fd)

    def _on_tick(self, ring: Any, tick: int, idle_ticks: int) -> None:
        self._tick = tick
        for conn in list(self.conns.values()):
            if conn.linger == 1:
                if tick - conn.linger_tick >= 2:
                    self._finish(ring, conn, linger=False)
            elif tick - conn.tick >= idle_ticks and not conn.closing and conn.sending is None:
                self.counters["idle_closed"] += 1
                conn.closing = True
                self._finish(ring, conn, linger=False)

    def _teardown(self, ring: Any) -> None:
        self._stop = True
        try:
            ring.close()  # cancels the accept, the receives and the sends, and reaps them
        finally:
            self._ring = None
            for conn in list(self.conns.values()):
                conn.shut_pending = 0  # the ring is closed: nothing of it is in flight
                self._close_conn(conn)
            self.close()
            self._finished.set()


def _nodelay(fd: int) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP
    finally:
        s.detach()


# --------------------------------------------------------------------------- CLI


def add_arguments(p: Any) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--backend", choices=("auto", "uring", "sim"), default="auto",
                   help="ringio backend, passed to ringio.Ring (default auto)")
    p.add_argument("--app", default=None, metavar="MODULE:ATTR",
                   help="serve this ringio.serve.App (or a function returning one) instead of "
                        "the Fibonacci service")
    p.add_argument("--idle-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="close connections idle this long (default 30)")
    p.add_argument("--max-header-bytes", type=int, default=16384, metavar="N",
                   help="request line + headers limit (default 16384; 431 above)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, metavar="N",
                   help="request body limit (default 1 MiB; 413 above)")


def _load_app(spec: str) -> App:
    import importlib

    mod_name, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(mod_name), attr or "app")
    if not isinstance(obj, App) and callable(obj):
        obj = obj()
    if not isinstance(obj, App):
        raise SystemExit(f"--app {spec}: not a ringio.serve.App")
    return obj


def main(args: Any) -> int:
    """``python -m ringio serve``: serve until SIGINT or SIGTERM, then exit 0."""
    import signal

    app = _load_app(args.app) if args.app else fibonacci_app()
    try:
        server = Server(app, args.host, args.port, backend=args.backend,
                        idle_timeout=args.idle_timeout, max_header_bytes=args.max_header_bytes,
                        max_body_bytes=args.max_body_bytes)
    except OSError as e:
        sys.stderr.write(f"ringio serve: cannot listen on {args.host}:{args.port}: {e}\n")
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.shutdown())
    host, port = server.address
    sys.stderr.write(f"ringio serve: listening on {server.url} (backend {args.backend}); "
                     "Ctrl-C to stop\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except OSError as e:
        sys.stderr.write(f"ringio serve: cannot create a ring: {e}\n")
        return 1
    sys.stderr.write("ringio serve: stopped\n")
    return 0
