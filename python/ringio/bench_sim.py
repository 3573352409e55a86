"""The ``sim`` scenario of ``python -m ringio bench``: the simulated kernel against io_uring.

The simulated backend is for tests, but tests run it millions of times, so it must not be slow.
The same ringio loops as the ``nop`` and ``pingpong`` scenarios run on a ring of each backend,
round-robin in one run (``bench._run_rows``): NOP round trips one at a time and in batches of 64,
and the 64-byte socketpair ping-pong (both ends on one ring; the sim does the real ``send(2)`` and
``recv(2)``).  The ratio column is sim over io_uring.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from .bench import (
    CPrograms,
    Once,
    Row,
    Sizes,
    Unavailable,
    _nop_ringio_batch,
    _nop_ringio_single,
    _pingpong_ringio,
    _run_rows,
)


@contextmanager
def _on(backend: str, factory: Callable[[], AbstractContextManager[Once]]) -> Iterator[Once]:
    """Run factory with every plain Ring() it makes on `backend` (RINGIO_BACKEND while it sets up)."""
    old = os.environ.get("RINGIO_BACKEND")
    os.environ["RINGIO_BACKEND"] = backend
    try:
        cm = factory()
        try:
            once = cm.__enter__()
        except OSError as e:
            raise Unavailable(f"no {backend} ring here: {e}") from None
    finally:
        if old is None:
            del os.environ["RINGIO_BACKEND"]
        else:
            os.environ["RINGIO_BACKEND"] = old
    try:
        yield once
    finally:
        cm.__exit__(None, None, None)


def _pair(group: str, how: str, unit: str, make: Callable[[], AbstractContextManager[Once]]) -> list:
    return [
        (Row("ringio on io_uring", how, group, unit), lambda: _on("uring", make)),
        (Row("ringio on the sim", how, group, unit), lambda: _on("sim", make)),
    ]


def scenario_sim(sz: Sizes, cprogs: CPrograms) -> dict:
    b, nb, ns, n, size = sz.nop_batch, sz.nop_batch_ops, sz.nop_single_ops, sz.pingpong_trips, sz.msg_size
    rows = _run_rows(_pair("sim: NOP one at a time", "submit_nop, wait", "ops/s",
                           lambda: _nop_ringio_single(ns)), sz.repeats)
    rows += _run_rows(_pair(f"sim: NOP batch of {b}", f"batch(): {b}x submit_nop, wait_many", "ops/s",
                            lambda: _nop_ringio_batch(nb, b)), sz.repeats)
    rows += _run_rows(_pair("sim: pingpong", "submit_send, submit_recv, wait, wait", "round trips/s",
                            lambda: _pingpong_ringio(n, size, batched=False)), sz.repeats)
    return {
        "title": "sim: the simulated kernel against io_uring, same loops",
        "baselines": ["ringio on io_uring"],
        "setup": f"{ns:,} NOPs one at a time, {nb:,} in batches of {b}, {n:,} socketpair round trips of "
                 f"{size} B; the same ringio code on Ring(backend='uring') and Ring(backend='sim').",
        "unit": "ops/s",
        "rows": rows,
    }
