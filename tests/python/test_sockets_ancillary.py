"""Ancillary data: SCM_RIGHTS (and SCM_CREDENTIALS) through sendmsg/recvmsg, in
both directions against the socket module; received descriptors nobody sees
are closed."""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
import time

import pytest
import ringio
from sockets_support import open_fds, wait_done

SOL, RIGHTS = socket.SOL_SOCKET, socket.SCM_RIGHTS


pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def _fds_of(ancdata) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancdata:
        assert (level, kind) == (SOL, RIGHTS)
        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


@contextlib.contextmanager
def _received_fds(ancdata):
    """The descriptors of SCM_RIGHTS ancdata, closed on leaving the block."""
    got = _fds_of(ancdata)
    try:
        yield got
    finally:
        for fd in got:
            os.close(fd)


@pytest.fixture
def pipe():
    """(r, w): the two ends of a pipe, closed after the test."""
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def _same_file(fd1: int, fd2: int) -> bool:
    s1, s2 = os.fstat(fd1), os.fstat(fd2)
    return (s1.st_dev, s1.st_ino) == (s2.st_dev, s2.st_ino)


def test_sendmsg_scm_rights_to_socket_recvmsg(ring, pair, pipe):
    a, b = pair
    r, w = pipe
    op = ring.submit_sendmsg(a, [b"fds"], None, "s",
                             ancdata=[(SOL, RIGHTS, array.array("i", [r, w]))])
    wait_done(ring, op)
    assert op.res == 3
    msg, anc, flags, _ = b.recvmsg(16, socket.CMSG_SPACE(2 * 4))
    assert msg == b"fds" and flags == 0
    with _received_fds(anc) as got:
        assert len(got) == 2
        assert _same_file(got[0], r) and _same_file(got[1], w)
        os.write(got[1], b"through the passed fd")
        assert os.read(r, 64) == b"through the passed fd"


def test_socket_sendmsg_to_recvmsg_scm_rights(ring, pair, pipe):
    a, b = pair
    r, w = pipe
    buf = bytearray(8)
    op = ring.submit_recvmsg(b, buf, ancbufsize=socket.CMSG_SPACE(3 * 4))
    a.sendmsg([b"three"], [(SOL, RIGHTS, array.array("i", [r, w, r]))])
    wait_done(ring, op)
    assert op.res == 5 and buf[:5] == b"three"
    assert op.msg_flags == 0
    with _received_fds(op.ancdata) as got:
        assert len(got) == 3 and len(set(got)) == 3  # new descriptors each
        assert _same_file(got[0], r) and _same_file(got[1], w) and _same_file(got[2], r)


def test_ring_to_ring_scm_rights_with_cloexec(ring, pair, pipe):
    import fcntl

    a, b = pair
    r, w = pipe
    rop = ring.submit_recvmsg(b, bytearray(4), None, socket.MSG_CMSG_CLOEXEC,
                              ancbufsize=socket.CMSG_SPACE(4))
    sop = ring.submit_sendmsg(a, b"x", ancdata=[(SOL, RIGHTS, struct.pack("i", w))])
    wait_done(ring, sop)
    wait_done(ring, rop)
    with _received_fds(rop.ancdata) as (fd,):
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert _same_file(fd, w)


def test_control_buffer_too_small_sets_ctrunc(ring, pair, pipe):
    a, b = pair
    r, w = pipe
    # Room for exactly one descriptor.
    op = ring.submit_recvmsg(b, bytearray(4), ancbufsize=socket.CMSG_LEN(4))
    a.sendmsg([b"x"], [(SOL, RIGHTS, array.array("i", [r, w, r, w]))])
    wait_done(ring, op)
    assert op.msg_flags & socket.MSG_CTRUNC
    # The ones that fit are ours; the kernel closed the rest.
    with _received_fds(op.ancdata) as got:
        assert len(got) == 1


def test_no_ancbufsize_drops_descriptors(ring, pair, pipe):
    a, b = pair
    r, _ = pipe
    op = ring.submit_recvmsg(b, bytearray(4))
    a.sendmsg([b"x"], [(SOL, RIGHTS, array.array("i", [r]))])
    wait_done(ring, op)
    assert op.ancdata == []
    assert op.msg_flags & socket.MSG_CTRUNC


