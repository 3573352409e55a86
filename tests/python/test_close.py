"""close() with operations in flight and with waiters."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import ringio


class Token:
    pass


def test_close_with_100_timeouts_releases_everything(uring):
    ring = ringio.Ring()
    tokens = [Token() for _ in range(100)]
    token_refs = [weakref.ref(t) for t in tokens]
    ops = [ring.submit_timeout(30, t) for t in tokens]
    op_refs = [weakref.ref(o) for o in ops]
    del tokens
    assert ring.inflight == 100

    t0 = time.monotonic()
    ring.close()
    assert time.monotonic() - t0 < 2.0  # cancelled, not waited for
    assert ring.closed and ring.inflight == 0

    # The Completions keep their user_data (the user holds them) ...
    assert all(r() is not None for r in token_refs)
    assert all(not o.done for o in ops)  # never completed
    # ... but the ring holds nothing any more.
    del ops
    gc.collect()
    assert all(r() is None for r in op_refs)
    assert all(r() is None for r in token_refs)


def test_close_wakes_a_blocked_waiter(uring, pair):
    ring = ringio.Ring()
    # A receive nobody will ever satisfy (a timeout would do on io_uring, but the
    # simulated kernel's virtual clock would fire it at once).
    ring.submit_recv(pair[0].fileno(), bytearray(16))
    out = {}

    def waiter():
        try:
            out["value"] = ring.wait(None)
        except ringio.RingClosed as e:
            out["value"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    ring.close()
    t.join(5)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 3.0
    assert out["value"] is None or isinstance(out["value"], ringio.RingClosed)


def test_concurrent_close_calls(uring):
    ring = ringio.Ring()
    for _ in range(10):
        ring.submit_timeout(30)
    errors = []

    def closer():
        try:
            ring.close()
        except (RuntimeError, OSError) as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=closer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert ring.closed


def test_submit_after_close_raises_and_leaks_nothing(uring):
    ring = ringio.Ring()
    ring.close()
    tok = Token()
    ref = weakref.ref(tok)
    with pytest.raises(ringio.RingClosed):
        ring.submit_nop(tok)
    del tok
    gc.collect()
    assert ref() is None


def test_completion_released_after_normal_completion(ring):
    tok = Token()
    ref = weakref.ref(tok)
    op = ring.submit_nop(tok)
    del tok
    assert ring.wait(5) is op
    op_ref = weakref.ref(op)
    del op
    gc.collect()
    assert op_ref() is None
    assert ref() is None


def test_finalizers_calling_back_into_the_ring_during_close(uring):
    """Releasing an operation may run arbitrary Python code (here a __del__ that
    uses the ring being closed): it must neither deadlock nor crash."""
    ring = ringio.Ring()
    outcomes = []

    class Reentrant:
        def __del__(self):
            for call in (ring.submit_nop, ring.break_wait, ring.wait, ring.close):
                try:
                    call()
                    outcomes.append((call.__name__, "ok"))
                except ringio.RingClosed:
                    outcomes.append((call.__name__, "closed"))

    for _ in range(3):
        ring.submit_timeout(30, Reentrant())  # handles dropped: the ring holds the last refs
    gc.collect()
    ring.close()
    gc.collect()
    assert ring.closed
    assert outcomes.count(("submit_nop", "closed")) == 3
    assert outcomes.count(("break_wait", "closed")) == 3
    assert outcomes.count(("wait", "closed")) == 3
    assert outcomes.count(("close", "ok")) == 3

