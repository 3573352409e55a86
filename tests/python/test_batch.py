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
