"""Shared fixtures for the ringio pytest suite.

The suite imports the *installed* ringio package.  Tests that need a real
io_uring ring take the ``ring`` (or ``uring``) fixture and are skipped, with
the reason ringio gives, only when this process really cannot create a ring
(``ringio.probe() == {}``: seccomp, kernel.io_uring_disabled, ...).
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import ringio
from sockets_support import no_fd_leak

_PROBE = ringio.probe()
URING_AVAILABLE = bool(_PROBE)
URING_REASON = None if URING_AVAILABLE else ringio.unavailable_reason()

@pytest.fixture(scope="session")
def probe_result() -> dict:
    return dict(_PROBE)

@pytest.fixture
def uring() -> None:
    """Skip the test when io_uring cannot be used in this process."""
    if not URING_AVAILABLE:
        pytest.skip(f"io_uring unavailable: {URING_REASON}")

@pytest.fixture
def ring(uring):
    """A fresh default Ring, closed after the test."""
    r = ringio.Ring()
    try:
        yield r
    finally:
        if r.running:
            r.stop_serving()
        r.close()

@pytest.fixture
def fd_leak_check():
    """Fail the test if it leaves a descriptor open (sockets_support.no_fd_leak).

    The socket suites take it for every test with
    ``pytestmark = pytest.mark.usefixtures("fd_leak_check")``, which sets it up
    before the fixtures the test asks for, so the ``ring`` fixture's own
    descriptor is opened and closed inside the window."""
    with no_fd_leak():
        yield

@pytest.fixture
def pair():
    """A connected AF_UNIX stream socketpair (a, b), closed after the test."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()

@pytest.fixture
def subprocess_env() -> dict:
    """Environment for child interpreters that import the same ringio."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(ringio.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p
    )
    return env

def _collect(ring: ringio.Ring, n: int, timeout: float = 10.0) -> list:
    """Reap exactly n completions (failing the test after `timeout` seconds)."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"only {len(got)} of {n} completions within {timeout}s: {got!r}")
        got.extend(ring.wait_many(max=n - len(got), timeout=min(left, 1.0)))
    return got

@pytest.fixture
def collect():
    """collect(ring, n, timeout=10.0): reap exactly n completions."""
    return _collect
