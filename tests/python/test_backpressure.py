"""SubmissionQueueFull and CQ overflow: backpressure without losing anything."""

from __future__ import annotations

import pytest
import ringio


def test_strict_batch_raises_submission_queue_full(uring, collect):
    with ringio.Ring(entries=4) as ring:
        n = ring.sq_entries
        accepted = []
        with ring.batch(strict=True):
            with pytest.raises(ringio.SubmissionQueueFull):
                for i in range(10 * n):
                    accepted.append(ring.submit_nop(i))
            assert len(accepted) == n  # exactly one SQ's worth
            assert ring.inflight == n  # the refused one left no trace
            assert ring.staged == n
            with pytest.raises(ringio.SubmissionQueueFull):
                ring.submit_timeout(1, "refused too")
            assert ring.inflight == n
        got = collect(ring, n)
        assert {id(c) for c in got} == {id(c) for c in accepted}
        assert sorted(c.user_data for c in got) == list(range(n))
        assert ring.wait(0.05) is None  # nothing else: the refused ones never ran
        assert ring.inflight == 0
        # And the ring works again.
        op = ring.submit_nop("again")
        assert ring.wait(5) is op


def test_submission_queue_full_is_a_runtime_error(uring):
    with ringio.Ring(entries=2) as ring, ring.batch(strict=True):
        ring.submit_nop()
        ring.submit_nop()
        with pytest.raises(RuntimeError):
            ring.submit_nop()


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
def test_small_cq_delivers_every_completion_exactly_once(uring, batched):
    with ringio.Ring(entries=2, cq_entries=4) as ring:
        assert ring.cq_entries == 4
        n = 256
        if batched:
            with ring.batch():
                ops = [ring.submit_nop(i) for i in range(n)]
        else:
            ops = [ring.submit_nop(i) for i in range(n)]  # no reaping in between
        assert ring.inflight == n
        seen = []
        for _ in range(1000):
            if len(seen) >= n:
                break
            seen.extend(ring.wait_many(max=64, timeout=1))
        assert len(seen) == n
        assert len({id(c) for c in seen}) == n
        assert {id(c) for c in seen} == {id(o) for o in ops}
        assert sorted(c.user_data for c in seen) == list(range(n))
        assert all(o.done and o.res == 0 for o in ops)
        assert ring.wait(0.05) is None
        stats = ring.stats()
        assert stats["stale_cqes"] == 0
        assert stats["inflight"] == 0
