"""Shared fixtures for the ringio pytest suite.

The suite imports the *installed* ringio package and is the conformance suite
of both backends: CI runs it once on io_uring and once with
``RINGIO_BACKEND=sim``, where every ``ringio.Ring()`` the tests make runs on the
simulated kernel.  Tests assert results keyed by user_data, not by completion
order.  The few that need the real kernel are marked ``@pytest.mark.kernel``
and skipped, with that reason, on the sim run; on the io_uring run, tests that
need a ring are skipped, with the reason ringio gives, only when this process
really cannot create one (``ringio.probe() == {}``: seccomp,
kernel.io_uring_disabled, ...).
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
#: The backend a plain ringio.Ring() uses in this run.
SIM_RUN = os.environ.get("RINGIO_BACKEND") == "sim"
BACKEND = "sim" if SIM_RUN else "uring"


def pytest_collection_modifyitems(config, items):
    if not SIM_RUN:
        return
    skip = pytest.mark.skip(reason="needs the real io_uring backend; this run uses RINGIO_BACKEND=sim")
    for item in items:
        if item.get_closest_marker("kernel"):
            item.add_marker(skip)

@pytest.fixture(scope="session")
def probe_result() -> dict:
    return dict(_PROBE)

@pytest.fixture
def uring() -> None:
    """Skip the test when no ring can be made: io_uring unusable in this process and
    this is not the simulated-backend run."""
    if not URING_AVAILABLE and not SIM_RUN:
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
