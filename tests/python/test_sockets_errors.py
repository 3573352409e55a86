"""Bad input for every socket submit method: refused at submit with
TypeError / ValueError (nothing reaches the kernel), a closed fd reaches the
kernel and fails in the completion (res == -EBADF), a closed ring raises
RingClosed."""

from __future__ import annotations

import errno
import socket

import pytest
import ringio
from sockets_support import closed_fd, wait_done, wait_released

ADDR = ("127.0.0.1", 9)
RO = b"read-only"
NONCONTIG = memoryview(bytearray(8))[::2]


pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


@pytest.fixture
def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield s
    s.close()


# (method, args with "FD" standing for the fd, exception, message fragment)
BAD = [
    # submit_recv
    ("submit_recv", ("FD",), TypeError, "missing required argument 'buf'"),
    ("submit_recv", ("FD", RO), TypeError, "writable"),
    ("submit_recv", ("FD", NONCONTIG), TypeError, "C-contiguous"),
    ("submit_recv", ("FD", "str"), TypeError, "bytes-like"),
    ("submit_recv", (-1, bytearray(1)), ValueError, "negative"),
    ("submit_recv", ("x", bytearray(1)), TypeError, "fileno"),
    ("submit_recv", (1.5, bytearray(1)), TypeError, ""),
    ("submit_recv", ("FD", bytearray(1), None, -1), ValueError, "flags"),
    ("submit_recv", ("FD", bytearray(1), None, "0"), TypeError, "flags must be an integer"),
    ("submit_recv", ("FD", bytearray(1), None, 0, 1), TypeError, "at most 4 positional"),
    # submit_recv_multishot
    ("submit_recv_multishot", ("FD", 16), TypeError, "buffer_count"),
    ("submit_recv_multishot", ("FD", 16, 3), ValueError, "power of two"),
    ("submit_recv_multishot", ("FD", 0, 4), ValueError, "buffer_size"),
    ("submit_recv_multishot", ("FD", 16.0, 4), TypeError, "buffer_size must be an integer"),
    ("submit_recv_multishot", ("FD", 16, 4, None, 0, 0), TypeError, "at most 5 positional"),
    ("submit_recv_multishot", (-3, 16, 4), ValueError, "negative"),
    ("submit_recv_multishot", ("FD", 16, 4), {"sequence": -1}, ValueError, "sequence"),
    ("submit_recv_multishot", ("FD", 16, 4), {"sequence": 1 << 32}, ValueError, "sequence"),
    # submit_send / submit_send_zc
    ("submit_send", ("FD",), TypeError, "missing required argument 'data'"),
    ("submit_send", ("FD", "text"), TypeError, "bytes-like"),
    ("submit_send", ("FD", NONCONTIG), TypeError, "C-contiguous"),
    ("submit_send", ("FD", b"x", None, 1 << 40), ValueError, "flags"),
    ("submit_send_zc", ("FD", 5), TypeError, "bytes-like"),
    ("submit_send_zc", ("FD", b"x", None, 0, 1 << 8), ValueError, "zc_flags"),
    ("submit_send_zc", ("FD", b"x", None, 0, -1), ValueError, "zc_flags"),
    # submit_recvmsg
    ("submit_recvmsg", ("FD", RO), TypeError, "writable"),
    ("submit_recvmsg", ("FD", [bytearray(1), RO]), TypeError, r"buf\[1\]"),
    ("submit_recvmsg", ("FD", 7), TypeError, "sequence of them"),
    ("submit_recvmsg", ("FD", bytearray(1)), {"ancbufsize": -1}, ValueError, "ancbufsize"),
    ("submit_recvmsg", ("FD", bytearray(1), None, 0, 64), TypeError, "at most 4 positional"),
    ("submit_recvmsg", ("FD", [bytearray(1)] * 1025), ValueError, "at most 1024"),
    # submit_sendto
    ("submit_sendto", ("FD", b"x"), TypeError, "missing required argument 'address'"),
    ("submit_sendto", ("FD", b"x", None), TypeError, "address is required"),
    ("submit_sendto", ("FD", [b"x"], ADDR), TypeError, "bytes-like"),
    ("submit_sendto", ("FD", b"x", ("127.0.0.1",)), TypeError, "(host, port)"),
    ("submit_sendto", ("FD", b"x", ("localhost.invalid", 1)), ValueError, "numeric"),
    ("submit_sendto", ("FD", b"x", ("127.0.0.1", 1 << 16)), OverflowError, "port"),
    # submit_sendmsg / submit_sendmsg_zc
    ("submit_sendmsg", ("FD", "text"), TypeError, "not str"),
    ("submit_sendmsg", ("FD", [b"ok", "text"]), TypeError, r"data\[1\]"),
    ("submit_sendmsg", ("FD", b"x", "127.0.0.1"), TypeError, "(host, port)"),
    ("submit_sendmsg", ("FD", b"x"), {"ancdata": [(1, 1)]}, TypeError, "ancillary"),
    ("submit_sendmsg", ("FD", b"x"), {"ancdata": 3}, TypeError, "ancdata"),
    ("submit_sendmsg", ("FD", b"x"), {"bogus": 1}, TypeError, "unexpected keyword"),
    ("submit_sendmsg", ("FD", [b"x"] * 1025), ValueError, "at most 1024"),
    ("submit_sendmsg_zc", ("FD", b"x"), {"zc_flags": 4}, ValueError, "zc_flags"),
    ("submit_sendmsg_zc", ("FD", b"x"), {"ancdata": [(1, 1, 5)]}, TypeError, "ancillary"),
    ("submit_sendmsg_zc", ("FD", NONCONTIG), TypeError, "C-contiguous"),
    # submit_accept / submit_accept_multishot
    ("submit_accept", ("FD", None, 1), ValueError, "SOCK_NONBLOCK"),
    ("submit_accept", (), TypeError, "missing required argument 'fd'"),
    ("submit_accept", (-1,), ValueError, "negative"),
    ("submit_accept_multishot", ("FD", None, 1 << 3), ValueError, "SOCK_CLOEXEC"),
    ("submit_accept_multishot", ("FD", None, 0, 5), TypeError, "at most 3 positional"),
    ("submit_accept_multishot", ("FD",), {"sequence": "1"}, TypeError, "sequence"),
    # submit_connect
    ("submit_connect", ("FD",), TypeError, "missing required argument 'address'"),
    ("submit_connect", ("FD", None), TypeError, "(host, port)"),
    ("submit_connect", ("FD", ("127.0.0.1", "port")), TypeError, "port"),
    ("submit_connect", ("FD", ("::1", 80)), ValueError, "IPv4"),
    ("submit_connect", (-2, ADDR), ValueError, "negative"),
    # submit_shutdown
    ("submit_shutdown", ("FD", 3), ValueError, "SHUT_RD"),
    ("submit_shutdown", ("FD", -1), ValueError, "SHUT_RD"),
    ("submit_shutdown", ("FD", "wr"), TypeError, "how must be an integer"),
    ("submit_shutdown", ("FD",), TypeError, "missing required argument 'how'"),
    # submit_close
    ("submit_close", (-1,), ValueError, "negative"),
    ("submit_close", (None,), TypeError, "fileno"),
    # submit_socket
    ("submit_socket", (socket.AF_INET,), TypeError, "missing required argument 'type'"),
    ("submit_socket", (-1, socket.SOCK_STREAM), ValueError, "domain"),
    ("submit_socket", (socket.AF_INET, socket.SOCK_STREAM, -1), ValueError, "protocol"),
    ("submit_socket", (socket.AF_INET, socket.SOCK_STREAM, 0, 1), ValueError, "SOCK_NONBLOCK"),
    ("submit_socket", (socket.AF_INET, "stream"), TypeError, "type must be an integer"),
]


