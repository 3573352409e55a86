"""Ring.batch(), Ring.submit(), staged submissions."""

from __future__ import annotations

import pytest
import ringio


def test_batch_stages_until_exit(ring, collect):
    before = ring.stats()["submitted"]
    with ring.batch() as r:
        assert r is ring
        ops = [ring.submit_nop(i) for i in range(3)]
        assert ring.staged == 3
        assert ring.inflight == 3
        assert ring.stats()["submitted"] == before  # nothing reached the kernel
    assert ring.staged == 0
    got = collect(ring, 3)
    assert {id(c) for c in got} == {id(o) for o in ops}


def test_staged_submissions_are_not_visible_before_exit(ring):
    before = ring.stats()["submitted"]
    with ring.batch():
        op = ring.submit_nop("staged")
        assert ring.staged == 1
        assert not op.done
        assert ring.stats()["submitted"] == before
    assert ring.stats()["submitted"] == before + 1
    assert ring.wait(5) is op


def test_wait_inside_batch_submits_and_waits(ring):
    with ring.batch():
        op = ring.submit_nop("in-batch")
        assert ring.staged == 1
        assert ring.wait(5) is op  # one enter: submit + wait
        assert ring.staged == 0


def test_wait_inside_batch_submits_even_when_completions_are_ready(ring):
    first = ring.submit_nop("first")  # completes inline: the CQ is not empty
    with ring.batch():
        staged = ring.submit_nop("staged")
        assert ring.staged == 1
        assert ring.wait(5) is first  # nothing had to block, yet the staged op went in
        assert ring.staged == 0
        assert ring.wait(5) is staged


def test_explicit_submit(ring, collect):
    with ring.batch():
        ops = [ring.submit_nop(i) for i in range(2)]
        assert ring.submit() == 2
        assert ring.staged == 0
        got = collect(ring, 2)
    assert {id(c) for c in got} == {id(o) for o in ops}
    assert ring.submit() == 0


def test_nested_batches_submit_at_outermost_exit(ring, collect):
    with ring.batch():
        with ring.batch(strict=True):
            ring.submit_nop(1)
        assert ring.staged == 1  # the inner exit does not flush
        ring.submit_nop(2)
    assert ring.staged == 0
    assert sorted(c.user_data for c in collect(ring, 2)) == [1, 2]


def test_batch_exits_and_submits_on_exception(ring):
    op = None
    with pytest.raises(ZeroDivisionError), ring.batch():
        op = ring.submit_nop()
        raise ZeroDivisionError
    assert ring.staged == 0
    assert ring.wait(5) is op
    # Back to immediate submission.
    op = ring.submit_nop()
    assert ring.staged == 0
    assert ring.wait(5) is op


def test_non_strict_batch_flushes_when_full(uring, collect):
    with ringio.Ring(entries=4) as ring:
        with ring.batch():
            ops = [ring.submit_nop(i) for i in range(20)]  # 5x the SQ: flushed as needed
        got = collect(ring, 20)
        assert {id(c) for c in got} == {id(o) for o in ops}
        assert ring.stats()["sq_full_flushes"] >= 1


def test_batch_object_is_single_use_at_a_time(ring):
    b = ring.batch()
    with b, pytest.raises(RuntimeError):
        b.__enter__()
    with b:  # re-usable once exited
        pass
    with pytest.raises(RuntimeError):
        b.__exit__(None, None, None)


def test_batch_survives_ring_close_inside(uring):
    ring = ringio.Ring()
    with ring.batch():
        ring.submit_nop()
        ring.close()
    assert ring.closed


# --------------------------------------------------------------------------- system calls


def test_stats_count_io_uring_enter_calls(ring):
    enters = ring.stats()["enters"]
    op = ring.submit_nop("now")  # outside batch(): in the kernel when the call returns
    assert ring.stats()["enters"] == enters + 1
    assert ring.wait(5) is op
    assert ring.stats()["enters"] == enters + 1  # the completion was ready: no syscall


def test_a_loop_inside_one_batch_enters_once_per_hop(ring):
    """The ping-pong idiom: each wait_many() submits the hop's send and receive and
    collects both, in one io_uring_enter."""
    import socket

    a, b = socket.socketpair()
    buf = bytearray(8)
    with a, b:
        enters = ring.stats()["enters"]
        hops = 16
        with ring.batch():
            for i in range(hops):
                x, y = (a, b) if i % 2 == 0 else (b, a)
                s = ring.submit_send(x, b"%08d" % i)
                r = ring.submit_recv(y, buf)
                done = ring.wait_many(2, timeout=5)
                assert {id(c) for c in done} == {id(s), id(r)}
                assert buf == b"%08d" % i
        assert ring.stats()["enters"] - enters == hops


def test_waits_whose_staged_work_does_not_complete_back_off(ring):
    """A wait with staged work first submits it without releasing the GIL and looks
    at the CQ (work that completes inline, like a send, then costs one enter); when
    nothing is there it blocks in a second enter.  Loops whose staged work never
    completes inline must not pay that second enter every time: misses back off."""
    import select
    import socket

    a, b = socket.socketpair()
    with a, b:
        waits = 64
        enters = ring.stats()["enters"]
        with ring.batch():
            for i in range(waits):
                ring.submit_poll(b, select.POLLIN, ("poll", i))  # b stays quiet
                assert ring.wait_many(timeout=0.0005) == []
        extra = ring.stats()["enters"] - enters - waits
        assert 0 <= extra <= 8, extra  # log2(64) + 2 attempts at most; none on the sim
