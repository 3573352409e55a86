"""The simulated kernel's own features: determinism, faithful orderings, faults, scripting,
replay, real blocking.  These make their rings with backend="sim" explicitly, so they run
(and mean the same) in both conformance runs; the shared API tests cover the rest."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import ringio
from ringio.sim import FaultProfile

F_MORE = ringio.IORING_CQE_F_MORE
pytestmark = pytest.mark.sim


def sim(**kwargs) -> ringio.Ring:
    kwargs.setdefault("seed", 1234)
    return ringio.Ring(backend="sim", **kwargs)


def drain(ring: ringio.Ring, n: int, timeout: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(ring.wait_many(max=64, timeout=0.5))
    assert len(got) == n, got
    return got


def workload(ring: ringio.Ring) -> list[tuple]:
    """A mix that makes the sim decide things: waiting receives, multishot legs, timers,
    zero-copy notifications; returns what the user saw, as plain tuples."""
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        seen = []
        handles = []
        for i, (a, _) in enumerate(pairs):
            handles.append(ring.submit_recv(a, bytearray(64), ("recv", i)))
        ms = ring.submit_recv_multishot(pairs[0][1], 16, 4, "ms")
        handles.append(ring.submit_timeout(0.5, "t1"))
        handles.append(ring.submit_timeout(0.25, "t2"))
        for i, (_, b) in enumerate(pairs):
            b.send(bytes([65 + i]) * (10 + i))
        pairs[0][0].send(b"x" * 40)  # multishot legs of 16, 16, 8 (faults may cut it short)
        deadline = time.monotonic() + 5
        while not all(h.done for h in handles) and time.monotonic() < deadline:
            for c in ring.wait_many(timeout=0.5):
                seen.append((c.user_data, c.res, c.result, c.flags, c.sequence, c.more))
        assert all(h.done for h in handles)
        if not ms.done:
            ring.submit_cancel(ms, "cancel-ms")
        while ring.inflight and time.monotonic() < deadline:
            for c in ring.wait_many(timeout=0.5):
                seen.append((c.user_data, c.res, c.flags & F_MORE))
        assert ring.inflight == 0
        return seen
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("faults", [None, FaultProfile.chaos(0.3)], ids=["faithful", "chaos"])
def test_same_seed_same_completions(faults):
    runs = []
    for _ in range(2):
        with sim(seed=99, faults=faults) as ring:
            seen = workload(ring)
            info = ring.sim.info()
            runs.append((seen, info["decision_hash"], info["decisions"], info["cqes_posted"]))
    assert runs[0] == runs[1]
    assert runs[0][2] > 0  # decisions were taken: the hash is not vacuous


def test_different_seeds_decide_differently():
    hashes = set()
    for seed in range(8):
        with sim(seed=seed, faults=FaultProfile.chaos(0.5)) as ring:
            workload(ring)
            hashes.add(ring.sim.decision_hash)
    assert len(hashes) > 1


def test_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("RINGIO_SIM_SEED", "0x2a")
    with ringio.Ring(backend="sim") as ring:
        assert ring.sim.seed == 42
        assert "RINGIO_SIM_SEED=0x2a" in ring.sim.reproduction


def test_faults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RINGIO_SIM_FAULTS", "short_read=1:1")
    with ringio.Ring(backend="sim") as ring:
        assert ring.sim.faults == FaultProfile(short_read=(1, 1))
        assert "RINGIO_SIM_FAULTS='short_read=1:1'" in ring.sim.reproduction


def test_fault_profile_round_trips_through_its_string():
    p = FaultProfile(short_read=(0.5, 0.25), errors={"recv": ["ECONNRESET", errno.EPIPE]})
    assert FaultProfile.parse(str(p)) == p
    assert p.inject_error == (1.0, 0.1)  # errors without inject_error switch it on
    assert FaultProfile.parse("chaos") == FaultProfile.chaos()


# ---------------------------------------------------------------- faithful mode


def test_multishot_ends_on_eof(pair):
    a, b = pair
    with sim() as ring:
        h = ring.submit_recv_multishot(a, 8, 4, "ms")
        b.send(b"0123456789")
        b.shutdown(socket.SHUT_WR)
        legs = []
        while not h.done:
            legs.extend(ring.wait_many(timeout=5))
        assert [c.sequence for c in legs] == list(range(len(legs)))
        assert all(c.more for c in legs[:-1]) and not legs[-1].more
        assert b"".join(c.result for c in legs[:-1]) == b"0123456789"
        assert legs[-1].res == 0  # EOF ends it


def test_multishot_ends_with_enobufs_when_buffers_run_out(pair):
    a, b = pair
    with sim() as ring:
        # Two buffers of 4 bytes, 12 bytes waiting: the core recycles a buffer only when
        # its leg is reaped, so the third receive finds none.
        b.send(b"abcdefghijkl")
        h = ring.submit_recv_multishot(a, 4, 2, "ms")
        legs = []
        while not h.done:
            legs.extend(ring.wait_many(timeout=5))
        assert [(c.res, c.result, c.more) for c in legs] == [
            (4, b"abcd", True),
            (4, b"efgh", True),
            (-errno.ENOBUFS, None, False),  # ended: the proactor re-arms to read the rest
        ]


def test_multishot_ends_with_ecanceled(pair):
    a, _ = pair
    with sim() as ring:
        h = ring.submit_recv_multishot(a, 8, 4, "ms")
        c = ring.submit_cancel(h, "cancel")
        got = {x.user_data: x for x in drain(ring, 2)}
        assert got["ms"].res == -errno.ECANCELED and not got["ms"].more
        assert got["cancel"] is c and c.res == 0
        assert h.done


def test_zero_copy_send_posts_f_more_then_the_notification():
    with socket.create_server(("127.0.0.1", 0)) as listener, sim() as ring:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            data = bytearray(b"zero copy")
            op = ring.submit_send_zc(client, data, "zc")
            assert ring.wait(5) is op
            assert op.res == len(data) and op.flags & F_MORE
            while ring.inflight:  # the notification releases the buffer
                ring.wait_many(timeout=0.5)
            data.clear()  # no longer exported
            assert server.recv(64) == b"zero copy"


def test_cq_overflow_keeps_every_completion_and_ends_multishot(pair):
    a, b = pair
    with sim(entries=2, cq_entries=4) as ring:
        ops = [ring.submit_nop(i) for i in range(32)]  # nobody reaps: the backlog grows
        assert ring.sim.info()["overflowed"] > 0
        got = drain(ring, 32)
        assert sorted(c.user_data for c in got) == list(range(32))
        assert all(o.done for o in ops)
        # A multishot receive whose leg cannot be posted into a full CQ is ended (no F_MORE).
        for i in range(4):
            ring.submit_nop(("fill", i))
        h = ring.submit_recv_multishot(a, 4, 8, "ms")
        b.send(b"x" * 16)
        ring.submit_nop("poke")  # one more enter: legs meet a full CQ
        seen = []
        deadline = time.monotonic() + 5
        while not h.done and time.monotonic() < deadline:
            seen.extend(ring.wait_many(timeout=0.5))
        assert h.done
        legs = [c for c in seen if c.user_data == "ms"]
        assert legs and not legs[-1].more and legs[-1].res > 0  # ended with data, not EOF
        assert ring.sim.info()["overflowed"] > 0


def test_timeouts_run_on_a_virtual_clock():
    with sim() as ring:
        t_real = time.monotonic()
        t_virtual = ring.sim.now
        op = ring.submit_timeout(10.0, "ten seconds")
        assert ring.wait(60) is op and op.res == -errno.ETIME
        assert ring.sim.now - t_virtual >= 10.0
        assert time.monotonic() - t_real < 5.0  # it did not sleep ten seconds


def test_wait_timeout_is_virtual_too_when_only_timers_pend():
    with sim() as ring:
        ring.submit_timeout(100.0, "late")
        t = ring.sim.now
        assert ring.wait(3.0) is None
        assert ring.sim.now - t >= 2.9  # the wait's own bookkeeping trims a few microseconds


def test_cancel_racing_a_ready_completion_never_both_never_neither():
    outcomes = set()
    for seed in range(40):
        a, b = socket.socketpair()
        with a, b, sim(seed=seed) as ring:
            buf = bytearray(8)
            op = ring.submit_recv(a, buf, "recv")
            b.send(b"ready")  # the receive can complete at the cancel's turn
            c = ring.submit_cancel(op, "cancel")
            got = {x.user_data: x for x in drain(ring, 2)}
            recv, cancel = got["recv"], got["cancel"]
            if recv.res == -errno.ECANCELED:
                assert cancel.res == 0
                outcomes.add("cancelled")
            else:
                assert recv.res == 5 and buf[:5] == b"ready"
                assert cancel.res == -errno.ENOENT
                outcomes.add("completed")
            assert op.done and c.done
    assert outcomes == {"cancelled", "completed"}  # the seed decides the race


# ---------------------------------------------------------------- fault mode


def test_short_reads_when_the_site_fires(pair):
    a, b = pair
    with sim(faults="short_read=1:1") as ring:
        assert ring.sim.info()["faults_enabled"] == ["short_read"]
        b.send(b"0123456789")
        buf = bytearray(10)
        op = ring.submit_recv(a, buf, "r")
        assert ring.wait(5) is op
        assert 1 <= op.res < 10 and buf[: op.res] == b"0123456789"[: op.res]


def test_short_writes_when_the_site_fires(pair):
    a, b = pair
    with sim(faults="short_write=1:1") as ring:
        op = ring.submit_send(a, b"0123456789", "w")
        assert ring.wait(5) is op and 1 <= op.res < 10
        assert b.recv(64) == b"0123456789"[: op.res]


def test_enter_busy_while_the_backlog_waits_loses_nothing():
    with sim(entries=2, cq_entries=4, faults="enter_busy=1:1") as ring:
        ops = [ring.submit_nop(i) for i in range(64)]  # the backlog fills; enter refuses SQEs
        got = drain(ring, 64)
        assert sorted(c.user_data for c in got) == list(range(64))
        assert all(o.done for o in ops)
        assert ring.stats()["busy_retries"] > 0  # the core drained and retried


def test_injected_errors_per_opcode(pair):
    a, b = pair
    profile = FaultProfile(inject_error=(1, 1), errors={"recv": ["ECONNRESET"], "send": ["EPIPE"]})
    with sim(faults=profile) as ring:
        r = ring.submit_recv(a, bytearray(4), "r")
        s = ring.submit_send(b, b"data", "s")
        n = ring.submit_nop("nop")  # no errnos listed for NOP: never injected
        got = {c.user_data: c for c in drain(ring, 3)}
        assert got["r"].res == -errno.ECONNRESET and r.result is None
        assert got["s"] is s and s.res == -errno.EPIPE
        assert got["nop"].res == 0 and n.done


def test_early_multishot_termination(pair):
    a, b = pair
    with sim(faults="multishot_end=1:1") as ring:
        b.send(b"x" * 32)
        h = ring.submit_recv_multishot(a, 8, 8, "ms")
        leg = ring.wait(5)
        assert leg.res == 8 and not leg.more and h.done  # ended after one leg: re-arm needed


def test_notification_delay_and_reorder_still_release_everything():
    with socket.create_server(("127.0.0.1", 0)) as listener, sim(faults="notif_delay=1:1,notif_reorder=1:1") as ring:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            bufs = [bytearray(bytes([i]) * 8) for i in range(6)]
            for i, buf in enumerate(bufs):
                ring.submit_send_zc(client, buf, i)
            got = drain(ring, 6)
            assert sorted(c.user_data for c in got) == list(range(6))
            while ring.inflight:
                ring.wait_many(timeout=0.5)
            for buf in bufs:
                buf.clear()  # every export was released


def test_errored_zero_copy_send_notifies_late_and_releases(pair):
    a, _ = pair  # AF_UNIX: no zero copy, the send fails with F_MORE and a notification
    with sim(faults="notif_after_error=1:1") as ring:
        data = bytearray(b"nope")
        op = ring.submit_send_zc(a, data, "zc")
        assert ring.wait(5) is op and op.res == -errno.EOPNOTSUPP
        while ring.inflight:
            ring.wait_many(timeout=0.5)
        data.clear()
        assert ring.stats()["stale_cqes"] == 0


# ---------------------------------------------------------------- scripted mode


def test_notification_of_a_arrives_after_recv_of_b():
    """The issue's example ordering: the F_NOTIF of send A only after recv B completed."""
    with socket.create_server(("127.0.0.1", 0)) as listener, sim() as ring:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        x, y = socket.socketpair()
        with client, server, x, y:
            ring.sim.hold("A", notif_only=True)
            payload = bytearray(b"from A")
            a = ring.submit_send_zc(client, payload, "A")
            bbuf = bytearray(16)
            b = ring.submit_recv(x, bbuf, "B")
            y.send(b"for B")
            got = {c.user_data: c for c in drain(ring, 2)}
            assert got["A"] is a and a.flags & F_MORE
            assert got["B"] is b and bbuf[: b.res] == b"for B"
            assert ring.inflight == 1  # A's notification is held: its buffer too
            with pytest.raises(BufferError):
                payload.clear()
            assert ring.sim.release("A") == 1
            while ring.inflight:
                ring.wait_many(timeout=0.5)
            payload.clear()


