"""Buffer ownership: any C-contiguous buffer, writable for receives; the export
is held until the final completion; outgoing payloads are never copied."""

from __future__ import annotations

import array
import ctypes
import mmap
import socket
import sys

import pytest
from sockets_support import drain_until_done, fill_send_buffer, wait_done, wait_released

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def _writable_buffers():
    m = mmap.mmap(-1, 8)
    return {
        "bytearray": bytearray(8),
        "memoryview": memoryview(bytearray(8)),
        "memoryview-slice": memoryview(bytearray(16))[4:12],
        "array-i": array.array("i", [0, 0]),
        "mmap": m,
        "ctypes": (ctypes.c_char * 8)(),
        "memoryview-2d": memoryview(bytearray(8)).cast("B", (2, 4)),
    }


@pytest.mark.parametrize("kind", list(_writable_buffers()))
def test_recv_into_any_writable_contiguous_buffer(ring, pair, kind):
    a, b = pair
    buf = _writable_buffers()[kind]
    try:
        op = ring.submit_recv(a, buf)
        b.send(b"ABCDEFGH")
        assert ring.wait(5) is op and op.res == 8
        assert bytes(memoryview(buf).cast("B")) == b"ABCDEFGH"
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()


@pytest.mark.parametrize("method", ["submit_send", "submit_sendmsg", "submit_send_zc"])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "2d"])
def test_send_any_contiguous_buffer(ring, method, kind):
    a, b = socket.socketpair() if method != "submit_send_zc" else _tcp()
    with a, b:
        data = {
            "bytes": b"12345678",
            "bytearray": bytearray(b"12345678"),
            "memoryview": memoryview(b"xx12345678")[2:],
            "array": array.array("B", b"12345678"),
            "2d": memoryview(bytearray(b"12345678")).cast("B", (2, 4)),
        }[kind]
        op = getattr(ring, method)(a, data)
        assert ring.wait(5) is op and op.res == 8
        wait_released(ring)
        assert b.recv(16) == b"12345678"


def _tcp():
    from sockets_support import tcp_pair

    return tcp_pair()


NON_CONTIGUOUS = memoryview(bytearray(16))[::2]


