"""Zero-copy sends: the operation completion is delivered with the kernel's
raw flags, the F_NOTIF notification is consumed internally and only it
releases the buffer; IORING_SEND_ZC_REPORT_USAGE says whether the kernel
copied; a failed zero-copy send still releases correctly."""

from __future__ import annotations

import errno
import socket

import pytest
import ringio
from sockets_support import tcp_pair, wait_released

F_MORE = ringio.IORING_CQE_F_MORE
F_NOTIF = ringio.IORING_CQE_F_NOTIF
REPORT = ringio.IORING_SEND_ZC_REPORT_USAGE


pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


@pytest.fixture(autouse=True)
def _needs_zc(probe_result):
    if probe_result and not probe_result.get("IORING_OP_SEND_ZC"):
        pytest.skip("this kernel refuses zero-copy sends")


@pytest.fixture
def tcp():
    client, server = tcp_pair()
    yield client, server
    client.close()
    server.close()


@pytest.fixture
def udp():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx.connect(rx.getsockname())
    yield tx, rx
    rx.close()
    tx.close()


def test_send_zc_completion_keeps_raw_flags_and_notification_is_internal(ring, tcp):
    client, server = tcp
    data = bytearray(b"0123456789" * 100)
    op = ring.submit_send_zc(client, data, "zc")
    got = ring.wait(5)
    assert got is op
    assert op.res == 1000 and op.result == 1000
    assert op.flags & F_MORE  # kept exactly as the kernel set it
    assert not op.flags & F_NOTIF
    assert op.more is False  # `more` is about multishot legs
    assert op.done is True
    # Only one completion for the user: the notification never shows up.
    wait_released(ring)
    assert ring.stats()["delivered"] == 1
    assert ring.stats()["completed"] == 2  # operation CQE + notification CQE
    assert server.recv(2000) == bytes(data)


# Kernel only: needs real zero-copy pinning; test_sim_scripting holds the notification instead.
@pytest.mark.kernel
def test_send_zc_buffer_held_after_the_completion_until_the_notification(ring):
    """The receiver's window is closed, so the zero-copy payload sits in the
    sender's queue with its pages pinned: the operation completes (the data is
    queued) but the notification only comes once the data left.  Until then
    the export must be held, even though the user already has the completion."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        client.setblocking(False)
        filler = 0
        for _ in range(16):
            filler += client.send(b"f" * 16384)  # fills the window, not the send buffer
        data = bytearray(b"z" * 1000)
        op = ring.submit_send_zc(client, data)
        assert ring.wait(5) is op and op.res == 1000 and op.flags & F_MORE
        assert ring.wait(0.1) is None  # the notification is not there yet
        assert ring.inflight == 1
        with pytest.raises(BufferError):
            data.clear()
        server.setblocking(False)
        received = bytearray()
        while ring.inflight:
            try:
                received += server.recv(1 << 20)
            except BlockingIOError:
                pass
            assert ring.wait_many(timeout=0.01) == []  # consumed internally
        data.clear()  # released by the notification
        server.setblocking(True)
        while len(received) < filler + 1000:
            received += server.recv(1 << 20)
        assert bytes(received[filler:]) == b"z" * 1000


def test_report_usage_on_loopback_says_copied(ring, tcp):
    client, server = tcp
    op = ring.submit_send_zc(client, b"report" * 100, None, 0, REPORT)
    assert ring.wait(5) is op
    assert op.res == 600
    # With REPORT_USAGE the completion waits for the notification, so the
    # answer is there when the user sees it: loopback always copies.
    assert op.zc_copied is True
    assert op.flags & F_MORE
    assert ring.inflight == 0
    assert server.recv(1000) == b"report" * 100


def test_zc_copied_is_none_without_report_usage(ring, udp):
    tx, rx = udp
    op = ring.submit_send_zc(tx, b"dgram")
    assert ring.wait(5) is op and op.res == 5
    assert op.zc_copied is None
    wait_released(ring)
    assert rx.recv(16) == b"dgram"


def test_sendmsg_zc_report_usage_udp(ring):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        parts = [bytearray(b"head-"), bytearray(b"tail")]
        op = ring.submit_sendmsg_zc(tx, parts, rx.getsockname(), zc_flags=REPORT)
        for p in parts:
            with pytest.raises(BufferError):
                p.clear()
        assert ring.wait(5) is op
        assert op.res == 9 and op.zc_copied is True
        assert ring.inflight == 0
        for p in parts:
            p.clear()  # released with the notification
        assert rx.recvfrom(64) == (b"head-tail", ("127.0.0.1", tx.getsockname()[1]))


def test_failed_zero_copy_send_still_releases(ring):
    """AF_UNIX has no zero-copy: the send fails, the kernel may still post a
    notification; either way the buffer is released exactly once."""
    a, b = socket.socketpair()
    with a, b:
        for submit in (lambda d: ring.submit_send_zc(a, d),
                       lambda d: ring.submit_sendmsg_zc(a, [d]),
                       lambda d: ring.submit_send_zc(a, d, zc_flags=REPORT)):
            data = bytearray(b"nope")
            op = submit(data)
            assert ring.wait(5) is op
            assert op.res in (-errno.EOPNOTSUPP, -errno.ENOTSUP)
            assert op.result is None
            wait_released(ring)
            data.clear()
        assert ring.stats()["stale_cqes"] == 0


def test_failed_zero_copy_send_bad_fd_releases(ring):
    from sockets_support import closed_fd

    data = bytearray(b"x")
    op = ring.submit_send_zc(closed_fd(), data)
    assert ring.wait(5) is op and op.res == -errno.EBADF
    wait_released(ring)
    data.clear()


def test_many_zero_copy_sends_in_flight(ring, tcp):
    client, server = tcp
    chunks = [bytes([i]) * 1000 for i in range(20)]
    ops = [ring.submit_send_zc(client, c, i) for i, c in enumerate(chunks)]
    seen = []
    while len(seen) < len(ops):
        seen.extend(ring.wait_many(timeout=5))
    assert sorted(c.user_data for c in seen) == list(range(20))
    wait_released(ring)
    want = b"".join(chunks)
    got = b""
    while len(got) < len(want):
        got += server.recv(65536)
    assert got == want


def test_zc_flags_validation(ring, tcp):
    client, _ = tcp
    with pytest.raises(ValueError, match="zc_flags"):
        ring.submit_send_zc(client, b"x", zc_flags=ringio.IORING_RECVSEND_POLL_FIRST << 2)
    with pytest.raises(ValueError, match="zc_flags"):
        ring.submit_sendmsg_zc(client, b"x", zc_flags=1 << 7)
    with pytest.raises(ValueError):
        ring.submit_send_zc(client, b"x", zc_flags=1 << 16)
    op = ring.submit_send_zc(client, b"x", zc_flags=ringio.IORING_RECVSEND_POLL_FIRST)
    assert ring.wait(5) is op and op.res == 1
    wait_released(ring)
