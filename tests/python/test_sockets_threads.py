"""Socket operations with the serving machinery: serve_completions() workers
with a callback, submitters on other threads (reaching the kernel at once,
batch or not, while a thread waits), break_wait, stop/reset, an exception in
a callback."""

from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def _start_workers(ring, n=2):
    threads = [threading.Thread(target=ring.serve_completions, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while not ring.running and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ring.running
    time.sleep(0.05)  # let one of them block in the kernel
    return threads


def _stop_workers(ring, threads):
    ring.stop_serving()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert not ring.running
    ring.reset_serving()


def test_two_workers_serve_an_echo_server(ring):
    """Accept, receive, echo and close are all driven from the callback, on
    whichever of the two workers got the completion; clients check every byte."""
    n_clients = 16
    lock = threading.Lock()
    state = {"accepted": 0, "closed": 0, "errors": [], "threads": set()}

    def handle(c):
        tag = c.user_data[0]
        if tag == "accept":
            assert c.res >= 0 and c.more, c
            with lock:
                state["accepted"] += 1
            submit_recv(c.result)
        elif tag == "recv":
            _, fd, _ = c.user_data
            buf = recv_buffers.pop(id(c))
            if c.res > 0:
                data = bytes(buf[: c.res])
                ring.submit_send(fd, data, ("send", fd, len(data)))
                submit_recv(fd)
            else:
                assert c.res == 0, c
                ring.submit_close(fd, ("close", fd))
        elif tag == "send":
            assert c.res == c.user_data[2], c
        elif tag == "close":
            assert c.res == 0, c
            with lock:
                state["closed"] += 1

    recv_buffers: dict[int, bytearray] = {}

    def submit_recv(fd):
        buf = bytearray(4096)
        op = ring.submit_recv(fd, buf, ("recv", fd, None))
        recv_buffers[id(op)] = buf  # the Completion is the same object when it comes back

    def callback(c):
        try:
            with lock:
                state["threads"].add(threading.get_ident())
            handle(c)
        except Exception as e:  # noqa: BLE001 - collected and asserted by the test
            state["errors"].append(repr(e))

    ring.callback = callback
    with socket.create_server(("127.0.0.1", 0), backlog=n_clients) as listener:
        threads = _start_workers(ring, 2)
        try:
            ring.submit_accept_multishot(listener, ("accept",))
            clients = [socket.create_connection(listener.getsockname(), timeout=10)
                       for _ in range(n_clients)]
            try:
                for rnd in range(3):
                    for i, c in enumerate(clients):
                        msg = f"[{rnd}:{i}]".encode() * (i + 1)
                        c.sendall(msg)
                        got = b""
                        while len(got) < len(msg):
                            chunk = c.recv(65536)
                            assert chunk
                            got += chunk
                        assert got == msg
                for c in clients:
                    c.shutdown(socket.SHUT_WR)
                    assert c.recv(1) == b""  # the server closed its side
            finally:
                for c in clients:
                    c.close()
            deadline = time.monotonic() + 10
            while state["closed"] < n_clients and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            _stop_workers(ring, threads)
    assert state["errors"] == []
    assert state["accepted"] == n_clients and state["closed"] == n_clients


def test_submission_reaches_the_kernel_while_workers_wait_even_in_a_batch(ring, pair):
    """A worker blocks in the kernel; the main thread opens a batch and
    submits a send.  With a waiter present the core enters at once, so the
    peer receives the data before the batch block ends."""
    a, b = pair
    got: queue.Queue = queue.Queue()
    ring.callback = got.put
    threads = _start_workers(ring, 2)
    try:
        b.settimeout(5)
        with ring.batch():
            op = ring.submit_send(a, b"prompt", "in-batch")
            t0 = time.monotonic()
            assert b.recv(16) == b"prompt"  # inside the block: already in the kernel
            assert time.monotonic() - t0 < 2
            assert ring.staged == 0
        assert got.get(timeout=5) is op and op.res == 6
        # And from a thread of its own, outside any batch.  The submitting
        # thread stays alive until the operation completes: Linux cancels
        # the pending io_uring requests of a thread that exits (-ECANCELED).
        buf = bytearray(8)
        holder = {}
        finished = threading.Event()

        def submitter():
            holder["op"] = ring.submit_recv(a, buf, "r")
            finished.wait(10)

        t = threading.Thread(target=submitter)
        t.start()
        while "op" not in holder:
            time.sleep(0.001)
        b.send(b"reply")
        c = got.get(timeout=5)
        finished.set()
        t.join()
        assert c is holder["op"] and c.res == 5 and buf[:5] == b"reply"
    finally:
        _stop_workers(ring, threads)


def test_wait_in_one_thread_submit_from_another(ring, pair):
    a, b = pair
    buf = bytearray(8)
    op = ring.submit_recv(a, buf)

    def later():
        time.sleep(0.05)
        ring.submit_send(b, b"late")

    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    seen = []
    while not op.done:
        c = ring.wait(5)
        assert c is not None
        seen.append(c)
    t.join()
    assert time.monotonic() - t0 < 2
    assert op.res == 4 and buf[:4] == b"late"
    for c in seen:
        assert c.res == 4  # the send's completion and the receive's
    while ring.inflight:
        ring.wait(0.1)


def test_break_wait_with_socket_operations_pending(ring, pair):
    a, _ = pair
    op = ring.submit_recv(a, bytearray(8))
    threading.Timer(0.05, ring.break_wait).start()
    t0 = time.monotonic()
    assert ring.wait(5) is None
    assert time.monotonic() - t0 < 2
    assert not op.done
    ring.submit_cancel(op)
    while not op.done:
        ring.wait(5)


def test_callback_exception_stops_the_group_cleanly(ring, pair, monkeypatch):
    a, b = pair
    reported = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)

    def callback(c):
        raise RuntimeError(f"boom on {c.user_data}")

    ring.callback = callback
    threads = _start_workers(ring, 2)
    ring.submit_recv(a, bytearray(8), "first")
    b.send(b"x")
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert not ring.running
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, RuntimeError)
    assert "boom on first" in str(reported[0].exc_value)
    ring.reset_serving()


def test_stop_and_reset_serving_keeps_pending_socket_operations(ring, pair):
    a, b = pair
    got: queue.Queue = queue.Queue()
    ring.callback = got.put
    threads = _start_workers(ring, 2)
    buf = bytearray(8)
    op = ring.submit_recv(a, buf, "pending")
    _stop_workers(ring, threads)
    b.send(b"after")
    time.sleep(0.02)
    assert got.empty()
    threads = _start_workers(ring, 1)
    try:
        assert got.get(timeout=5) is op
        assert op.res == 5 and buf[:5] == b"after"
    finally:
        _stop_workers(ring, threads)
