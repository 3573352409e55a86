"""Helpers shared by the test_files_*.py suites (not a test module)."""

from __future__ import annotations

import time

import pytest


def reap(ring, n: int, timeout: float = 10.0) -> dict:
    """Reap exactly n completions and return them keyed by user_data (never by order)."""
    got: dict = {}
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"only {len(got)} of {n} completions within {timeout}s: {got!r}")
        for c in ring.wait_many(max=n - len(got), timeout=min(left, 1.0)):
            assert c.user_data not in got, f"two completions for {c.user_data!r}"
            got[c.user_data] = c
    return got


def one(ring, op, timeout: float = 10.0):
    """Reap the single completion of op (submitted with a unique user_data)."""
    got = reap(ring, 1, timeout)
    (c,) = got.values()
    assert c is op
    return c