def test_hold_and_release_a_completion(pair):
    a, b = pair
    with sim() as ring:
        ring.sim.hold("first")
        first = ring.submit_nop("first")
        second = ring.submit_nop("second")
        assert ring.wait(5) is second
        assert ring.wait(0.1) is None and not first.done
        assert ring.sim.info()["held"] == 1
        assert ring.sim.release("first") == 1
        assert ring.wait(5) is first


def test_force_a_result(pair):
    a, b = pair
    with sim() as ring:
        ring.sim.force("r", -errno.ECONNRESET)
        op = ring.submit_recv(a, bytearray(4), "r")
        assert ring.wait(5) is op and op.res == -errno.ECONNRESET
        # Once only: the next one does its I/O.
        b.send(b"ok")
        buf = bytearray(4)
        op2 = ring.submit_recv(a, buf, "r")
        assert ring.wait(5) is op2 and buf[: op2.res] == b"ok"


def test_advance_the_clock():
    with sim() as ring:
        op = ring.submit_timeout(30.0, "t")
        ring.sim.advance(31)
        assert ring.wait(0) is op and op.res == -errno.ETIME


def test_cancel_lets_held_completions_go(pair):
    """A held completion can carry an fd (accept): a cancel, like the one close() sends,
    releases it so the core can close what nobody will see."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ring = sim()
        ring.sim.hold("acc")
        op = ring.submit_accept(listener, "acc")
        c = socket.create_connection(listener.getsockname())
        with c:
            ring.wait(0.05)  # the sim accepts; the completion is held
            assert ring.sim.info()["held"] == 1
            ring.close()  # cancels: the held CQE is posted and its fd closed by the core
            assert not op.done
            c.settimeout(5)
            assert c.recv(1) == b""  # the accepted side was closed


def test_close_releases_held_multishot_legs_and_their_fds():
    """Legs of a live multishot accept held by a rule: close() cancels the operation, the sim
    posts what it held (and does not hold the final CQE), the core closes the fds."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        ring = sim()
        ring.sim.hold("acc")
        h = ring.submit_accept_multishot(listener, "acc")
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        try:
            ring.wait(0.05)  # the sim accepts three; the legs are held
            assert ring.sim.info()["held"] == 3
            ring.close()
            assert not h.done
            for c in clients:
                c.settimeout(5)
                assert c.recv(1) == b""  # every accepted side was closed by the core
        finally:
            for c in clients:
                c.close()