def _ids():
    seen: dict[str, int] = {}
    out = []
    for entry in BAD:
        n = seen.get(entry[0], 0)
        seen[entry[0]] = n + 1
        out.append(f"{entry[0]}-{n}")
    return out


@pytest.mark.parametrize("entry", BAD, ids=_ids())
def test_bad_input_is_refused_at_submit(ring, sock, entry):
    if isinstance(entry[2], dict):
        method, args, kwargs, exc, fragment = entry
    else:
        method, args, exc, fragment = entry
        kwargs = {}
    args = tuple(sock if a == "FD" else a for a in args)
    before = ring.stats()["submitted"]
    with pytest.raises(exc, match=fragment if fragment else None):
        getattr(ring, method)(*args, **kwargs)
    assert ring.inflight == 0
    assert ring.stats()["submitted"] == before


# Every method, given a descriptor that is not open: the operation reaches the
# kernel, which answers -EBADF in the completion (not an exception).
CLOSED_FD_CALLS = {
    "submit_recv": lambda r, fd: r.submit_recv(fd, bytearray(4)),
    "submit_recv_multishot": lambda r, fd: r.submit_recv_multishot(fd, 16, 2),
    "submit_send": lambda r, fd: r.submit_send(fd, b"x"),
    "submit_send_zc": lambda r, fd: r.submit_send_zc(fd, b"x"),
    "submit_recvmsg": lambda r, fd: r.submit_recvmsg(fd, bytearray(4), ancbufsize=32),
    "submit_sendto": lambda r, fd: r.submit_sendto(fd, b"x", ADDR),
    "submit_sendmsg": lambda r, fd: r.submit_sendmsg(fd, [b"x"], ADDR),
    "submit_sendmsg_zc": lambda r, fd: r.submit_sendmsg_zc(fd, [b"x"], ADDR),
    "submit_accept": lambda r, fd: r.submit_accept(fd),
    "submit_accept_multishot": lambda r, fd: r.submit_accept_multishot(fd),
    "submit_connect": lambda r, fd: r.submit_connect(fd, ADDR),
    "submit_shutdown": lambda r, fd: r.submit_shutdown(fd, socket.SHUT_RDWR),
    "submit_close": lambda r, fd: r.submit_close(fd),
}


