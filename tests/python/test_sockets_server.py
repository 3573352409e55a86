"""An echo server on one Ring: accept_multishot + recv_multishot + send, served
by a wait_many() loop in the main thread, against 200 blocking clients in a
thread pool.  Every byte is checked on both sides."""

from __future__ import annotations

import errno
import random
import socket
import struct
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import pytest
import ringio

N_CLIENTS = 200
HEADER = struct.Struct("!HI")  # client id, payload length (header included)


pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def payload_for(client_id: int) -> bytes:
    rng = random.Random(client_id)
    n = rng.randrange(2000, 6000)
    body = rng.randbytes(n - HEADER.size)
    return HEADER.pack(client_id, n) + body


def run_client(address, client_id: int) -> int:
    data = payload_for(client_id)
    with socket.create_connection(address, timeout=30) as s:
        rng = random.Random(-client_id)
        pos = 0
        while pos < len(data):  # several chunks, of varying size
            n = rng.randrange(200, 1500)
            s.sendall(data[pos : pos + n])
            pos += n
        echo = bytearray()
        while len(echo) < len(data):
            chunk = s.recv(65536)
            assert chunk, f"client {client_id}: EOF after {len(echo)} of {len(data)} bytes"
            echo += chunk
        assert bytes(echo) == data, f"client {client_id}: echo differs"
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # the server closes after our EOF
    return len(data)


class Conn:
    def __init__(self, fd: int):
        self.fd = fd
        self.received = bytearray()
        self.next_seq = 0
        self.outq: deque = deque()  # memoryviews waiting to be sent, in order
        self.sending = False
        self.eof = False
        self.closed = False


class EchoServer:
    """Completion-driven echo server: one send in flight per connection so the
    echo keeps its order across partial sends."""

    def __init__(self, ring: ringio.Ring, listener: socket.socket):
        self.ring = ring
        self.listener = listener
        self.conns: dict[int, Conn] = {}
        self.done: list[Conn] = []
        self.accepted = 0
        self.enobufs_rearms = 0
        self.accept_op = ring.submit_accept_multishot(listener, ("accept",))

    def start_recv(self, conn: Conn) -> None:
        self.ring.submit_recv_multishot(conn.fd, 2048, 4, ("recv", conn), sequence=conn.next_seq)

    def pump(self, conn: Conn) -> None:
        if conn.sending or not conn.outq:
            return
        conn.sending = True
        self.ring.submit_send(conn.fd, conn.outq[0], ("send", conn), socket.MSG_NOSIGNAL)

    def maybe_close(self, conn: Conn) -> None:
        if conn.eof and not conn.sending and not conn.outq and not conn.closed:
            conn.closed = True
            self.ring.submit_close(conn.fd, ("close", conn))

    def handle(self, c: ringio.Completion) -> None:
        tag = c.user_data[0]
        if tag == "accept":
            assert c.res >= 0, f"accept failed: {c!r}"
            assert c.sequence == self.accepted
            self.accepted += 1
            conn = Conn(c.result)
            self.conns[conn.fd] = conn
            self.start_recv(conn)
            if not c.more:  # the kernel stopped the multishot accept: re-arm
                self.accept_op = self.ring.submit_accept_multishot(
                    self.listener, ("accept",), sequence=self.accepted)
            return
        conn = c.user_data[1]
        if tag == "recv":
            assert c.sequence == conn.next_seq, (c.sequence, conn.next_seq)
            conn.next_seq += 1
            if c.res > 0:
                assert c.result is not None and len(c.result) == c.res
                conn.received += c.result
                conn.outq.append(memoryview(c.result))
                self.pump(conn)
                if not c.more:
                    self.start_recv(conn)
            elif c.res == -errno.ENOBUFS:
                # We reaped too slowly and the buffers ran out: continue the
                # numbering where the kernel stopped.
                self.enobufs_rearms += 1
                self.start_recv(conn)
            else:
                assert c.res == 0, f"recv failed: {c!r}"
                assert not c.more
                conn.eof = True
                header = HEADER.unpack_from(conn.received)
                assert bytes(conn.received) == payload_for(header[0]), "server saw other bytes"
                self.maybe_close(conn)
        elif tag == "send":
            assert c.res > 0, f"send failed: {c!r}"
            view = conn.outq[0]
            if c.res < len(view):
                conn.outq[0] = view[c.res:]
            else:
                conn.outq.popleft()
            conn.sending = False
            self.pump(conn)
            self.maybe_close(conn)
        elif tag == "close":
            assert c.res == 0
            del self.conns[conn.fd]
            self.done.append(conn)


def test_200_clients_echo(uring):
    with socket.create_server(("127.0.0.1", 0), backlog=N_CLIENTS) as listener, \
            ringio.Ring(256) as ring:
        address = listener.getsockname()
        server = EchoServer(ring, listener)
        with ThreadPoolExecutor(max_workers=50) as pool:
            futures = [pool.submit(run_client, address, i) for i in range(N_CLIENTS)]
            deadline = time.monotonic() + 60
            while len(server.done) < N_CLIENTS:
                assert time.monotonic() < deadline, (
                    f"served {len(server.done)} of {N_CLIENTS} within 60 s")
                for c in ring.wait_many(max=256, timeout=1.0):
                    server.handle(c)
                for f in futures:
                    if f.done() and f.exception() is not None:
                        raise f.exception()
            sizes = [f.result(timeout=30) for f in futures]
        assert server.accepted == N_CLIENTS
        ids = sorted(HEADER.unpack_from(conn.received)[0] for conn in server.done)
        assert ids == list(range(N_CLIENTS))
        total = sum(len(conn.received) for conn in server.done)
        assert total == sum(sizes) == sum(len(payload_for(i)) for i in range(N_CLIENTS))
        # Only the multishot accept is left; cancel it and reap its final leg.
        ring.submit_cancel(server.accept_op, ("cancel",))
        while not server.accept_op.done:
            for c in ring.wait_many(timeout=5):
                if c.user_data[0] == "accept":
                    assert c.res == -errno.ECANCELED and not c.more
        assert ring.stats()["stale_cqes"] == 0