# ---------------------------------------------------------------- replay


def test_record_and_replay_reproduce_a_run(tmp_path):
    path = tmp_path / "run.trace"
    with sim(seed=7, faults=FaultProfile.chaos(0.4), record=True) as ring:
        seen = workload(ring)
        info = ring.sim.info()
        ring.sim.save_trace(path)
    with ringio.Ring(backend="sim", replay=path) as again:
        assert again.sim.seed == 7
        assert again.sim.faults == FaultProfile.chaos(0.4)
        assert workload(again) == seen
        replayed = again.sim.info()
        assert replayed["decision_hash"] == info["decision_hash"]
        assert not replayed["replay_diverged"]


def test_replay_notices_different_calls(tmp_path):
    with sim(seed=3, faults=FaultProfile.chaos(0.5), record=True) as ring:
        workload(ring)
        trace = ring.sim.trace()
    a, b = socket.socketpair()
    with a, b, ringio.Ring(backend="sim", replay=trace) as again:
        for i in range(20):  # something else entirely: zero-copy sends decide notification delays
            again.submit_send_zc(a, b"x", i)
        drain(again, 20)
        while again.inflight:
            again.wait_many(timeout=0.5)
        assert again.sim.info()["replay_diverged"]


def test_trace_needs_record():
    with sim() as ring, pytest.raises(ValueError, match="record=True"):
        ring.sim.trace()


