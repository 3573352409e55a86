"""One round trip per socket operation, on real sockets, and cancellation of
each kind of pending operation."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket

import pytest
import ringio
from sockets_support import fill_send_buffer, no_fd_leak, tcp_pair, wait_done, wait_released

K = ringio


pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def test_recv(ring, pair):
    a, b = pair
    buf = bytearray(16)
    op = ring.submit_recv(a, buf, "ud")  # an object with fileno()
    assert op.kind == K.COMPLETION_KIND_RECV and op.done is False
    b.send(b"hello")
    assert ring.wait(5) is op
    assert (op.res, op.result, op.user_data, op.flags, op.more) == (5, 5, "ud", 0, False)
    assert buf == b"hello" + bytes(11)


def test_recv_eof_and_flags(ring, pair):
    a, b = pair
    b.send(b"peek")
    buf = bytearray(8)
    op = ring.submit_recv(a.fileno(), buf, flags=socket.MSG_PEEK)
    assert ring.wait(5) is op and op.result == 4 and buf[:4] == b"peek"
    assert a.recv(8) == b"peek"  # MSG_PEEK left it queued
    b.shutdown(socket.SHUT_WR)
    op = ring.submit_recv(a, buf)
    assert ring.wait(5) is op
    assert op.res == 0 and op.result == 0


def test_send(ring, pair):
    a, b = pair
    op = ring.submit_send(a, b"payload", 7, socket.MSG_NOSIGNAL)
    assert op.kind == K.COMPLETION_KIND_SEND
    assert ring.wait(5) is op
    assert (op.res, op.result, op.user_data) == (7, 7, 7)
    assert b.recv(16) == b"payload"


def test_send_error_result_is_none(ring, pair):
    a, b = pair
    b.close()
    op = ring.submit_send(a, b"x", flags=socket.MSG_NOSIGNAL)
    assert ring.wait(5) is op
    assert op.res == -errno.EPIPE and op.result is None


def test_send_zc_tcp(ring):
    client, server = tcp_pair()
    with client, server:
        op = ring.submit_send_zc(client, b"zero-copy")
        assert op.kind == K.COMPLETION_KIND_SEND_ZC
        assert ring.wait(5) is op
        assert op.res == 9 and op.result == 9
        assert op.flags & K.IORING_CQE_F_MORE  # raw: a notification follows
        assert not op.flags & K.IORING_CQE_F_NOTIF
        assert op.more is False and op.zc_copied is None
        wait_released(ring)  # the notification is consumed, never delivered
        assert server.recv(16) == b"zero-copy"


def test_recv_multishot(ring, pair):
    a, b = pair
    h = ring.submit_recv_multishot(a, 64, 4, "m")
    assert h.kind == K.COMPLETION_KIND_RECV_MULTISHOT
    legs = []
    for chunk in (b"one", b"two", b"three"):
        b.send(chunk)
        leg = ring.wait(5)
        assert leg is not h and leg.user_data == "m" and leg.more is True
        legs.append(leg)
    assert [leg.result for leg in legs] == [b"one", b"two", b"three"]
    assert [leg.res for leg in legs] == [3, 3, 5]
    assert [leg.sequence for leg in legs] == [0, 1, 2]
    assert all(leg.flags & K.IORING_CQE_F_BUFFER for leg in legs)
    assert h.done is False
    b.shutdown(socket.SHUT_WR)
    final = ring.wait(5)
    assert (final.res, final.result, final.more, final.sequence) == (0, b"", False, 3)
    assert h.done and h.res == 0 and h.result == b"" and h.sequence == 3
    assert ring.inflight == 0


def test_recvmsg(ring, pair):
    a, b = pair
    buf = bytearray(8)
    op = ring.submit_recvmsg(a, buf, "r")
    assert op.kind == K.COMPLETION_KIND_RECVMSG
    assert op.ancdata is None and op.msg_flags is None  # pending
    b.send(b"message")
    assert ring.wait(5) is op
    assert op.res == 7 and buf == b"message\x00"
    assert op.result is None  # an unnamed socket pair reports no address
    assert op.ancdata == [] and op.msg_flags == 0


def test_recvmsg_truncated_datagram(ring):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        buf = bytearray(4)
        op = ring.submit_recvmsg(a, buf)
        b.send(b"0123456789")
        assert ring.wait(5) is op
        assert op.res == 4 and buf == b"0123"
        assert op.msg_flags & socket.MSG_TRUNC


def test_recvmsg_scatter(ring, pair):
    a, b = pair
    b1, b2 = bytearray(3), bytearray(5)
    op = ring.submit_recvmsg(a, [b1, memoryview(b2)])
    b.send(b"abcdefgh")
    assert ring.wait(5) is op
    assert op.res == 8 and b1 == b"abc" and b2 == b"defgh"


def test_sendto_udp(ring):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        tx.bind(("127.0.0.1", 0))
        op = ring.submit_sendto(tx, b"datagram", rx.getsockname(), "s")
        assert op.kind == K.COMPLETION_KIND_SENDTO
        assert ring.wait(5) is op and op.res == 8 and op.result == 8
        assert rx.recvfrom(64) == (b"datagram", tx.getsockname())


def test_sendmsg_gather(ring, pair):
    a, b = pair
    parts = [b"ab", bytearray(b"cd"), memoryview(b"efgh")[1:3]]
    op = ring.submit_sendmsg(a, parts, None, "g")
    assert op.kind == K.COMPLETION_KIND_SENDMSG
    assert ring.wait(5) is op and op.res == 6 and op.result == 6
    assert b.recv(16) == b"abcdfg"


def test_sendmsg_single_buffer_and_empty_sequence(ring, pair):
    a, b = pair
    op = ring.submit_sendmsg(a, b"single")
    assert ring.wait(5) is op and op.res == 6
    assert b.recv(16) == b"single"
    op = ring.submit_sendmsg(a, [])
    assert ring.wait(5) is op and op.res == 0


def test_sendmsg_zc_udp(ring):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        op = ring.submit_sendmsg_zc(tx, [b"zc", b"msg"], rx.getsockname())
        assert op.kind == K.COMPLETION_KIND_SENDMSG_ZC
        assert ring.wait(5) is op and op.res == 5
        assert op.flags & K.IORING_CQE_F_MORE
        wait_released(ring)
        assert rx.recv(16) == b"zcmsg"


def test_accept(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        op = ring.submit_accept(listener, "acc")
        assert op.kind == K.COMPLETION_KIND_ACCEPT
        with socket.create_connection(listener.getsockname()) as client:
            assert ring.wait(5) is op
            fd, addr = op.result
            try:
                assert op.res == fd and fd >= 0
                assert addr == client.getsockname()
                assert os.get_blocking(fd) is True
                with socket.socket(fileno=os.dup(fd)) as conn:
                    client.send(b"hi")
                    assert conn.recv(2) == b"hi"
            finally:
                os.close(fd)


def test_accept_flags_pass_through(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        op = ring.submit_accept(listener, None, socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        with socket.create_connection(listener.getsockname()):
            assert ring.wait(5) is op
            fd = op.result[0]
            try:
                assert os.get_blocking(fd) is False
                assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            finally:
                os.close(fd)
        op = ring.submit_accept(listener)
        with socket.create_connection(listener.getsockname()):
            assert ring.wait(5) is op
            fd = op.result[0]
            try:
                assert os.get_blocking(fd) is True
                assert not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            finally:
                os.close(fd)


def test_accept_multishot(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        h = ring.submit_accept_multishot(listener, "am", socket.SOCK_NONBLOCK, sequence=10)
        assert h.kind == K.COMPLETION_KIND_ACCEPT_MULTISHOT
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        try:
            legs = [ring.wait(5) for _ in clients]
            fds = [leg.result for leg in legs]
            try:
                assert [leg.sequence for leg in legs] == [10, 11, 12]
                assert all(leg.more and leg.user_data == "am" for leg in legs)
                assert all(leg.res == leg.result and leg.result >= 0 for leg in legs)
                assert len(set(fds)) == 3
                assert all(os.get_blocking(fd) is False for fd in fds)
                peers = sorted(socket.socket(fileno=os.dup(fd)).getpeername() for fd in fds)
                assert peers == sorted(c.getsockname() for c in clients)
            finally:
                for fd in fds:
                    os.close(fd)
            cancel = ring.submit_cancel(h)
            got = wait_done(ring, h)
            final = next(c for c in got if c is not cancel)
            assert final.res == -errno.ECANCELED and final.more is False and final.sequence == 13
            assert final.result is None
            assert h.done and h.res == -errno.ECANCELED
            wait_done(ring, cancel)
            assert cancel.res == 0
        finally:
            for c in clients:
                c.close()


def test_connect(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as s:
        op = ring.submit_connect(s, listener.getsockname(), "c")
        assert op.kind == K.COMPLETION_KIND_CONNECT
        assert ring.wait(5) is op
        assert op.res == 0 and op.result is None and op.user_data == "c"
        conn, addr = listener.accept()
        with conn:
            assert addr == s.getsockname()


def test_connect_refused(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        addr = listener.getsockname()
    with socket.socket() as s:
        op = ring.submit_connect(s, addr)
        assert ring.wait(5) is op
        assert op.res == -errno.ECONNREFUSED and op.result is None


def test_shutdown(ring, pair):
    a, b = pair
    op = ring.submit_shutdown(a, socket.SHUT_WR, "sh")
    assert op.kind == K.COMPLETION_KIND_SHUTDOWN
    assert ring.wait(5) is op
    assert op.res == 0 and op.result is None
    assert b.recv(1) == b""  # EOF


def test_close(ring):
    s = socket.socket()
    fd = s.detach()
    op = ring.submit_close(fd, "cl")
    assert op.kind == K.COMPLETION_KIND_CLOSE
    assert ring.wait(5) is op
    assert op.res == 0 and op.result is None
    with pytest.raises(OSError) as e:
        os.fstat(fd)
    assert e.value.errno == errno.EBADF


@pytest.mark.parametrize("flags", [0, socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC])
def test_socket(ring, flags):
    op = ring.submit_socket(socket.AF_INET, socket.SOCK_DGRAM, 0, flags, "so")
    assert op.kind == K.COMPLETION_KIND_SOCKET
    assert ring.wait(5) is op
    fd = op.result
    assert fd == op.res and fd >= 0
    with socket.socket(fileno=fd) as s:
        assert s.family == socket.AF_INET and s.type == socket.SOCK_DGRAM
        assert os.get_blocking(fd) is (flags == 0)
        assert bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) is (flags != 0)


def test_socket_error(ring):
    op = ring.submit_socket(9999, socket.SOCK_STREAM)
    assert ring.wait(5) is op
    assert op.res == -errno.EAFNOSUPPORT and op.result is None


def test_socket_created_into_a_closed_ring_is_closed(uring):
    with no_fd_leak():
        r = ringio.Ring()
        ops = [r.submit_socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(4)]
        r.close()  # the completions were never reaped: the core closes the fds
        assert all(not op.done for op in ops)


# ---- cancellation of any pending operation -------------------------------------------------


def _cancel(ring, target):
    c = ring.submit_cancel(target, "cancel")
    wait_done(ring, target)
    wait_done(ring, c)
    assert c.res == 0
    assert target.res == -errno.ECANCELED
    assert target.result is None
    assert ring.inflight == 0


def test_cancel_recv_releases_the_buffer(ring, pair):
    a, _ = pair
    buf = bytearray(8)
    op = ring.submit_recv(a, buf)
    with pytest.raises(BufferError):
        buf.extend(b"x")
    _cancel(ring, op)
    buf.extend(b"x")  # the export ended with the final completion


def test_cancel_recvmsg(ring, pair):
    a, _ = pair
    buf = bytearray(8)
    op = ring.submit_recvmsg(a, buf, ancbufsize=64)
    _cancel(ring, op)
    assert op.ancdata is None
    buf.clear()


def test_cancel_send_blocked_on_a_full_socket(ring, pair):
    a, _ = pair
    fill_send_buffer(a, b"x")
    data = bytearray(b"y" * 65536)
    op = ring.submit_send(a, data)
    assert ring.wait(0.05) is None  # parked: the peer's buffer is full
    _cancel(ring, op)
    data.clear()


def test_cancel_accept_and_connect_pending(ring):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        _cancel(ring, ring.submit_accept(listener))


def test_cancel_recv_multishot(ring, pair):
    a, b = pair
    h = ring.submit_recv_multishot(a, 16, 2)
    b.send(b"x")
    leg = ring.wait(5)
    assert leg.result == b"x" and leg.more
    ring.submit_cancel(h)
    got = wait_done(ring, h)
    final = next(c for c in got if c.kind == K.COMPLETION_KIND_RECV_MULTISHOT)
    assert final.res == -errno.ECANCELED and final.more is False and final.sequence == 1
    assert final.result is None
    wait_released(ring)


def test_cancel_poll_oneshot_and_multishot(ring, pair):
    a, _ = pair
    _cancel(ring, ring.submit_poll(a, select.POLLIN))
    h = ring.submit_poll(a, select.POLLIN, multishot=True)
    ring.submit_cancel(h)
    wait_done(ring, h)
    assert h.res == -errno.ECANCELED and h.more is False
    wait_released(ring)


def test_cancel_finished_socket_operation_is_enoent(ring, pair):
    a, b = pair
    op = ring.submit_send(a, b"x")
    assert ring.wait(5) is op
    c = ring.submit_cancel(op)
    assert ring.wait(5) is c and c.res == -errno.ENOENT
    assert b.recv(1) == b"x"


# ---- batching ---------------------------------------------------------------------------------


def test_batch_many_socket_submits_one_enter(ring, pair):
    a, b = pair
    b.setblocking(False)
    n = 6  # the default ring has 8 SQ entries: all fit, so nothing is flushed early
    with ring.batch():
        ops = [ring.submit_send(a, bytes([65 + i]) * 3, i) for i in range(n)]
        assert ring.staged == n
        with pytest.raises(BlockingIOError):
            b.recv(64)  # nothing reached the kernel yet
    assert ring.staged == 0
    got = []
    for _ in range(n):
        got.append(ring.wait(5))
    assert sorted(c.user_data for c in got) == list(range(n))
    assert all(op.res == 3 for op in ops)
    b.setblocking(True)
    data = b""
    while len(data) < 3 * n:
        data += b.recv(64)
    assert data == b"AAABBBCCCDDDEEEFFF"
