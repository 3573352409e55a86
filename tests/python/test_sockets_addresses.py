"""Socket addresses in (connect, sendto, sendmsg) and out (accept, recvmsg) for
AF_INET, AF_INET6 and AF_UNIX, including abstract AF_UNIX names."""

from __future__ import annotations

import errno
import os
import socket
import uuid

import pytest
from sockets_support import closed_fd, needs_ipv6, wait_done

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks


def _abstract_name() -> str:
    return "\0ringio-test-" + uuid.uuid4().hex


# ---- connect + accept ------------------------------------------------------------------------


def _connect_accept(ring, family, listen_addr, connect_addr=None):
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind(listen_addr)
        listener.listen(4)
        target = connect_addr if connect_addr is not None else listener.getsockname()
        acc = ring.submit_accept(listener)
        with socket.socket(family, socket.SOCK_STREAM) as client:
            con = ring.submit_connect(client, target)
            wait_done(ring, con)
            wait_done(ring, acc)
            assert con.res == 0 and con.result is None
            fd, peer = acc.result
            try:
                with socket.socket(fileno=os.dup(fd)) as conn:
                    client.send(b"ping")
                    assert conn.recv(4) == b"ping"
                    return peer, client.getsockname(), conn.getsockname()
            finally:
                os.close(fd)


def test_inet(ring):
    peer, client_name, _ = _connect_accept(ring, socket.AF_INET, ("127.0.0.1", 0))
    assert peer == client_name
    assert peer[0] == "127.0.0.1" and isinstance(peer[1], int)


@needs_ipv6
def test_inet6_four_tuple_result(ring):
    peer, client_name, _ = _connect_accept(ring, socket.AF_INET6, ("::1", 0))
    assert peer == client_name  # (host, port, flowinfo, scope_id) like the socket module
    assert len(peer) == 4 and peer[0] == "::1"


@needs_ipv6
def test_inet6_two_tuple_on_an_inet6_socket(ring):
    """The family comes from the socket, so a 2-tuple works for AF_INET6."""
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET6) as client:
            op = ring.submit_connect(client, ("::1", port))
            wait_done(ring, op)
            assert op.res == 0
            conn, _ = listener.accept()
            conn.close()


@needs_ipv6
def test_inet6_full_tuple_and_v4_mapped(ring):
    with socket.socket(socket.AF_INET6) as listener:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", 0))
        listener.listen(2)
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET6) as c1, socket.socket(socket.AF_INET6) as c2:
            op1 = ring.submit_connect(c1, ("::1", port, 0, 0))
            op2 = ring.submit_connect(c2, ("::ffff:127.0.0.1", port))
            wait_done(ring, op1)
            wait_done(ring, op2)
            assert (op1.res, op2.res) == (0, 0)
            for _ in range(2):
                conn, _ = listener.accept()
                conn.close()


def test_unix_path_str_and_bytes(ring, tmp_path):
    path = str(tmp_path / "sock")
    peer, _, server_name = _connect_accept(ring, socket.AF_UNIX, path)
    assert peer == ""  # an unbound client: unnamed, as the socket module says
    assert server_name == path
    os.unlink(path)
    path_b = os.fsencode(tmp_path / "sock-b")
    _connect_accept(ring, socket.AF_UNIX, path_b, connect_addr=path_b)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_unix_abstract_name(ring, as_bytes):
    name = _abstract_name()
    target = name.encode() if as_bytes else name
    peer, _, server_name = _connect_accept(ring, socket.AF_UNIX, name, connect_addr=target)
    assert server_name == name.encode()  # the socket module reports abstract names as bytes
    assert peer == ""


def test_accept_unix_bound_client_address(ring):
    name = _abstract_name()
    client_name = _abstract_name()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen(1)
        op = ring.submit_accept(listener)
        with socket.socket(socket.AF_UNIX) as client:
            client.bind(client_name)
            client.connect(name)
            wait_done(ring, op)
            fd, peer = op.result
            os.close(fd)
            assert peer == client_name.encode()


# ---- sendto / sendmsg / recvmsg -------------------------------------------------------------


def _dgram_round_trip(ring, family, rx_addr, tx_addr, target=None, use_sendmsg=False):
    with socket.socket(family, socket.SOCK_DGRAM) as rx, \
            socket.socket(family, socket.SOCK_DGRAM) as tx:
        rx.bind(rx_addr)
        if tx_addr is not None:
            tx.bind(tx_addr)
        dest = target if target is not None else rx.getsockname()
        buf = bytearray(64)
        rop = ring.submit_recvmsg(rx, buf)
        if use_sendmsg:
            sop = ring.submit_sendmsg(tx, [b"via ", b"sendmsg"], dest)
        else:
            sop = ring.submit_sendto(tx, b"via sendto", dest)
        wait_done(ring, sop)
        wait_done(ring, rop)
        assert sop.res == rop.res > 0
        return bytes(buf[: rop.res]), rop.result, tx.getsockname()


@pytest.mark.parametrize("use_sendmsg", [False, True], ids=["sendto", "sendmsg"])
def test_udp_inet(ring, use_sendmsg):
    data, sender, tx_name = _dgram_round_trip(ring, socket.AF_INET, ("127.0.0.1", 0),
                                              ("127.0.0.1", 0), use_sendmsg=use_sendmsg)
    assert data == (b"via sendmsg" if use_sendmsg else b"via sendto")
    assert sender == tx_name