@pytest.mark.parametrize("method", list(CLOSED_FD_CALLS))
def test_closed_fd_fails_in_the_completion(ring, method):
    op = CLOSED_FD_CALLS[method](ring, closed_fd())
    got = wait_done(ring, op)
    assert op.res == -errno.EBADF
    assert op.result is None
    assert op.more is False
    if op.kind in (ringio.COMPLETION_KIND_RECV_MULTISHOT, ringio.COMPLETION_KIND_ACCEPT_MULTISHOT):
        assert len(got) == 1 and got[0].res == -errno.EBADF and got[0].sequence == 0
    wait_released(ring)


NOT_A_SOCKET = ["submit_recv", "submit_send", "submit_recvmsg", "submit_sendto",
                "submit_sendmsg", "submit_accept", "submit_connect", "submit_shutdown"]


@pytest.mark.parametrize("method", NOT_A_SOCKET)
def test_not_a_socket_fails_in_the_completion(ring, method, tmp_path):
    with open(tmp_path / "f", "wb") as f:
        op = CLOSED_FD_CALLS[method](ring, f.fileno())
        wait_done(ring, op)
        assert op.res == -errno.ENOTSOCK


@pytest.mark.parametrize("method", list(CLOSED_FD_CALLS) + ["submit_socket"])
def test_closed_ring_raises_ring_closed(uring, method):
    ring = ringio.Ring()
    ring.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
            pytest.raises(ringio.RingClosed):
        if method == "submit_socket":
            ring.submit_socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            CLOSED_FD_CALLS[method](ring, s.fileno())


def test_closed_socket_object_is_a_value_error(ring):
    s = socket.socket()
    s.close()
    with pytest.raises(ValueError):
        ring.submit_recv(s, bytearray(1))  # fileno() == -1


def test_arguments_by_keyword(ring):
    a, b = socket.socketpair()
    with a, b:
        op = ring.submit_send(fd=a, data=b"kw", user_data="u", flags=0)
        buf = bytearray(2)
        op2 = ring.submit_recv(buf=buf, fd=b)
        wait_done(ring, op)
        wait_done(ring, op2)
        assert op.user_data == "u" and buf == b"kw"
        with pytest.raises(TypeError, match="multiple values"):
            ring.submit_send(a, b"x", fd=a)
