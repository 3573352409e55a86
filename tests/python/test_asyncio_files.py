"""ringio.asyncio: the file context on the loop, error mapping, cancellation and
backpressure.  Rings come from ringio.Ring() without a backend argument, so the
suite runs on whatever backend RINGIO_BACKEND selects."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import os
import threading
import time

import pytest
import ringio
import ringio.asyncio as rio

pytestmark = pytest.mark.usefixtures("uring", "fd_leak_check")

DATA = os.urandom(64 * 1024)


@pytest.fixture
def fd(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(DATA)
    fd = os.open(p, os.O_RDWR)
    yield fd
    os.close(fd)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def run(coro):
    return asyncio.run(coro)


def test_module_functions_use_one_context_per_loop(fd):
    async def main():
        ctx = rio.get_context()
        assert rio.get_context() is ctx
        assert await rio.read(100, fd, 10) == DATA[10:110]
        buf = bytearray(50)
        assert await rio.readinto(buf, fd, 0) == 50 and buf == DATA[:50]
        assert await rio.write(b"hello", fd, 0) == 5
        assert await rio.fsync(fd) is None
        assert await rio.fdsync(fd) is None
        assert await rio.read(5, fd, 0) == b"hello"
        assert await rio.read(100, fd, len(DATA) - 3) == DATA[-3:]  # short read
        assert await rio.read(100, fd, len(DATA)) == b""  # EOF
        rio.close_context()
        assert rio.get_context() is not ctx
        rio.close_context()

    run(main())


def test_context_caio_call_shape_and_concurrency(fd):
    async def main():
        async with rio.AsyncioContext(max_requests=16) as ctx:
            reads = [ctx.read(4096, fd, i * 4096) for i in range(16)]
            got = await asyncio.gather(*reads)
            assert b"".join(got) == DATA
            assert ctx.in_flight == 0

    run(main())


def test_inline_read_after_another_completion(fd, pipe):
    """A page-cache read whose submission also completes an earlier pending read (the
    pipe's, posted by the same io_uring_enter): both tasks get their own data, in either
    order of the completions, and nothing stays counted in flight."""
    r, w = pipe

    async def main():
        async with rio.AsyncioContext(max_requests=8) as ctx:
            for i in range(20):
                waiting = asyncio.ensure_future(ctx.read(5, r, -1))
                await asyncio.sleep(0)  # it submits and waits for the pipe
                assert ctx.in_flight == 1
                os.write(w, b"%05d" % i)
                buf = bytearray(8)
                assert await ctx.read(8, fd, 8 * i) == DATA[8 * i:8 * i + 8]
                assert await ctx.readinto(buf, fd, 0) == 8 and buf == DATA[:8]
                assert await waiting == b"%05d" % i
                assert ctx.in_flight == 0

    run(main())


@pytest.mark.parametrize(
    "make, exc, code",
    [
        (lambda d, f: rio.read(10, d, 0), IsADirectoryError, errno.EISDIR),
        (lambda d, f: rio.write(b"x", 999, 0), OSError, errno.EBADF),
        (lambda d, f: rio.read(10, f, -5), ValueError, None),
    ],
)
def test_errors_are_oserror_subclasses(tmp_path, fd, make, exc, code):
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)

    async def main():
        try:
            with pytest.raises(exc) as info:
                await make(dfd, fd)
            if code is not None:
                assert info.value.errno == code
                assert not isinstance(info.value, SystemError)
        finally:
            rio.close_context()

    try:
        run(main())
    finally:
        os.close(dfd)


def test_file_not_found_via_ring(tmp_path):
    # Completion.res stays raw; the asyncio layer maps it to the errno's subclass.
    async def main():
        ctx = rio.get_context()
        op = ctx.ring.submit_openat(tmp_path / "missing", os.O_RDONLY)
        ctx.ring.submit()
        while not op.done:
            await asyncio.sleep(0.001)
        assert op.res == -errno.ENOENT
        err = ringio.files.error_from_res(op.res)
        assert isinstance(err, FileNotFoundError)
        rio.close_context()

    run(main())


@pytest.mark.kernel
def test_o_direct_misaligned_explained(tmp_path):
    p = tmp_path / "direct"
    p.write_bytes(DATA)
    try:
        fd = os.open(p, os.O_RDWR | os.O_DIRECT)
    except OSError as e:
        pytest.skip(f"O_DIRECT unsupported here: {e}")

    async def main():
        async with rio.AsyncioContext() as ctx:
            buf = ringio.aligned_buffer(4096)
            assert await ctx.readinto(buf, fd, 4096) == 4096
            assert bytes(buf) == DATA[4096:8192]
            with pytest.raises(OSError) as info:
                await ctx.readinto(buf, fd, 1)  # a misaligned file offset
            assert info.value.errno == errno.EINVAL
            assert "logical block size" in str(info.value)

    try:
        run(main())
    finally:
        os.close(fd)


def test_cancel_sends_a_cancel_and_keeps_the_buffer(pipe):
    r, w = pipe

    async def main():
        async with rio.AsyncioContext(max_requests=4) as ctx:
            buf = bytearray(16)
            task = asyncio.ensure_future(ctx.readinto(buf, r, -1))
            await asyncio.sleep(0.05)
            assert ctx.in_flight == 1
            with pytest.raises(BufferError):
                buf.extend(b"x")  # the kernel may still write it
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(500):  # the final (-ECANCELED) completion arrives
                if ctx.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            assert ctx.in_flight == 0
            gc.collect()
            buf.extend(b"x")  # released after the final completion
            # The ring still works, and the cancelled read consumed nothing.
            os.write(w, b"after")
            assert await ctx.read(16, r, -1) == b"after"

    run(main())


def test_backpressure_with_a_slow_producer(pipe):
    """More readers than max_requests on a pipe that is fed slowly: never more than
    max_requests operations in flight, and every reader eventually gets its data."""
    r, w = pipe

    async def main():
        async with rio.AsyncioContext(max_requests=2) as ctx:
            peak = 0
            tasks = [asyncio.ensure_future(ctx.read(1, r, -1)) for _ in range(8)]
            got = []
            for i in range(8):
                await asyncio.sleep(0.01)
                peak = max(peak, ctx.in_flight)
                assert ctx.ring.stats()["inflight"] <= 2
                os.write(w, bytes([65 + i]))
                while len([t for t in tasks if t.done()]) <= i:
                    await asyncio.sleep(0.001)
                    peak = max(peak, ctx.in_flight)
            got = await asyncio.gather(*tasks)
            assert peak == 2
            assert sorted(got) == [bytes([65 + i]) for i in range(8)]
            assert ctx.in_flight == 0

    run(main())


def test_cancelled_waiter_passes_its_slot_on(pipe):
    r, w = pipe

    async def main():
        async with rio.AsyncioContext(max_requests=1) as ctx:
            first = asyncio.ensure_future(ctx.read(1, r, -1))
            waiting = asyncio.ensure_future(ctx.read(1, r, -1))
            third = asyncio.ensure_future(ctx.read(1, r, -1))
            await asyncio.sleep(0.02)
            waiting.cancel()
            os.write(w, b"ab")
            assert await first == b"a"
            assert await third == b"b"
            with pytest.raises(asyncio.CancelledError):
                await waiting

    run(main())


def test_closed_context_refuses(fd):
    async def main():
        ctx = rio.AsyncioContext()
        ctx.close()
        ctx.close()
        with pytest.raises(RuntimeError):
            await ctx.read(1, fd, 0)

    run(main())


def test_context_on_a_given_ring_leaves_it_open(fd):
    ring = ringio.Ring()

    async def main():
        async with rio.AsyncioContext(ring=ring) as ctx:
            assert await ctx.read(3, fd, 0) == DATA[:3]

    try:
        run(main())
        op = ring.submit_nop("still open")
        assert ring.wait(5) is op
    finally:
        ring.close()


class _NoFdRing(ringio.Ring):
    """A ring that reports no pollable fd, as a backend without a kernel ring may."""

    @property
    def fd(self) -> int:
        return -1


def test_ring_without_pollable_fd_is_served_by_a_thread(fd, pipe, tmp_path):
    r, w = pipe
    ring = _NoFdRing()
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)

    async def main():
        async with rio.AsyncioContext(max_requests=4, ring=ring) as ctx:
            assert ctx._thread is not None and not ctx._eager
            assert await ctx.read(10, fd, 0) == DATA[:10]
            slow = asyncio.ensure_future(ctx.read(3, r, -1))
            await asyncio.sleep(0.02)
            assert not slow.done()
            os.write(w, b"xyz")
            assert await asyncio.wait_for(slow, 10) == b"xyz"
            with pytest.raises(IsADirectoryError):
                await ctx.read(1, dfd, 0)
        assert not ctx._thread.is_alive()

    try:
        run(main())
    finally:
        ring.close()
        os.close(dfd)


def test_backpressure_with_a_slow_consumer(pipe):
    """Writers into a pipe whose reader drains it slowly: writes block in the kernel once
    the pipe is full, at most max_requests are in flight, the rest wait for a slot, and
    every byte arrives once the consumer has read it all."""
    r, w = pipe
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)  # a one-page pipe fills fast
    chunk = 4096
    writers = 12
    received = bytearray()

    def consume() -> None:
        while len(received) < writers * chunk:
            time.sleep(0.005)  # the slow consumer
            received.extend(os.read(r, 1024))

    consumer = threading.Thread(target=consume)

    async def main():
        async with rio.AsyncioContext(max_requests=3) as ctx:
            peak = 0
            tasks = [asyncio.ensure_future(ctx.write(bytes([65 + i]) * chunk, w, -1))
                     for i in range(writers)]
            consumer.start()
            while not all(t.done() for t in tasks):
                peak = max(peak, ctx.in_flight)
                assert ctx.ring.stats()["inflight"] <= 3
                await asyncio.sleep(0.001)
            written = await asyncio.gather(*tasks)
            assert peak == 3
            return written

    written = run(main())
    consumer.join(10)
    assert not consumer.is_alive()
    assert sum(written) == writers * chunk == len(received)
    # A pipe write of at most PIPE_BUF (4096) bytes is atomic: every chunk arrives whole.
    for i in range(writers):
        assert received.count(bytes([65 + i])) == chunk