@pytest.mark.parametrize(
    "call",
    [
        lambda r, fd: r.submit_recv(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_send(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_send_zc(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_recvmsg(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_recvmsg(fd, [bytearray(2), NON_CONTIGUOUS]),
        lambda r, fd: r.submit_sendmsg(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_sendmsg(fd, [b"ok", NON_CONTIGUOUS]),
        lambda r, fd: r.submit_sendmsg_zc(fd, NON_CONTIGUOUS),
        lambda r, fd: r.submit_sendto(fd, NON_CONTIGUOUS, ("127.0.0.1", 9)),
    ],
    ids=["recv", "send", "send_zc", "recvmsg", "recvmsg-seq", "sendmsg", "sendmsg-seq",
         "sendmsg_zc", "sendto"],
)
def test_non_contiguous_buffer_is_refused(ring, pair, call):
    a, _ = pair
    with pytest.raises(TypeError, match="C-contiguous") as e:
        call(ring, a)
    # CPython's own complaint is kept as the cause.
    assert isinstance(e.value.__cause__, BufferError)
    assert "not C-contiguous" in str(e.value.__cause__)
    assert ring.inflight == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda r, fd, buf: r.submit_recv(fd, buf),
        lambda r, fd, buf: r.submit_recvmsg(fd, buf),
        lambda r, fd, buf: r.submit_recvmsg(fd, [bytearray(4), buf]),
    ],
    ids=["recv", "recvmsg", "recvmsg-seq"],
)
@pytest.mark.parametrize("buf", [b"readonly", memoryview(b"readonly"), memoryview(bytearray(8)).toreadonly()],
                         ids=["bytes", "memoryview-of-bytes", "readonly-view"])
def test_read_only_buffer_for_receive_is_refused(ring, pair, call, buf):
    a, _ = pair
    with pytest.raises(TypeError, match="writable"):
        call(ring, a, buf)
    assert ring.inflight == 0


@pytest.mark.parametrize("obj", ["text", 123, None, [1, 2]], ids=["str", "int", "None", "ints"])
def test_not_a_buffer_is_refused(ring, pair, obj):
    a, _ = pair
    for method in (ring.submit_send, ring.submit_recv, ring.submit_sendmsg, ring.submit_recvmsg,
                   ring.submit_send_zc):
        with pytest.raises(TypeError, match="bytes-like"):
            method(a, obj)
    assert ring.inflight == 0


# ---- the export is held until the final completion ------------------------------------------


def test_recv_export_held_until_completion(ring, pair):
    a, b = pair
    buf = bytearray(8)
    op = ring.submit_recv(a, buf)
    for mutate in (lambda: buf.extend(b"x"), buf.clear, lambda: buf.__delitem__(0)):
        with pytest.raises(BufferError):
            mutate()
    b.send(b"12345678")
    assert ring.wait(5) is op
    buf.clear()  # released with the completion


def test_send_export_held_while_the_kernel_waits(ring, pair):
    a, b = pair
    fill_send_buffer(a)
    data = bytearray(b"late" * 1024)
    op = ring.submit_send(a, data)
    assert ring.wait(0.05) is None
    with pytest.raises(BufferError):
        data.clear()
    drain_until_done(ring, op, b)
    assert op.res == 4096
    data.clear()


def test_sendmsg_every_buffer_of_a_sequence_is_held(ring, pair):
    a, b = pair
    fill_send_buffer(a)
    parts = [bytearray(b"one"), bytearray(b"two"), bytearray(b"three")]
    op = ring.submit_sendmsg(a, parts)
    for p in parts:
        with pytest.raises(BufferError):
            p.extend(b"!")
    drain_until_done(ring, op, b)
    assert op.res == 11
    for p in parts:
        p.extend(b"!")


def test_recvmsg_every_buffer_of_a_sequence_is_held(ring, pair):
    a, b = pair
    parts = [bytearray(2), bytearray(2)]
    op = ring.submit_recvmsg(a, parts)
    for p in parts:
        with pytest.raises(BufferError):
            p.clear()
    b.send(b"wxyz")
    wait_done(ring, op)
    assert parts == [b"wx", b"yz"]
    for p in parts:
        p.clear()


def test_submitted_bytes_object_is_referenced_not_copied(ring, pair):
    a, b = pair
    payload = b"p" * 100_000  # larger than the socket buffer: the send parks
    before = sys.getrefcount(payload)
    op = ring.submit_send(a, payload)
    assert sys.getrefcount(payload) == before + 1  # the export references it
    got = drain_until_done(ring, op, b)
    wait_released(ring)
    assert sys.getrefcount(payload) == before
    b.setblocking(True)
    while len(got) < op.res:
        got += b.recv(1 << 20)
    assert bytes(got) == payload[: op.res]


def test_outgoing_payload_is_not_copied(ring, pair):
    """The kernel reads the caller's memory when it sends, not a snapshot taken
    at submit: bytes changed in place while the send is parked are the ones
    that arrive."""
    a, b = pair
    fill_send_buffer(a)
    data = bytearray(b"before!!")
    op = ring.submit_send(a, data)
    assert ring.wait(0.05) is None  # parked behind the full socket buffer
    data[:] = b"changed!"  # same size: allowed while exported
    received = drain_until_done(ring, op, b)
    b.setblocking(True)
    while not received.endswith(b"changed!") and len(received) < (1 << 24):
        received += b.recv(1 << 20)
    assert received.endswith(b"changed!")
    assert b"before!!" not in received


def test_large_recv_and_send_round_trip(ring, pair):
    """1 MiB through partial sends and receives, every byte checked."""
    a, b = pair
    payload = bytes(range(256)) * 4096
    into = bytearray(len(payload))
    out_view, in_view = memoryview(payload), memoryview(into)
    sent = received = 0
    send = ring.submit_send(a, out_view, "send")
    recv = ring.submit_recv(b, in_view, "recv")
    while send is not None or recv is not None:
        for c in ring.wait_many(timeout=5):
            assert c.res > 0, c
            if c.user_data == "send":
                sent += c.res
                send = ring.submit_send(a, out_view[sent:], "send") if sent < len(payload) else None
            else:
                received += c.res
                recv = (ring.submit_recv(b, in_view[received:], "recv")
                        if received < len(payload) else None)
    assert sent == received == len(payload)
    assert into == payload
    out_view.release()
    in_view.release()
