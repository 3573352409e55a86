"""serve_completions() workers, callback, stop_serving()/reset_serving()."""

from __future__ import annotations

import sys
import threading
import time

import pytest


def _start_workers(ring, n):
    threads = [threading.Thread(target=ring.serve_completions, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def _join(threads, timeout=10.0):
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)


def _wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_two_workers_serve_every_completion(ring):
    n = 200
    got = []
    lock = threading.Lock()
    done = threading.Event()

    def callback(c):
        with lock:
            got.append((c.user_data, threading.get_ident()))
            if len(got) == n:
                done.set()

    ring.callback = callback
    threads = _start_workers(ring, 2)
    assert _wait_until(lambda: ring.running)
    for i in range(n):
        ring.submit_nop(i)
    assert done.wait(10)
    assert ring.running
    # The receive side belongs to the workers now.
    with pytest.raises(RuntimeError):
        ring.wait(0)
    with pytest.raises(RuntimeError):
        ring.wait_many(timeout=0)
    with pytest.raises(RuntimeError):
        ring.close()
    ring.stop_serving()
    _join(threads)
    assert not ring.running
    assert sorted(u for u, _ in got) == list(range(n))

    # Stopped: serving returns at once until reset_serving().
    ring.serve_completions()
    ring.reset_serving()

    # A stale stop wake never turns into a spurious None for a plain waiter.
    op = ring.submit_nop("plain")
    assert ring.wait(5) is op

    # A fresh worker group.
    seen = threading.Event()
    ring.callback = lambda c: seen.set() if c.user_data == "second" else None
    threads = _start_workers(ring, 1)
    ring.submit_nop("second")
    assert seen.wait(10)
    ring.stop_serving()
    _join(threads)


def test_stop_serving_wakes_idle_workers(ring):
    ring.callback = lambda c: None
    threads = _start_workers(ring, 3)
    assert _wait_until(lambda: ring.running)
    time.sleep(0.1)  # all blocked (one in the kernel, two on the wait lock)
    t0 = time.monotonic()
    ring.stop_serving()
    _join(threads, 5)
    assert time.monotonic() - t0 < 5
    assert not ring.running


def test_callback_exception_stops_the_group(ring):
    reports = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = reports.append
    try:
        def callback(c):
            raise ValueError(f"boom {c.user_data}")

        ring.callback = callback
        threads = _start_workers(ring, 2)
        assert _wait_until(lambda: ring.running)
        ring.submit_nop("x")
        _join(threads)
    finally:
        sys.unraisablehook = old_hook
    assert len(reports) == 1
    assert isinstance(reports[0].exc_value, ValueError)
    assert "boom x" in str(reports[0].exc_value)
    assert not ring.running
    ring.reset_serving()
    op = ring.submit_nop()
    assert ring.wait(5) is op


def test_serve_requires_a_callback(ring):
    with pytest.raises(RuntimeError, match="callback"):
        ring.serve_completions()


def test_callback_property(ring):
    def cb(c):
        pass

    ring.callback = cb
    assert ring.callback is cb
    ring.callback = None
    assert ring.callback is None
    with pytest.raises(TypeError):
        ring.callback = 42
    del ring.callback
    assert ring.callback is None


def test_multishot_legs_reach_workers(ring):
    import select
    import socket

    a, b = socket.socketpair()
    try:
        legs = []
        got3 = threading.Event()

        def callback(c):
            legs.append(c)
            if len(legs) == 3:
                got3.set()

        ring.callback = callback
        threads = _start_workers(ring, 2)
        handle = ring.submit_poll(a, select.POLLIN, "p", multishot=True)
        for _ in range(3):
            b.send(b"x")
            time.sleep(0.05)
            a.recv(16)
        assert got3.wait(10)
        ring.stop_serving()
        _join(threads)
        assert sorted(leg.sequence for leg in legs[:3]) == [0, 1, 2]
        assert all(leg is not handle for leg in legs)
        ring.reset_serving()
        ring.submit_cancel(handle)
    finally:
        a.close()
        b.close()
