"""The runtime operation probes behind probe()'s IORING_ACCEPT_MULTISHOT,
IORING_RECV_MULTISHOT, IORING_OP_SEND_ZC and IORING_OP_SENDMSG_ZC."""

from __future__ import annotations

import os
import socket
import time

import pytest
import ringio
from sockets_support import no_fd_leak, wait_done

RUNTIME_KEYS = ("IORING_ACCEPT_MULTISHOT", "IORING_RECV_MULTISHOT", "IORING_OP_SEND_ZC",
                "IORING_OP_SENDMSG_ZC")


@pytest.mark.kernel  # the kernel's own probe
def test_probe_leaks_no_descriptor_and_is_bounded(uring):
    with no_fd_leak():
        t0 = time.monotonic()
        d = ringio.probe()
        assert time.monotonic() - t0 < 2.0
    for key in RUNTIME_KEYS:
        assert isinstance(d[key], bool), key


@pytest.mark.kernel  # the kernel's own probe
def test_runtime_probes_agree_with_real_operations(uring):
    """What probe() claims, a Ring can do (and what it denies, a Ring fails)."""
    d = ringio.probe()
    with no_fd_leak(), ringio.Ring() as ring:
        a, b = socket.socketpair()
        with a, b:
            h = ring.submit_recv_multishot(a, 16, 2)
            b.send(b"x")
            leg = ring.wait(5)
            assert (leg.res == 1 and leg.more) is d["IORING_RECV_MULTISHOT"]
            if not h.done:
                ring.submit_cancel(h)
                wait_done(ring, h)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            h = ring.submit_accept_multishot(listener)
            with socket.create_connection(listener.getsockname()):
                leg = ring.wait(5)
                if leg.res >= 0:
                    os.close(leg.result)
                assert (leg.res >= 0 and leg.more) is d["IORING_ACCEPT_MULTISHOT"]
            if not h.done:
                ring.submit_cancel(h)
                wait_done(ring, h)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            op = ring.submit_sendmsg_zc(tx, b"z", rx.getsockname())
            wait_done(ring, op)
            assert (op.res == 1) is d["IORING_OP_SENDMSG_ZC"]
            tx.connect(rx.getsockname())
            op = ring.submit_send_zc(tx, b"z")
            wait_done(ring, op)
            assert (op.res == 1) is d["IORING_OP_SEND_ZC"]
            while ring.inflight:
                ring.wait(0.05)


def test_runtime_probes_run_on_a_ring_with_the_given_flags(uring):
    """An IOPOLL ring cannot do socket I/O: the operation probes say so
    (the opcode probe alone would claim them)."""
    d = ringio.probe(flags=ringio.IORING_SETUP_IOPOLL)
    if not d:
        pytest.skip("IOPOLL rings are refused here")
    for key in RUNTIME_KEYS:
        assert d[key] is False, key


def test_probe_keys_are_documented():
    for key in RUNTIME_KEYS:
        assert key in ringio.probe.__doc__