def test_scm_credentials(ring):
    """On a datagram pair.  (On a stream pair, a recvmsg that is armed before
    the data arrives gets no or zeroed credentials from the kernel: Linux's
    unix stream receive writes credentials on its first, empty, attempt.)"""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        b.setsockopt(SOL, socket.SO_PASSCRED, 1)
        op = ring.submit_recvmsg(b, bytearray(4), ancbufsize=socket.CMSG_SPACE(12))
        creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
        sop = ring.submit_sendmsg(a, b"cred", ancdata=[(SOL, socket.SCM_CREDENTIALS, creds)])
        wait_done(ring, sop)
        wait_done(ring, op)
        assert op.ancdata == [(SOL, socket.SCM_CREDENTIALS, creds)]
        assert op.msg_flags == 0


# Kernel only: the kernel receives while nobody waits; the sim only progresses inside enter
# (test_sim_scripting covers the sim side).
@pytest.mark.kernel
def test_received_fds_nobody_sees_are_closed(uring, pair):
    """The receive completed (the kernel installed the descriptors in our fd
    table) but the ring is closed before the completion is delivered: the
    descriptors are closed, not leaked."""
    a, b = pair
    r = ringio.Ring()
    base = set(open_fds())
    op = r.submit_recvmsg(b, bytearray(4), ancbufsize=socket.CMSG_SPACE(2 * 4))
    p1, p2 = os.pipe()
    a.sendmsg([b"x"], [(SOL, RIGHTS, array.array("i", [p1, p2]))])
    os.close(p1)
    os.close(p2)
    deadline = time.monotonic() + 5
    while len(set(open_fds()) - base) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(set(open_fds()) - base) == 2  # installed by the kernel, not yet seen
    r.close()
    assert not op.done and op.ancdata is None
    assert set(open_fds()) - base == set()


def test_received_fds_of_a_delivered_completion_are_the_users(ring, pair):
    a, b = pair
    op = ring.submit_recvmsg(b, bytearray(4), ancbufsize=socket.CMSG_SPACE(4))
    r, w = os.pipe()
    a.sendmsg([b"x"], [(SOL, RIGHTS, array.array("i", [w]))])
    os.close(w)
    wait_done(ring, op)
    ring.close()
    (fd,) = _fds_of(op.ancdata)
    os.write(fd, b"still open")  # closing the ring did not close it
    assert os.read(r, 16) == b"still open"
    os.close(fd)
    os.close(r)


def test_recvmsg_with_ancbuf_and_no_ancillary_data(ring, pair):
    a, b = pair
    op = ring.submit_recvmsg(b, bytearray(4), ancbufsize=64)
    a.send(b"plain")
    wait_done(ring, op)
    assert op.res == 4 and op.ancdata == [] and op.msg_flags == 0


@pytest.mark.parametrize(
    "ancdata",
    [
        5,
        "text",
        [(SOL, RIGHTS)],
        [(SOL, RIGHTS, 5)],
        [(SOL, RIGHTS, "str")],
        [("x", RIGHTS, b"")],
        [[SOL, RIGHTS, b""]],
        [(SOL, RIGHTS, b"", 1)],
        [(SOL, RIGHTS, memoryview(bytearray(8))[::2])],
    ],
    ids=["int", "str", "short", "int-data", "str-data", "str-level", "list-item", "long",
         "non-contiguous"],
)
def test_malformed_ancdata(ring, pair, ancdata):
    a, _ = pair
    with pytest.raises(TypeError):
        ring.submit_sendmsg(a, b"x", ancdata=ancdata)
    with pytest.raises(TypeError):
        ring.submit_sendmsg_zc(a, b"x", ancdata=ancdata)
    assert ring.inflight == 0


def test_ancdata_bad_descriptor_fails_in_the_completion(ring, pair):
    a, _ = pair
    from sockets_support import closed_fd

    op = ring.submit_sendmsg(a, b"x", ancdata=[(SOL, RIGHTS, struct.pack("i", closed_fd()))])
    wait_done(ring, op)
    assert op.res == -9  # -EBADF from the kernel


def test_ancbufsize_validation(ring, pair):
    with pytest.raises(ValueError):
        ring.submit_recvmsg(pair[0], bytearray(4), ancbufsize=-1)
    with pytest.raises(ValueError):
        ring.submit_recvmsg(pair[0], bytearray(4), ancbufsize=1 << 21)
    with pytest.raises(TypeError):
        ring.submit_recvmsg(pair[0], bytearray(4), ancbufsize="64")
