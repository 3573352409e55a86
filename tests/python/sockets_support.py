"""Helpers shared by the test_sockets_*.py suites (not a test module).

Every socket suite checks that it leaks no file descriptor: ``no_fd_leak()``
compares /proc/self/fd around each test (the ``fd_leak_check`` fixture of
conftest.py, which each module applies to all its tests, wraps the ``ring``
fixture, so the ring's own fd is opened and closed inside the window).
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import time
from collections.abc import Iterator

import pytest
import ringio


def open_fds() -> dict[int, str]:
    """The process's open descriptors and what they point to.  The directory
    descriptor listdir() itself used is gone by the time we readlink it."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


@contextlib.contextmanager
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    leaked: dict[int, str] = {}
    for attempt in range(20):  # descriptors closed by another thread may lag a moment
        if attempt:
            gc.collect()  # a socket object kept alive by a reference cycle
        after = open_fds()
        leaked = {fd: what for fd, what in after.items() if before.get(fd) != what}
        if not leaked:
            return
        time.sleep(0.01)
    pytest.fail(f"file descriptors leaked by the test: {leaked}")


def wait_done(ring: ringio.Ring, op: ringio.Completion, timeout: float = 5.0) -> list:
    """Reap until op is done; returns every completion reaped meanwhile."""
    got: list = []
    deadline = time.monotonic() + timeout
    while not op.done:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{op!r} not done within {timeout}s (reaped {got!r})")
        got.extend(ring.wait_many(timeout=min(left, 0.5)))
    return got


def wait_released(ring: ringio.Ring, timeout: float = 5.0) -> None:
    """Reap (delivering nothing expected) until the core released every
    operation: for zero-copy sends this is when the notification arrived."""
    deadline = time.monotonic() + timeout
    while ring.inflight:
        if time.monotonic() > deadline:
            pytest.fail(f"{ring.inflight} operations still in flight after {timeout}s")
        extra = ring.wait_many(timeout=0.02)
        assert extra == [], f"unexpected completions: {extra!r}"


def fill_send_buffer(sock: socket.socket, byte: bytes = b"f") -> None:
    """Make sock non-blocking and send 64 KiB chunks of `byte` until its buffers
    are full, so that a send submitted next parks in the kernel."""
    sock.setblocking(False)
    try:
        while True:
            sock.send(byte * 65536)
    except BlockingIOError:
        pass


def drain_until_done(ring: ringio.Ring, op: ringio.Completion, sock: socket.socket) -> bytearray:
    """Make sock non-blocking and read it while reaping until op is done (a send
    parked behind sock's full buffer); returns the bytes read."""
    got = bytearray()
    sock.setblocking(False)
    while not op.done:
        try:
            got += sock.recv(1 << 20)
        except BlockingIOError:
            pass
        ring.wait_many(timeout=0.01)
    return got


def tcp_pair(family: int = socket.AF_INET) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) TCP pair on the loopback interface."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
    return client, server


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback here")


def closed_fd() -> int:
    """A descriptor number that is not open (the lowest free one)."""
    r, w = os.pipe()
    os.close(w)
    os.close(r)
    return r
