"""Bad arguments: each with the exception it must raise."""

from __future__ import annotations

import math
import select

import pytest
import ringio

POLLIN = select.POLLIN

# (id, call, exception): call takes no argument (module level) ...
MODULE_CASES = [
    ("entries-str", lambda: ringio.Ring("8"), TypeError),
    ("entries-float", lambda: ringio.Ring(8.0), TypeError),
    ("entries-none", lambda: ringio.Ring(None), TypeError),
    ("entries-zero", lambda: ringio.Ring(0), ValueError),
    ("entries-negative", lambda: ringio.Ring(-8), ValueError),
    ("entries-above-max", lambda: ringio.Ring(32769), ValueError),
    ("entries-absurd", lambda: ringio.Ring(10**30), ValueError),
    ("flags-float", lambda: ringio.Ring(8, 1.5), TypeError),
    ("flags-str", lambda: ringio.Ring(8, "0"), TypeError),
    ("flags-negative", lambda: ringio.Ring(8, -1), ValueError),
    ("flags-too-wide", lambda: ringio.Ring(8, 1 << 32), ValueError),
    ("cq-below-entries", lambda: ringio.Ring(8, cq_entries=4), ValueError),
    ("cq-above-max", lambda: ringio.Ring(8, cq_entries=65537), ValueError),
    ("cq-str", lambda: ringio.Ring(8, cq_entries="16"), TypeError),
    ("cq-positional", lambda: ringio.Ring(8, 0, 16), TypeError),
    ("backend-unknown", lambda: ringio.Ring(backend="epoll"), ValueError),
    ("backend-type", lambda: ringio.Ring(backend=1), TypeError),
    ("sim-args-on-uring", lambda: ringio.Ring(backend="uring", seed=1), ValueError),
    ("sim-seed-type", lambda: ringio.Ring(backend="sim", seed="1"), TypeError),
    ("sim-faults-type", lambda: ringio.Ring(backend="sim", faults=3), TypeError),
    ("sim-faults-unknown-site", lambda: ringio.Ring(backend="sim", faults="bogus=1"), ValueError),
    ("sim-faults-probability", lambda: ringio.Ring(backend="sim", faults="short_read=2:1"), ValueError),
    ("sim-faults-unknown-errno", lambda: ringio.Ring(backend="sim", faults="errors.recv=EBOGUS"), ValueError),
    ("sim-replay-garbage", lambda: ringio.Ring(backend="sim", replay=b"not a trace"), ValueError),
    ("sim-replay-type", lambda: ringio.Ring(backend="sim", replay=1.5), TypeError),
    ("unknown-keyword", lambda: ringio.Ring(size=8), TypeError),
    ("probe-entries-zero", lambda: ringio.probe(0), ValueError),
    ("probe-entries-str", lambda: ringio.probe("2"), TypeError),
    ("probe-flags-negative", lambda: ringio.probe(flags=-1), ValueError),
    ("reason-bad-keyword", lambda: ringio.unavailable_reason(size=2), TypeError),
    ("completion-kind-range", lambda: ringio.Completion(kind=999), ValueError),
    ("completion-res-str", lambda: ringio.Completion(res="0"), TypeError),
]

# ... or takes an open ring.
RING_CASES = [
    ("wait-negative", lambda r: r.wait(-1), ValueError),
    ("wait-nan", lambda r: r.wait(math.nan), ValueError),
    ("wait-str", lambda r: r.wait("1"), TypeError),
    ("wait-extra-arg", lambda r: r.wait(1, 2), TypeError),
    ("wait-bad-keyword", lambda r: r.wait(seconds=1), TypeError),
    ("wait-many-max-zero", lambda r: r.wait_many(0), ValueError),
    ("wait-many-max-str", lambda r: r.wait_many("1"), TypeError),
    ("wait-many-negative-timeout", lambda r: r.wait_many(1, -0.5), ValueError),
    ("timeout-negative", lambda r: r.submit_timeout(-1), ValueError),
    ("timeout-nan", lambda r: r.submit_timeout(math.nan), ValueError),
    ("timeout-inf", lambda r: r.submit_timeout(math.inf), ValueError),
    ("timeout-str", lambda r: r.submit_timeout("1"), TypeError),
    ("timeout-missing", lambda r: r.submit_timeout(), TypeError),
    ("nop-too-many-args", lambda r: r.submit_nop(1, 2), TypeError),
    ("nop-duplicate-arg", lambda r: r.submit_nop(1, user_data=2), TypeError),
    ("cancel-int-target", lambda r: r.submit_cancel(42), TypeError),
    ("cancel-none-target", lambda r: r.submit_cancel(None), TypeError),
    ("cancel-missing-target", lambda r: r.submit_cancel(), TypeError),
    ("cancel-foreign-completion", lambda r: r.submit_cancel(ringio.Completion()), ValueError),
    ("cancel-other-rings-completion",
     lambda r: r.submit_cancel(_other_ring_completion()), ValueError),
    ("cancel-bad-flags",
     lambda r: r.submit_cancel(r.submit_nop(), flags=ringio.IORING_ASYNC_CANCEL_ANY), ValueError),
    ("poll-negative-fd", lambda r: r.submit_poll(-1, POLLIN), ValueError),
    ("poll-fd-str", lambda r: r.submit_poll("0", POLLIN), TypeError),
    ("poll-fd-float", lambda r: r.submit_poll(0.0, POLLIN), TypeError),
    ("poll-mask-negative", lambda r: r.submit_poll(0, -1), ValueError),
    ("poll-mask-float", lambda r: r.submit_poll(0, 1.0), TypeError),
    ("poll-missing-mask", lambda r: r.submit_poll(0), TypeError),
    ("batch-extra-arg", lambda r: r.batch(True, 1), TypeError),
    ("callback-not-callable", lambda r: setattr(r, "callback", 5), TypeError),
    ("serve-without-callback", lambda r: r.serve_completions(), RuntimeError),
]


def _other_ring_completion():
    with ringio.Ring() as other:
        return other.submit_nop()


@pytest.mark.parametrize("call,exc", [c[1:] for c in MODULE_CASES],
                         ids=[c[0] for c in MODULE_CASES])
def test_bad_module_arguments(call, exc):
    with pytest.raises(exc):
        call()


@pytest.mark.parametrize("call,exc", [c[1:] for c in RING_CASES], ids=[c[0] for c in RING_CASES])
def test_bad_ring_arguments(ring, call, exc):
    with pytest.raises(exc):
        call(ring)
    # A refused call leaves the ring working.
    op = ring.submit_nop("still fine")
    got = None
    for _ in range(10):
        got = ring.wait(5)
        if got is op:
            break
    assert got is op


def test_bad_arguments_leave_nothing_in_flight(ring):
    with pytest.raises(ValueError):
        ring.submit_timeout(-1)
    with pytest.raises(TypeError):
        ring.submit_cancel(object())
    assert ring.inflight == 0
