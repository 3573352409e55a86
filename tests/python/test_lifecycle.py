"""Ring lifecycle: creation, properties, context manager, close, closed-ring errors."""

from __future__ import annotations

import errno
import gc
import os
import select
import socket
import weakref

import pytest
import ringio
from conftest import BACKEND


def test_context_manager_and_properties(uring):
    with ringio.Ring(entries=8) as ring:
        assert isinstance(ring, ringio.Ring)
        assert not ring.closed
        assert ring.fd >= 0
        os.fstat(ring.fd)  # a real descriptor
        assert ring.sq_entries >= 8
        assert ring.cq_entries >= ring.sq_entries
        assert isinstance(ring.features, int)
        assert ring.features & ringio.IORING_FEAT_SINGLE_MMAP
        assert ring.backend == BACKEND
        assert ring.running is False
        assert ring.callback is None
        assert ring.inflight == 0
        assert ring.staged == 0
        assert BACKEND in repr(ring)
    assert ring.closed
    assert "closed" in repr(ring)


def test_cq_entries_and_rounding(uring):
    with ringio.Ring(entries=3, cq_entries=64) as ring:
        assert ring.sq_entries == 4  # rounded up to a power of two
        assert ring.cq_entries == 64
        assert ring.setup_flags & ringio.IORING_SETUP_CQSIZE


def test_clamp_allows_large_entries(uring):
    try:
        ring = ringio.Ring(entries=100000, flags=ringio.IORING_SETUP_CLAMP)
    except OSError as e:
        if e.errno != errno.ENOMEM:
            raise
        pytest.skip(f"a {ringio.IORING_MAX_ENTRIES}-entry ring exceeds the memory limits: {e}")
    with ring:
        assert ring.sq_entries == ringio.IORING_MAX_ENTRIES


def test_close_is_idempotent(uring):
    ring = ringio.Ring()
    ring.close()
    ring.close()
    assert ring.closed
    assert ring.__exit__(None, None, None) is False  # closes again, quietly
    assert ring.closed


def test_enter_closed_ring_raises(uring):
    ring = ringio.Ring()
    ring.close()
    with pytest.raises(ringio.RingClosed), ring:
        pass


def test_ring_is_weakrefable_and_collected(uring):
    ring = ringio.Ring()
    ref = weakref.ref(ring)
    with pytest.warns(ResourceWarning, match="unclosed"):
        del ring  # no cycle: finalized at once
    assert ref() is None


def test_ring_cycle_with_callback_is_collected(uring):
    class Holder:
        def on_completion(self, completion):
            pass

    h = Holder()
    h.ring = ringio.Ring()
    h.ring.callback = h.on_completion  # ring -> bound method -> h -> ring
    ref = weakref.ref(h.ring)
    del h
    with pytest.warns(ResourceWarning):
        gc.collect()
    assert ref() is None


def test_dropped_ring_releases_inflight_operations(uring):
    class Token:
        pass

    ring = ringio.Ring()
    tokens = [Token() for _ in range(10)]
    refs = [weakref.ref(t) for t in tokens]
    ops = [ring.submit_timeout(30, t) for t in tokens]
    del tokens
    ring_ref = weakref.ref(ring)
    with pytest.warns(ResourceWarning):
        del ring  # the finalizer closes the ring, releasing every operation
    assert ring_ref() is None
    assert all(r() is not None for r in refs)  # still held by the Completions
    assert all(not op.done for op in ops)
    del ops
    gc.collect()
    assert all(r() is None for r in refs)


def test_ring_closed_is_runtime_error():
    assert issubclass(ringio.RingClosed, RuntimeError)
    assert issubclass(ringio.SubmissionQueueFull, RuntimeError)


def _closed_ring_calls():
    a, b = socket.socketpair()
    a.close()
    b.close()
    return {
        "submit_nop": lambda r, c: r.submit_nop(),
        "submit_timeout": lambda r, c: r.submit_timeout(1.0),
        "submit_cancel": lambda r, c: r.submit_cancel(c),
        "submit_poll": lambda r, c: r.submit_poll(0, select.POLLIN),
        "wait": lambda r, c: r.wait(0),
        "wait_many": lambda r, c: r.wait_many(),
        "break_wait": lambda r, c: r.break_wait(),
        "submit": lambda r, c: r.submit(),
        "batch": lambda r, c: r.batch(),
        "serve_completions": lambda r, c: r.serve_completions(),
        "stop_serving": lambda r, c: r.stop_serving(),
        "reset_serving": lambda r, c: r.reset_serving(),
        "stats": lambda r, c: r.stats(),
        "__enter__": lambda r, c: r.__enter__(),
        "fd": lambda r, c: r.fd,
        "features": lambda r, c: r.features,
        "sq_entries": lambda r, c: r.sq_entries,
        "cq_entries": lambda r, c: r.cq_entries,
        "setup_flags": lambda r, c: r.setup_flags,
    }


@pytest.mark.parametrize("name,call", sorted(_closed_ring_calls().items()))
def test_closed_ring_raises_ring_closed(uring, name, call):
    ring = ringio.Ring()
    ring.callback = lambda c: None
    pending = ring.submit_timeout(30)
    ring.close()
    with pytest.raises(ringio.RingClosed, match="closed"):
        call(ring, pending)


def test_closed_ring_still_answers_state_queries(uring):
    ring = ringio.Ring()
    ring.close()
    assert ring.closed is True
    assert ring.inflight == 0
    assert ring.staged == 0
    assert ring.running is False
    assert ring.backend == BACKEND
    ring.callback = None
    assert ring.callback is None


@pytest.mark.kernel
def test_backend_selection(uring, monkeypatch):
    monkeypatch.delenv("RINGIO_BACKEND", raising=False)
    with ringio.Ring(backend="uring") as r:
        assert r.backend == "uring"
    with ringio.Ring(backend="auto") as r:
        assert r.backend == "uring"
    monkeypatch.setenv("RINGIO_BACKEND", "uring")
    with ringio.Ring() as r:
        assert r.backend == "uring"


def test_backend_env_override_is_validated(monkeypatch):
    monkeypatch.setenv("RINGIO_BACKEND", "bogus")
    with pytest.raises(ValueError, match="RINGIO_BACKEND"):
        ringio.Ring()
    monkeypatch.setenv("RINGIO_BACKEND", "sim")
    with ringio.Ring() as r:
        assert r.backend == "sim"
    with ringio.Ring(backend="auto") as r:
        assert r.backend == "sim"
    monkeypatch.setenv("RINGIO_BACKEND", "uring")
    # An explicit backend wins over the environment.
    with ringio.Ring(backend="sim") as r:
        assert r.backend == "sim"


def test_setup_error_is_oserror_with_errno(uring):
    # Bit 31 is no IORING_SETUP_* flag: the kernel (and the sim) refuse with EINVAL.
    with pytest.raises(OSError) as info:
        ringio.Ring(flags=1 << 31)
    assert info.value.errno == errno.EINVAL
    assert "IORING_SETUP" in str(info.value)


def test_subclass_can_call_super_init(uring):
    class MyRing(ringio.Ring):
        def __init__(self, entries=8, **kwargs):
            super().__init__(entries, **kwargs)
            self.extra = "x"

    with MyRing(4, cq_entries=16) as r:
        assert r.sq_entries == 4 and r.cq_entries == 16 and r.extra == "x"
        op = r.submit_nop()
        assert r.wait(5) is op
