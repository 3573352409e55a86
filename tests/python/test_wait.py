"""wait(), wait_many(), break_wait(), signals."""

from __future__ import annotations

import signal
import threading
import time

import pytest


def test_wait_on_idle_ring_times_out_promptly(ring):
    t0 = time.monotonic()
    assert ring.wait(0.05) is None
    elapsed = time.monotonic() - t0
    assert 0.04 <= elapsed < 1.0  # a correctness bound, not a benchmark


def test_wait_zero_polls(ring):
    t0 = time.monotonic()
    assert ring.wait(0) is None
    assert time.monotonic() - t0 < 1.0
    op = ring.submit_nop()
    assert ring.wait(0) is op


def test_break_wait_wakes_a_blocked_waiter(ring):
    result = {}
    started = threading.Event()

    def waiter():
        started.set()
        result["value"] = ring.wait(None)

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(5)
    time.sleep(0.1)  # let it block in the kernel
    ring.break_wait()
    t.join(5)
    assert not t.is_alive()
    assert result == {"value": None}
    # The ring is fine afterwards.
    op = ring.submit_nop()
    assert ring.wait(5) is op


def test_break_wait_before_wait_makes_next_wait_return_none(ring):
    ring.break_wait()
    t0 = time.monotonic()
    assert ring.wait(10) is None
    assert time.monotonic() - t0 < 1.0


def test_submission_from_another_thread_reaches_a_blocked_waiter(ring):
    got = {}

    def waiter():
        got["c"] = ring.wait(10)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    with ring.batch():  # even staged, it must reach the kernel: a thread is waiting
        op = ring.submit_nop("late")
        time.sleep(0.2)
    t.join(10)
    assert got["c"] is op


def test_concurrent_waiters_each_get_one(ring):
    results = []
    lock = threading.Lock()

    def waiter():
        c = ring.wait(10)
        with lock:
            results.append(c)

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    ops = [ring.submit_nop(i) for i in range(4)]
    for t in threads:
        t.join(10)
    assert sorted(c.user_data for c in results) == [0, 1, 2, 3]
    assert {id(c) for c in results} == {id(o) for o in ops}


def test_wait_many(ring, collect):
    ops = [ring.submit_nop(i) for i in range(10)]
    first = ring.wait_many(max=64, timeout=5)
    assert 1 <= len(first) <= 10
    rest = collect(ring, 10 - len(first))
    got = first + rest
    assert sorted(c.user_data for c in got) == list(range(10))
    assert {id(c) for c in got} == {id(o) for o in ops}
    assert ring.wait_many(timeout=0.05) == []


def test_wait_many_respects_max(ring, collect):
    for i in range(10):
        ring.submit_nop(i)
    time.sleep(0.05)
    part = ring.wait_many(max=3, timeout=5)
    assert 1 <= len(part) <= 3
    collect(ring, 10 - len(part))


def test_wait_many_crosses_chunks(ring):
    n = 200
    ops = [ring.submit_nop(i) for i in range(n)]
    got = ring.wait_many(max=1000, timeout=5)
    assert len(got) > 64  # more than one internal chunk in one call
    while len(got) < n:
        more = ring.wait_many(max=1000, timeout=5)
        assert more
        got += more
    assert sorted(c.user_data for c in got) == list(range(n))
    assert {id(c) for c in got} == {id(o) for o in ops}


def test_wait_many_returns_empty_on_break(ring):
    ring.break_wait()
    t0 = time.monotonic()
    assert ring.wait_many(timeout=10) == []
    assert time.monotonic() - t0 < 1.0


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals are delivered to the main thread")
@pytest.mark.parametrize("exc", [KeyboardInterrupt, ZeroDivisionError])
def test_signal_interrupts_wait(ring, exc):
    def handler(signum, frame):
        raise exc

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        with pytest.raises(exc):
            ring.wait(None)
        assert time.monotonic() - t0 < 5.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # The interrupted wait left the ring usable.
    op = ring.submit_nop()
    assert ring.wait(5) is op


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals are delivered to the main thread")
def test_signal_with_quiet_handler_keeps_waiting(ring):
    hits = []
    old = signal.signal(signal.SIGALRM, lambda s, f: hits.append(s))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        assert ring.wait(0.3) is None  # the handler ran, the wait went on
        elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert hits
    assert 0.25 <= elapsed < 2.0
