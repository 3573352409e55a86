"""ringio.serve: the HTTP/1.1 server on one ring, driven by real HTTP clients.

Every server test runs on each backend, through the same code path: "uring"
(skipped when io_uring is unavailable here, and on the RINGIO_BACKEND=sim
conformance run, which has just run it) and "sim".  No timing assertion
anywhere: waits have generous timeouts only so that a hang fails.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SIM_RUN, URING_AVAILABLE, URING_REASON
from ringio.serve import App, HTTPError, Request, Response, Server, _BadRequest, _parse_head, fibonacci

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


@pytest.fixture(params=["uring", "sim"])
def backend(request) -> str:
    if request.param == "uring" and not URING_AVAILABLE:
        pytest.skip(f"io_uring unavailable: {URING_REASON}")
    if request.param == "uring" and SIM_RUN:
        pytest.skip("the io_uring run covers backend='uring'")
    return request.param


@pytest.fixture
def server(backend):
    with Server(port=0, backend=backend) as srv:
        srv.start()
        yield srv


def _http(server: Server, method: str, path: str, body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection(*server.address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def _raw(server: Server) -> socket.socket:
    s = socket.create_connection(server.address, timeout=30)
    return s


def _read_response(f) -> tuple[int, dict, bytes]:
    """One response from a file object of a raw socket (Content-Length bodies only)."""
    status_line = f.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = f.readline()
        assert line, "EOF inside the headers"
        if line == b"\r\n":
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers["content-length"]))
    return status, headers, body


# --------------------------------------------------------------------------- the service


@pytest.mark.parametrize("n, answer", [(15, b"610"), (17, b"1597"), (0, b"0"), (1, b"1"), (20, b"6765")])
def test_fibonacci_answers(server, n, answer):
    status, body, headers = _http(server, "POST", f"/{n}")
    assert status == 200
    assert body == answer + b"\n"
    assert headers["content-type"].startswith("text/plain")


def test_index_and_health(server):
    status, body, _ = _http(server, "GET", "/")
    assert status == 200 and b"Fibonacci" in body
    assert _http(server, "GET", "/health")[:2] == (200, b"ok\n")
    status, body, headers = _http(server, "HEAD", "/health")
    assert status == 200 and body == b"" and headers["content-length"] == "3"


def test_fibonacci_limits_and_unknown_routes(server):
    assert _http(server, "POST", "/10001")[0] == 400
    assert _http(server, "POST", "/-3")[0] == 400
    assert _http(server, "POST", "/abc")[0] == 404
    assert _http(server, "GET", "/15")[0] == 405  # the path exists for POST only
    assert _http(server, "GET", "/nope")[0] == 404
    assert fibonacci(10_000) > 10 ** 2000


def test_keep_alive_reuses_one_connection(server):
    conn = http.client.HTTPConnection(*server.address, timeout=30)
    try:
        answers = []
        socks = set()
        for n in (15, 17, 15, 1, 2, 3):
            conn.request("POST", f"/{n}")
            r = conn.getresponse()
            answers.append(r.read())
            assert r.getheader("Connection") is None  # HTTP/1.1: keep-alive by default
            socks.add(id(conn.sock))
        assert answers == [b"610\n", b"1597\n", b"610\n", b"1\n", b"1\n", b"2\n"]
        assert len(socks) == 1  # http.client reconnects only when the server closed
    finally:
        conn.close()
    assert server.counters["accepted"] == 1


def test_pipelined_requests_in_one_send(server):
    with _raw(server) as s:
        s.sendall(b"POST /15 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /17 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"POST /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        f = s.makefile("rb")
        got = [_read_response(f) for _ in range(4)]
        assert [(st, b) for st, _, b in got] == [(200, b"610\n"), (200, b"ok\n"), (200, b"1597\n"),
                                               (200, b"2\n")]
        assert got[3][1]["connection"] == "close"
        assert f.read() == b""  # and then the server closes
        f.close()


def _pipeline(count: int) -> tuple[bytes, list[tuple[int, bytes]]]:
    """count mixed requests as one byte string, and the (status, body) each must get."""
    rng = random.Random(count)
    wire, want = [], []
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            n = rng.randrange(40)
            wire.append(f"POST /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            want.append((200, f"{fibonacci(n)}\n".encode()))
        elif kind == 1:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            wire.append(b"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            want.append((200, b"2\n"))
        elif kind == 2:
            wire.append(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * rng.randrange(500) + b"\r\n\r\n")
            want.append((200, b"ok\n"))
        else:
            wire.append(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
            want.append((404, b"Not Found\n"))
    return b"".join(wire), want


def test_pipelined_stream_split_at_random_points(backend):
    data, want = _pipeline(300)
    rng = random.Random(7)
    # Tiny provided buffers: receives end with -ENOBUFS and are re-armed along the way.
    with Server(port=0, backend=backend, recv_buffer_size=64, recv_buffer_count=2) as srv:
        srv.start()
        with _raw(srv) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            got = []

            def reader():
                for _ in want:
                    st, _, body = _read_response(f)
                    got.append((st, body))

            t = threading.Thread(target=reader)
            t.start()
            pos = 0
            while pos < len(data):
                step = rng.choice((1, 2, 3, 17, 100, 1000, 5000))
                s.sendall(data[pos:pos + step])
                pos += step
            t.join(60)
            f.close()
        assert got == want
        assert srv.counters["accepted"] == 1
        print("receives re-armed:", srv.counters["recv_rearms"])  # usually many; timing decides


def test_request_split_into_single_bytes(server):
    request = b"POST /17 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    with _raw(server) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            s.sendall(request[i:i + 1])
        f = s.makefile("rb")
        assert _read_response(f)[::2] == (200, b"1597\n")
        f.close()


def test_expect_100_continue(server):
    with _raw(server) as s:
        s.sendall(b"POST /17 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        f = s.makefile("rb")
        assert f.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert f.readline() == b"\r\n"
        s.sendall(b"body")
        assert _read_response(f)[::2] == (200, b"1597\n")
        f.close()


def test_request_body_is_delivered(backend):
    app = App()
    app.add("POST", "/echo", lambda req: req.body[::-1])
    body = os.urandom(200_000)
    with Server(app, port=0, backend=backend) as srv:
        srv.start()
        status, got, headers = _http(srv, "POST", "/echo", body=body)
    assert status == 200 and got == body[::-1]
    assert headers["content-type"] == "application/octet-stream"


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    (b"POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET nohost HTTP/1.1\r\nHost: x\r\n\r\n", 400),
])
def test_malformed_request_gets_an_error_and_closes_only_its_connection(server, request_bytes, status):
    bystander = http.client.HTTPConnection(*server.address, timeout=30)
    try:
        bystander.request("POST", "/15")
        assert bystander.getresponse().read() == b"610\n"
        with _raw(server) as s:
            s.sendall(request_bytes)
            f = s.makefile("rb")
            got, headers, _ = _read_response(f)
            assert got == status
            assert headers["connection"] == "close"
            assert f.read() == b""  # this connection, and only this one, is closed
            f.close()
        bystander.request("POST", "/17")  # the same keep-alive connection still works
        assert bystander.getresponse().read() == b"1597\n"
        assert len({id(bystander.sock)}) == 1
    finally:
        bystander.close()
    assert server.counters["accepted"] == 2


def test_closing_connections_never_touch_the_next_ones(backend):
    """A closed connection's descriptor number is reused by the next accept at once: nothing
    meant for the old connection (its shutdown, say) may reach the new one.  (Refused bodies
    make the old connection's last completions arrive together; this failed about one run in
    ten before the server waited for its shutdowns before closing.)"""
    with Server(port=0, backend=backend, max_body_bytes=100) as srv:
        srv.start()
        for i in range(100):
            assert _http(srv, "POST", "/3", body=b"x" * 101)[0] == 413, i
            assert _http(srv, "POST", "/17", body=b"x" * 100)[:2] == (200, b"1597\n"), i


def test_good_requests_before_a_bad_one_are_answered(server):
    with _raw(server) as s:
        s.sendall(b"POST /15 HTTP/1.1\r\nHost: x\r\n\r\nNONSENSE\r\n\r\nPOST /17 HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert _read_response(f)[::2] == (200, b"610\n")
        assert _read_response(f)[0] == 400
        assert f.read() == b""
        f.close()


def test_header_and_body_limits(backend):
    with Server(port=0, backend=backend, max_header_bytes=1024, max_body_bytes=100) as srv:
        srv.start()
        assert _http(srv, "GET", "/", headers={"X-Big": "a" * 2000})[0] == 431
        assert _http(srv, "POST", "/3", body=b"x" * 101)[0] == 413
        assert _http(srv, "POST", "/3", body=b"x" * 100)[:2] == (200, b"2\n")
        with _raw(srv) as s:  # a header that never ends is cut off at the limit too
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 3000)
            f = s.makefile("rb")
            assert _read_response(f)[0] == 431
            assert f.read() == b""
            f.close()


def test_http10_closes_unless_keep_alive(server):
    with _raw(server) as s:
        s.sendall(b"POST /15 HTTP/1.0\r\n\r\n")
        f = s.makefile("rb")
        status, headers, body = _read_response(f)
        assert (status, body, headers["connection"]) == (200, b"610\n", "close")
        assert f.read() == b""
        f.close()
    with _raw(server) as s:
        s.sendall(b"POST /15 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        f = s.makefile("rb")
        status, headers, body = _read_response(f)
        assert headers["connection"] == "keep-alive"
        s.sendall(b"POST /17 HTTP/1.0\r\n\r\n")
        assert _read_response(f)[::2] == (200, b"1597\n")
        assert f.read() == b""
        f.close()


def test_client_half_close_still_gets_its_answer(server):
    with _raw(server) as s:
        s.sendall(b"POST /17 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        f = s.makefile("rb")
        assert _read_response(f)[::2] == (200, b"1597\n")
        assert f.read() == b""
        f.close()


def test_idle_connections_are_closed(backend):
    with Server(port=0, backend=backend, idle_timeout=0.2) as srv:
        srv.start()
        with _raw(srv) as idle, _raw(srv) as partial:
            partial.sendall(b"GET / HTTP/1.1\r\n")  # a request that never finishes
            assert idle.recv(100) == b""
            assert partial.recv(100) == b""
        assert srv.counters["idle_closed"] == 2


# --------------------------------------------------------------------------- handler API


def test_custom_app_return_types(backend):
    app = App()

    @app.route("GET", "/hello/{name}")
    def hello(req: Request, name: str):
        return f"hello {name}"

    @app.route("GET", "/json/{a:int}/{rest:path}")
    def as_json(req: Request, a: int, rest: str):
        return {"a": a, "rest": rest, "query": req.query}

    app.add("GET", "/teapot", lambda req: (418, "short and stout"))
    app.add("GET", "/none", lambda req: None)
    app.add("GET", "/custom", lambda req: Response(b"<p>", 201, content_type="text/html",
                                                   headers={"X-Thing": "1"}))
    app.add("GET", "/forbidden", lambda req: (_ for _ in ()).throw(HTTPError(403, "no")))
    app.add("GET", "/bug", lambda req: 1 / 0)
    with Server(app, port=0, backend=backend) as srv:
        srv.start()
        assert _http(srv, "GET", "/hello/world")[:2] == (200, b"hello world")
        status, body, _ = _http(srv, "GET", "/json/-4/x/y?z=1")
        assert status == 200 and json.loads(body) == {"a": -4, "rest": "x/y", "query": "z=1"}
        assert _http(srv, "GET", "/teapot")[:2] == (418, b"short and stout")
        assert _http(srv, "GET", "/none")[:2] == (204, b"")
        status, body, headers = _http(srv, "GET", "/custom")
        assert (status, body, headers["content-type"], headers["x-thing"]) == (201, b"<p>", "text/html", "1")
        assert _http(srv, "GET", "/forbidden")[:2] == (403, b"no\n")
        conn = http.client.HTTPConnection(*srv.address, timeout=30)
        try:
            conn.request("GET", "/bug")
            r = conn.getresponse()
            assert (r.status, r.read()) == (500, b"internal server error\n")  # the connection goes on
            conn.request("GET", "/hello/again")
            assert conn.getresponse().read() == b"hello again"
        finally:
            conn.close()


def test_route_patterns_need_a_leading_slash():
    with pytest.raises(ValueError):
        App().add("GET", "nope", lambda req: "")


def test_parse_head_directly():
    req = _parse_head(b"POST /a?b=c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 7", 100)
    assert (req.method, req.path, req.query, req.keep_alive, req.content_length) == ("POST", "/a", "b=c", True, 7)
    assert req.headers["x-a"] == "1, 2"
    with pytest.raises(_BadRequest) as e:
        _parse_head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101", 100)
    assert e.value.status == 413
    with pytest.raises(_BadRequest):
        _parse_head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \u00b2".encode("latin-1"), 100)  # not ASCII


def test_repeated_heads_give_independent_requests(backend, monkeypatch):
    """Heads are parsed once and reused (keep-alive clients repeat them): each request
    still gets its own headers, a body over the limit is refused on a reused head too,
    and the cache stays bounded."""
    import ringio.serve as serve_mod

    monkeypatch.setattr(serve_mod, "_HEAD_CACHE_ENTRIES", 4)
    seen = []
    app = App()

    @app.route("POST", "/echo")
    def echo(req):
        seen.append(dict(req.headers))
        req.headers["x-mutated"] = "yes"  # must not leak into the next request with this head
        return req.body

    with Server(app, port=0, backend=backend, max_body_bytes=8) as srv:
        srv.start()
        with _raw(srv) as s, s.makefile("rb") as f:
            head = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
            s.sendall(head + b"abc" + head + b"xyz")
            assert _read_response(f)[::2] == (200, b"abc")
            assert _read_response(f)[::2] == (200, b"xyz")
            for i in range(10):  # more distinct heads than the cache holds
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nX-N: %d\r\nContent-Length: 1\r\n\r\n!" % i)
                assert _read_response(f)[::2] == (200, b"!")
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n")
            assert _read_response(f)[0] == 413
        assert len(srv._heads) <= 4
        srv.stop()
    assert seen[0] == seen[1] == {"host": "h", "content-length": "3"}
    assert [h["x-n"] for h in seen[2:]] == [str(i) for i in range(10)]
    assert all("x-mutated" not in h for h in seen)


# --------------------------------------------------------------------------- load and shutdown


def test_200_concurrent_clients(server):
    n = 200
    barrier = threading.Barrier(n, timeout=60)

    def client(i: int) -> list[bytes]:
        conn = http.client.HTTPConnection(*server.address, timeout=60)
        try:
            conn.connect()
            barrier.wait()  # every client is connected before any of them asks
            out = []
            for k in (i % 30, 15, 17):
                conn.request("POST", f"/{k}")
                out.append(conn.getresponse().read())
            return out
        finally:
            conn.close()

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(client, range(n)))
    for i, got in enumerate(results):
        assert got == [f"{fibonacci(i % 30)}\n".encode(), b"610\n", b"1597\n"], i
    assert server.counters["accepted"] == n


def test_stop_with_connections_open(backend):
    srv = Server(port=0, backend=backend)
    srv.start()
    clients = [http.client.HTTPConnection(*srv.address, timeout=30) for _ in range(5)]
    try:
        for c in clients:
            c.request("POST", "/15")
            assert c.getresponse().read() == b"610\n"
        half = _raw(srv)
        half.sendall(b"POST /15 HTTP/1.1\r\n")  # mid-request
        srv.stop()
        assert not srv._thread.is_alive()
        for c in clients:
            assert c.sock.recv(10) == b""  # the server closed it
        assert half.recv(10) == b""
        half.close()
    finally:
        for c in clients:
            c.close()


def _start_cli(backend: str, env: dict, *extra: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([sys.executable, "-m", "ringio", "serve", "--port", "0", "--backend", backend, *extra],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    sel = selectors.DefaultSelector()
    sel.register(p.stderr, selectors.EVENT_READ)
    assert sel.select(30), "the server did not start within 30 s"
    line = p.stderr.readline().decode()
    sel.close()
    assert "listening on http://127.0.0.1:" in line, line + p.stderr.read().decode()
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    return p, port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_signal_shuts_down_with_connections_open(backend, subprocess_env, sig):
    p, port = _start_cli(backend, subprocess_env)
    clients = []
    try:
        for _ in range(10):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/17")
            assert c.getresponse().read() == b"1597\n"
            clients.append(c)  # left open: keep-alive
        p.send_signal(sig)
        assert p.wait(timeout=20) == 0
        err = p.stderr.read().decode()
        assert "stopped" in err and "Traceback" not in err, err
        for c in clients:
            assert c.sock.recv(10) == b""
    finally:
        for c in clients:
            c.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_cli_reports_a_busy_port(subprocess_env, uring):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "ringio", "serve", "--port", str(port)],
                           capture_output=True, text=True, timeout=30, env=subprocess_env)
    assert p.returncode == 1
    assert "cannot listen" in p.stderr


def test_cli_serves_a_user_app(backend, subprocess_env, tmp_path):
    (tmp_path / "my_service.py").write_text(
        "from ringio.serve import App\n"
        "app = App()\n"
        "app.add('GET', '/square/{n:int}', lambda req, n: {'square': n * n})\n")
    env = dict(subprocess_env, PYTHONPATH=os.pathsep.join([str(tmp_path), subprocess_env["PYTHONPATH"]]))
    p, port = _start_cli(backend, env, "--app", "my_service:app")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/square/12")
        r = conn.getresponse()
        assert (r.status, json.loads(r.read())) == (200, {"square": 144})
        conn.request("POST", "/15")  # not the Fibonacci service
        r = conn.getresponse()
        assert r.status == 404
        r.read()
        conn.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
