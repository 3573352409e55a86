"""Round trips of the basic operations: nop, timeout, cancel, poll."""

from __future__ import annotations

import errno
import select
import time

import pytest
import ringio


def test_nop_round_trip(ring):
    token = object()
    op = ring.submit_nop(token)
    assert isinstance(op, ringio.Completion)
    assert op.done is False
    assert op.user_data is token
    assert op.kind == ringio.COMPLETION_KIND_NOP
    assert "pending" in repr(op)
    got = ring.wait(5)
    assert got is op  # the same object the submit returned
    assert op.done is True
    assert op.res == 0
    assert op.result == 0
    assert op.flags == 0
    assert op.sequence == 0
    assert op.more is False
    assert op.user_data is token
    assert "nop" in repr(op) and "res=0" in repr(op)
    assert ring.inflight == 0


def test_user_data_defaults_to_none(ring):
    op = ring.submit_nop()
    assert ring.wait(5) is op
    assert op.user_data is None
    op = ring.submit_nop(user_data=[1, 2])
    assert ring.wait(5).user_data == [1, 2]


def test_timeout_round_trip(ring):
    # On the simulated kernel time is virtual: the clock jumps to the deadline.
    clock = (lambda: ring.sim.now) if ring.sim is not None else time.monotonic
    t0 = clock()
    op = ring.submit_timeout(0.05, "tick")
    assert op.kind == ringio.COMPLETION_KIND_TIMEOUT
    got = ring.wait(5)
    elapsed = clock() - t0
    assert got is op
    assert op.res == -errno.ETIME  # a timeout's normal outcome
    assert op.result is None
    assert op.user_data == "tick"
    assert op.flags == 0 and op.sequence == 0 and op.more is False and op.done
    assert elapsed >= 0.04


def test_timeout_zero_and_integer_seconds(ring, collect):
    a = ring.submit_timeout(0)
    b = ring.submit_timeout(0.001)
    got = collect(ring, 2)
    assert {id(a), id(b)} == {id(c) for c in got}
    assert a.res == -errno.ETIME and b.res == -errno.ETIME


def test_cancel_pending_timeout(ring, collect):
    t = ring.submit_timeout(30, "t")
    c = ring.submit_cancel(t, "c")
    assert c.kind == ringio.COMPLETION_KIND_CANCEL
    got = {x.user_data: x for x in collect(ring, 2)}
    assert got["c"] is c and got["t"] is t
    assert c.res == 0 and c.result == 0
    assert t.res == -errno.ECANCELED and t.result is None
    assert ring.inflight == 0


def test_cancel_finished_operation_gives_enoent(ring):
    n = ring.submit_nop()
    assert ring.wait(5) is n
    c = ring.submit_cancel(n)
    assert ring.wait(5) is c
    assert c.res == -errno.ENOENT
    assert c.result is None


def test_cancel_all_flag(ring, collect):
    t = ring.submit_timeout(30)
    c = ring.submit_cancel(t, flags=ringio.IORING_ASYNC_CANCEL_ALL)
    collect(ring, 2)
    assert t.res == -errno.ECANCELED
    assert c.res == 1  # number of requests cancelled


def test_poll_oneshot(ring, pair):
    a, b = pair
    op = ring.submit_poll(a, select.POLLIN, "readable")  # objects with fileno() work
    assert op.kind == ringio.COMPLETION_KIND_POLL
    assert ring.wait(0.05) is None
    b.send(b"x")
    got = ring.wait(5)
    assert got is op
    assert op.result & select.POLLIN
    assert op.res == op.result
    assert op.more is False and op.sequence == 0


def test_poll_multishot_legs_are_new_objects(ring, pair, collect):
    a, b = pair
    handle = ring.submit_poll(a.fileno(), select.POLLIN, "m", multishot=True)
    legs = []
    for _ in range(3):
        b.send(b"x")
        leg = ring.wait(5)
        assert leg is not None and leg is not handle
        a.recv(16)
        legs.append(leg)
    assert [leg.sequence for leg in legs] == [0, 1, 2]
    assert all(leg.more for leg in legs)
    assert all(leg.user_data == "m" and leg.kind == ringio.COMPLETION_KIND_POLL for leg in legs)
    assert all(leg.result & select.POLLIN for leg in legs)
    assert handle.done is False and handle.more is True
    cancel = ring.submit_cancel(handle)
    got = collect(ring, 2)
    final = next(c for c in got if c is not cancel)
    assert cancel.res == 0
    assert final.more is False and final.res == -errno.ECANCELED and final.sequence == 3
    assert handle.done is True and handle.more is False and handle.res == -errno.ECANCELED
    assert ring.inflight == 0


def test_completion_constructor():
    c = ringio.Completion("ud", 5, "payload", ringio.IORING_CQE_F_MORE, 3, more=True,
                          kind=ringio.COMPLETION_KIND_POLL)
    assert (c.user_data, c.res, c.result, c.flags, c.sequence, c.more, c.kind, c.done) == (
        "ud", 5, "payload", ringio.IORING_CQE_F_MORE, 3, True, ringio.COMPLETION_KIND_POLL, True)
    d = ringio.Completion()
    assert (d.user_data, d.res, d.result, d.flags, d.sequence, d.more) == (None, 0, None, 0, 0,
                                                                            False)


def test_completion_attributes_are_read_only(ring):
    op = ring.submit_nop()
    ring.wait(5)
    for name in ("user_data", "res", "result", "flags", "sequence", "more", "done", "kind"):
        with pytest.raises(AttributeError):
            setattr(op, name, 1)


def test_completion_cycle_through_user_data_is_collected(ring):
    import gc
    import weakref

    box = {}
    op = ring.submit_nop(box)
    box["op"] = op  # op -> user_data -> op
    assert ring.wait(5) is op
    ref = weakref.ref(op)
    del op, box
    gc.collect()
    assert ref() is None
