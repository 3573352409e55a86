"""Multishot receive and accept: legs, numbering, termination, -ENOBUFS under a
slow consumer and re-arming, flags, descriptors nobody sees."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time

import pytest
import ringio
from sockets_support import open_fds, wait_done, wait_released

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


@pytest.fixture(autouse=True)
def _needs_multishot(probe_result):
    if probe_result and not (probe_result.get("IORING_RECV_MULTISHOT")
                             and probe_result.get("IORING_ACCEPT_MULTISHOT")):
        pytest.skip("this kernel has no multishot accept/receive")


@pytest.fixture
def dgram_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    yield a, b
    a.close()
    b.close()


# ---- recv_multishot ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 3, 6, 100, 65536, 32768 * 2, -1])
def test_buffer_count_must_be_a_power_of_two_up_to_32768(ring, pair, count):
    with pytest.raises(ValueError, match="buffer_count"):
        ring.submit_recv_multishot(pair[0], 64, count)
    assert ring.inflight == 0


@pytest.mark.parametrize("size", [0, -5, (1 << 30) + 1])
def test_buffer_size_range(ring, pair, size):
    with pytest.raises(ValueError, match="buffer_size"):
        ring.submit_recv_multishot(pair[0], size, 4)


def test_buffer_memory_bound(ring, pair):
    with pytest.raises(ValueError, match=r"buffer_size \* buffer_count"):
        ring.submit_recv_multishot(pair[0], 1 << 20, 2048)


@pytest.mark.parametrize("count", [1, 2, 32768])
def test_valid_buffer_counts(ring, pair, count):
    a, b = pair
    h = ring.submit_recv_multishot(a, 16, count)
    b.send(b"ok")
    leg = ring.wait(5)
    assert leg.result == b"ok" and leg.more
    ring.submit_cancel(h)
    wait_done(ring, h)
    wait_released(ring)


def test_legs_numbered_from_sequence_and_final_leg(ring, pair):
    a, b = pair
    h = ring.submit_recv_multishot(a, 8, 4, "ud", sequence=100)
    got = []
    for i in range(5):
        b.send(bytes([48 + i]) * 3)
        got.append(ring.wait(5))
    assert [leg.sequence for leg in got] == [100, 101, 102, 103, 104]
    assert [leg.result for leg in got] == [b"000", b"111", b"222", b"333", b"444"]
    assert all(leg.more and leg.user_data == "ud" and leg.kind == ringio.COMPLETION_KIND_RECV_MULTISHOT
               for leg in got)
    assert h.sequence == 104 and h.more is True and h.done is False
    b.close()
    final = ring.wait(5)
    assert (final.res, final.result, final.sequence, final.more) == (0, b"", 105, False)
    assert h.done is True and h.sequence == 105 and h.more is False
    assert ring.inflight == 0


def test_leg_larger_than_a_buffer_is_split(ring, pair):
    a, b = pair
    h = ring.submit_recv_multishot(a, 4, 8)
    b.send(b"abcdefghij")
    data = b""
    while len(data) < 10:
        leg = ring.wait(5)
        assert 0 < leg.res <= 4 and leg.more
        data += leg.result
    assert data == b"abcdefghij"
    ring.submit_cancel(h)
    wait_done(ring, h)


def test_buffers_are_recycled(ring, pair):
    """Two buffers carry 50 messages: each is recycled as soon as its leg is
    delivered."""
    a, b = pair
    h = ring.submit_recv_multishot(a, 64, 2)
    received = b""
    for i in range(50):
        msg = f"message {i:03d};".encode()
        b.send(msg)
        while len(received) < 12 * (i + 1):
            leg = ring.wait(5)
            assert leg.more, leg
            received += leg.result
    assert received == b"".join(f"message {i:03d};".encode() for i in range(50))
    ring.submit_cancel(h)
    wait_done(ring, h)


def test_enobufs_under_a_slow_consumer_then_rearm_continues_numbering(ring, dgram_pair):
    """Five datagrams are queued before the receive starts and nobody reaps:
    two buffers fill, the kernel ends the operation with -ENOBUFS (a final leg);
    re-arming with sequence=last+1 goes on where it stopped."""
    a, b = dgram_pair
    for i in range(5):
        b.send(f"dgram-{i}".encode())
    h = ring.submit_recv_multishot(a, 32, 2)
    legs = wait_done(ring, h)
    assert [leg.result for leg in legs] == [b"dgram-0", b"dgram-1", None]
    assert [leg.sequence for leg in legs] == [0, 1, 2]
    assert [leg.more for leg in legs] == [True, True, False]
    assert legs[-1].res == -errno.ENOBUFS
    assert h.res == -errno.ENOBUFS and h.done
    # Re-arm: numbering continues after the -ENOBUFS leg.
    h2 = ring.submit_recv_multishot(a, 32, 2, sequence=legs[-1].sequence + 1)
    legs2 = wait_done(ring, h2)
    assert [(leg.sequence, leg.result) for leg in legs2] == [
        (3, b"dgram-2"), (4, b"dgram-3"), (5, None)]
    assert legs2[-1].res == -errno.ENOBUFS
    h3 = ring.submit_recv_multishot(a, 32, 2, sequence=6)
    leg = ring.wait(5)
    assert (leg.sequence, leg.result, leg.more) == (6, b"dgram-4", True)
    b.send(b"later")
    leg = ring.wait(5)
    assert (leg.sequence, leg.result, leg.more) == (7, b"later", True)
    ring.submit_cancel(h3)
    wait_done(ring, h3)
    assert h3.res == -errno.ECANCELED and h3.sequence == 8


def test_recv_multishot_bad_fd_is_a_final_leg(ring):
    from sockets_support import closed_fd

    h = ring.submit_recv_multishot(closed_fd(), 16, 2)
    leg = ring.wait(5)
    assert leg.res == -errno.EBADF and leg.more is False and leg.result is None
    assert h.done
    assert ring.inflight == 0


def test_recv_multishot_legs_of_a_closed_ring_are_discarded(uring, pair):
    a, b = pair
    r = ringio.Ring()
    h = r.submit_recv_multishot(a, 16, 4)
    b.send(b"unseen")
    time.sleep(0.02)
    r.close()
    assert not h.done  # the leg was never delivered; its buffer ring is gone
    assert r.closed


# ---- accept_multishot -------------------------------------------------------------------------


def test_accept_multishot_one_leg_per_connection(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        h = ring.submit_accept_multishot(listener)
        clients = []
        fds = []
        try:
            for i in range(5):
                clients.append(socket.create_connection(listener.getsockname()))
                leg = ring.wait(5)
                assert leg.sequence == i and leg.more and leg.result >= 0
                fds.append(leg.result)
            assert len(set(fds)) == 5
            # Each leg's fd is the server end of the matching client.
            for fd, c in zip(fds, clients, strict=True):
                c.send(b"hi")
                assert os.read(fd, 2) == b"hi"
        finally:
            for fd in fds:
                os.close(fd)
            for c in clients:
                c.close()
        ring.submit_cancel(h)
        wait_done(ring, h)
        assert h.res == -errno.ECANCELED and h.sequence == 5


@pytest.mark.parametrize("flags", [0, socket.SOCK_NONBLOCK, socket.SOCK_CLOEXEC,
                                   socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC])
def test_accept_multishot_flags_pass_through(ring, flags):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        h = ring.submit_accept_multishot(listener, None, flags)
        with socket.create_connection(listener.getsockname()):
            leg = ring.wait(5)
            fd = leg.result
            try:
                assert os.get_blocking(fd) is not bool(flags & socket.SOCK_NONBLOCK)
                cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
                assert cloexec is bool(flags & socket.SOCK_CLOEXEC)
            finally:
                os.close(fd)
        ring.submit_cancel(h)
        wait_done(ring, h)


# Kernel only: the kernel accepts while nobody waits; the sim only progresses inside enter.
@pytest.mark.kernel
def test_accept_multishot_fds_nobody_sees_are_closed(uring):
    """Connections accepted into legs that were never reaped are closed when
    the ring closes, not leaked."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        r = ringio.Ring()
        before = set(open_fds())
        h = r.submit_accept_multishot(listener)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(6)]
        try:
            deadline = time.monotonic() + 5
            # Wait until the kernel accepted all six (their fds exist in our table).
            while len(set(open_fds()) - before) < 12 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert len(set(open_fds()) - before) == 12  # 6 clients + 6 accepted
            r.close()
            assert not h.done
            assert len(set(open_fds()) - before) == 6  # only the clients are left
            for c in clients:
                c.settimeout(5)
                assert c.recv(1) == b""  # the server side was closed
        finally:
            for c in clients:
                c.close()


def test_accept_multishot_on_a_non_listening_socket(ring):
    with socket.socket() as s:
        h = ring.submit_accept_multishot(s)
        leg = ring.wait(5)
        assert leg.res == -errno.EINVAL and leg.more is False and leg.result is None
        assert h.done


def test_accept_flags_validation(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for method in (ring.submit_accept, ring.submit_accept_multishot):
            with pytest.raises(ValueError, match="SOCK_NONBLOCK"):
                method(listener, None, socket.SOCK_STREAM)
            with pytest.raises(ValueError):
                method(listener, None, -1)
        assert ring.inflight == 0