@needs_ipv6
@pytest.mark.parametrize("use_sendmsg", [False, True], ids=["sendto", "sendmsg"])
def test_udp_inet6(ring, use_sendmsg):
    data, sender, tx_name = _dgram_round_trip(ring, socket.AF_INET6, ("::1", 0), ("::1", 0),
                                              use_sendmsg=use_sendmsg)
    assert data == (b"via sendmsg" if use_sendmsg else b"via sendto")
    assert sender == tx_name and len(sender) == 4


@needs_ipv6
def test_udp_inet6_two_tuple_destination(ring):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as rx:
        rx.bind(("::1", 0))
        port = rx.getsockname()[1]
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as tx:
            op = ring.submit_sendto(tx, b"v6", ("::1", port))
            wait_done(ring, op)
            assert op.res == 2
            assert rx.recv(8) == b"v6"


def test_unix_dgram_path(ring, tmp_path):
    rx_path, tx_path = str(tmp_path / "rx"), str(tmp_path / "tx")
    data, sender, _ = _dgram_round_trip(ring, socket.AF_UNIX, rx_path, tx_path)
    assert data == b"via sendto" and sender == tx_path


@pytest.mark.parametrize("use_sendmsg", [False, True], ids=["sendto", "sendmsg"])
def test_unix_dgram_abstract(ring, use_sendmsg):
    rx_name, tx_name = _abstract_name(), _abstract_name()
    data, sender, _ = _dgram_round_trip(ring, socket.AF_UNIX, rx_name, tx_name,
                                        target=rx_name.encode(), use_sendmsg=use_sendmsg)
    assert data == (b"via sendmsg" if use_sendmsg else b"via sendto")
    assert sender == tx_name.encode()


def test_unix_dgram_unbound_sender(ring):
    rx_name = _abstract_name()
    data, sender, _ = _dgram_round_trip(ring, socket.AF_UNIX, rx_name, None)
    assert data == b"via sendto"
    assert sender is None or sender == ""  # unnamed sender


def test_recvmsg_tcp_reports_no_address(ring):
    from sockets_support import tcp_pair

    client, server = tcp_pair()
    with client, server:
        buf = bytearray(4)
        op = ring.submit_recvmsg(server, buf)
        client.send(b"tcp!")
        wait_done(ring, op)
        assert op.res == 4 and op.result is None


# ---- bad addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family,address,exc",
    [
        (socket.AF_INET, ("127.0.0.1",), TypeError),
        (socket.AF_INET, ("127.0.0.1", 1, 2), TypeError),
        (socket.AF_INET, ["127.0.0.1", 80], TypeError),
        (socket.AF_INET, "127.0.0.1:80", TypeError),
        (socket.AF_INET, (b"127.0.0.1", 80), TypeError),
        (socket.AF_INET, ("127.0.0.1", "80"), TypeError),
        (socket.AF_INET, ("127.0.0.1", 70000), OverflowError),
        (socket.AF_INET, ("127.0.0.1", -1), OverflowError),
        (socket.AF_INET, ("example.invalid", 80), ValueError),
        (socket.AF_INET, ("::1", 80), ValueError),
        (socket.AF_INET6, ("127.0.0.1", 80), ValueError),
        (socket.AF_INET6, ("::1",), TypeError),
        (socket.AF_INET6, ("::1", 1, 2, 3, 4), TypeError),
        (socket.AF_INET6, ("::1", 80, 1 << 20, 0), OverflowError),
        (socket.AF_UNIX, ("/tmp/x", 0), TypeError),
        (socket.AF_UNIX, 42, TypeError),
        (socket.AF_UNIX, "/" + "x" * 200, OSError),
    ],
)
def test_bad_address_shapes(ring, family, address, exc):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        with pytest.raises(exc):
            ring.submit_connect(s, address)
        with pytest.raises(exc):
            ring.submit_sendto(s, b"x", address)
        with pytest.raises(exc):
            ring.submit_sendmsg(s, b"x", address)
    assert ring.inflight == 0


def test_address_on_a_closed_fd_fails_in_the_completion(ring):
    """No socket to ask for its family: the address only has to be
    well-formed, the kernel reports -EBADF as for any operation."""
    fd = closed_fd()
    for address in (("127.0.0.1", 9), ("::1", 9), ("::1", 9, 0, 0), "/tmp/none", b"\0abs"):
        op = ring.submit_connect(fd, address)
        wait_done(ring, op)
        assert op.res == -errno.EBADF, address
    op = ring.submit_sendto(fd, b"x", ("127.0.0.1", 9))
    wait_done(ring, op)
    assert op.res == -errno.EBADF


def test_address_on_a_non_socket_fails_in_the_completion(ring):
    r, w = os.pipe()
    try:
        op = ring.submit_connect(r, ("127.0.0.1", 9))
        wait_done(ring, op)
        assert op.res == -errno.ENOTSOCK
    finally:
        os.close(r)
        os.close(w)


def test_unsupported_family(ring):
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
    except (OSError, AttributeError):
        s = None
    if s is None:
        pytest.skip("no AF_PACKET socket here")
    with s, pytest.raises(ValueError, match="address family"):
        ring.submit_sendto(s, b"x", ("eth0", 0))
