"""Guards for the Completion fast paths: results derived from res on first access
(and then stable), recycled Completion memory, positional fast-path argument parsing."""

from __future__ import annotations

import errno
import gc
import socket
import weakref

import pytest
import ringio


def test_result_derived_from_res_is_stable(ring):
    op = ring.submit_timeout(0)  # completes with -ETIME: result None
    big = ring.submit_nop()
    assert ring.wait(5) is not None
    assert ring.wait(5) is not None
    assert op.res == -errno.ETIME
    assert op.result is None
    assert big.res == 0 and big.result == 0
    # The same object on every access, as when it was built at reap time.
    assert big.result is big.result
    assert "result=0" in repr(big)


def test_pending_completion_result_is_none(ring):
    with ring.batch(strict=True):
        op = ring.submit_nop()
        assert op.result is None and not op.done
        assert "pending" in repr(op)
    assert ring.wait(5) is op
    assert op.result == 0


def test_send_result_is_byte_count(ring):
    a, b = socket.socketpair()
    try:
        op = ring.submit_send(a.fileno(), b"x" * 300)
        assert ring.wait(5) is op
        assert op.res == 300
        assert op.result == 300 and op.result is op.result
        assert b.recv(1000) == b"x" * 300
    finally:
        a.close()
        b.close()


def test_recycled_completions_are_fresh(ring):
    seen = []
    for i in range(300):
        op = ring.submit_nop(i)
        assert ring.wait(5) is op
        assert (op.user_data, op.res, op.result, op.flags, op.sequence, op.more, op.done) == (
            i, 0, 0, 0, 0, False, True)
        assert op.zc_copied is None and op.ancdata is None and op.msg_flags is None
        seen.append(weakref.ref(op))
        del op
    gc.collect()
    assert all(r() is None for r in seen)
    fresh = ringio.Completion()
    assert (fresh.user_data, fresh.res, fresh.result, fresh.done) == (None, 0, None, True)


def test_positional_fast_path_errors_unchanged(ring):
    with pytest.raises(TypeError, match="at most 1 positional"):
        ring.submit_nop(1, 2)
    with pytest.raises(TypeError, match="missing required argument 'seconds'"):
        ring.submit_timeout()
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        ring.wait(bogus=1)
    op = ring.submit_nop(user_data="kw")
    assert ring.wait(timeout=5) is op and op.user_data == "kw"