# ---------------------------------------------------------------- real blocking, notify fd


def test_waits_for_a_peer_outside_the_process(subprocess_env):
    with socket.create_server(("127.0.0.1", 0)) as listener, sim() as ring:
        port = listener.getsockname()[1]
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import socket, time
                time.sleep(0.2)
                s = socket.create_connection(("127.0.0.1", {port}))
                s.sendall(b"hello from outside")
                s.close()
            """)],
            env=subprocess_env,
        )
        try:
            acc = ring.submit_accept(listener, "accept")
            assert ring.wait(10) is acc and acc.res >= 0
            with socket.socket(fileno=acc.res) as conn:
                data = b""
                while len(data) < 18:
                    buf = bytearray(64)
                    op = ring.submit_recv(conn, buf, "recv")
                    assert ring.wait(10) is op and op.res > 0
                    data += buf[: op.res]
                assert data == b"hello from outside"
        finally:
            child.wait(10)


def test_ring_fd_is_readable_when_enter_would_progress(pair):
    import select

    a, b = pair
    with sim() as ring:
        assert select.select([ring.fd], [], [], 0)[0] == []
        buf = bytearray(8)
        op = ring.submit_recv(a, buf, "r")
        assert select.select([ring.fd], [], [], 0)[0] == []  # the receive waits
        b.send(b"ping")  # the socket becomes readable: so does the ring fd
        assert select.select([ring.fd], [], [], 5)[0] == [ring.fd]
        assert ring.wait(5) is op and buf[: op.res] == b"ping"
        assert select.select([ring.fd], [], [], 0)[0] == []


def test_break_wait_from_another_thread(pair):
    with sim() as ring:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("got", ring.wait(None)))
        t.start()
        time.sleep(0.05)
        ring.break_wait()
        t.join(5)
        assert not t.is_alive() and out["got"] is None


def test_probe_of_a_sim_ring_is_not_the_kernels():
    with sim() as ring:
        assert ring.backend == "sim"
        assert ring.sim is not None and "seed=0x4d2" in repr(ring.sim)
    if ringio.is_available():
        with ringio.Ring(backend="uring") as real:
            assert real.sim is None
