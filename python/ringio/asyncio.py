"""File I/O for asyncio on a ringio Ring, with caio's call shape.

::

    import ringio.asyncio as rio

    async def main(fd):
        data = await rio.read(4096, fd, 0)      # one Ring per event loop, made on first use
        await rio.write(b"x" * 10, fd, 0)
        await rio.fsync(fd)

or, like caio's ``AsyncioContext``::

    async with rio.AsyncioContext(max_requests=64) as ctx:
        data = await ctx.read(4096, fd, 0)

How it works: every operation is a ``submit_*`` on the context's Ring, which
enters the kernel at once; the completion queue is then checked (shared
memory, no syscall), so a page-cache hit, which io_uring completes inside the
submitting ``io_uring_enter``, returns without a Future or an event-loop round
trip (such an ``await`` does not yield to other tasks, as with any awaitable
that is already done).  Other operations are awaited through a Future: the
loop watches the ring fd (readable when completions are posted) with
``add_reader``; a ring without a pollable fd (``ring.fd == -1``) is served by
one helper thread blocked in ``wait_many`` instead.  At most ``max_requests``
operations are in flight; further callers wait (backpressure).  Cancelling the
awaiting task sends ``submit_cancel`` for its operation; the operation's
Completion (which holds the buffer) stays alive until its final completion, as
for every ringio operation.  Failures raise ``OSError`` subclasses carrying
errno (``FileNotFoundError``, ``IsADirectoryError``, ...); EINVAL on an
O_DIRECT descriptor says what must be aligned.

Differences from caio: see README.md ("asyncio").
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from typing import Any

from . import _ringio
from .files import error_from_res

__all__ = [
    "AsyncioContext",
    "get_context",
    "close_context",
    "read",
    "readinto",
    "write",
    "fsync",
    "fdsync",
]

_Ring = _ringio.Ring
_SubmissionQueueFull = _ringio.SubmissionQueueFull


def _ring_entries(max_requests: int) -> int:
    """An SQ deep enough for max_requests staged operations plus their cancels."""
    n = 8
    while n < max_requests and n < 4096:
        n *= 2
    return n


_CANCEL = object()  # user_data of the cancels the context sends


class AsyncioContext:
    """An asyncio file-I/O context on one ringio Ring (caio's ``AsyncioContext`` shape).

    max_requests bounds the operations in flight (default 512); ring is an existing Ring
    to use (the context then does not close it), else one is created with
    ``ringio.Ring(entries)`` (the backend RINGIO_BACKEND selects)."""

    MAX_REQUESTS_DEFAULT = 512

    def __init__(self, max_requests: int | None = None, loop=None, *, ring=None,
                 entries: int | None = None) -> None:
        self.max_requests = max_requests or self.MAX_REQUESTS_DEFAULT
        if self.max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.get_event_loop_policy().get_event_loop()
        self.loop = loop
        self._own_ring = ring is None
        self.ring = ring if ring is not None else _Ring(entries or _ring_entries(self.max_requests))
        self._in_flight = 0
        self._pending: dict = {}  # Completion -> the Future its task awaits
        self._waiters: collections.deque = collections.deque()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fd = self.ring.fd
        self._wait_many = self.ring.wait_many
        self._wait = self.ring.wait
        self._submit_read = self.ring.submit_read
        self._submit_write = self.ring.submit_write
        # Reaping right after each submission needs the completions on this thread:
        # true when the loop watches the ring fd, not with the helper thread.
        self._eager = self._fd >= 0
        self._inline = self._eager  # read/readinto/write may take their inline path
        if self._fd >= 0:
            self.loop.add_reader(self._fd, self._reap)
        else:
            # No pollable fd: one thread blocks in wait_many and hands the completions to
            # the loop.  A submission made while it waits is flushed at once (ringio's rule).
            self._thread = threading.Thread(target=self._serve, name="ringio-asyncio",
                                            daemon=True)
            self._thread.start()

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Operations submitted and not completed yet."""
        return self._in_flight

    async def __aenter__(self) -> AsyncioContext:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching the ring and, if the context made it, close it (operations still
        in flight are cancelled and their awaiting tasks get CancelledError)."""
        if self._closed:
            return
        self._closed = True
        self._inline = False
        if self._fd >= 0:
            try:
                self.loop.remove_reader(self._fd)
            except (RuntimeError, ValueError):
                pass  # the loop is already closed
        if self._thread is not None:
            try:
                self.ring.break_wait()
            except _ringio.RingClosed:
                pass
            self._thread.join()
        if self._own_ring:
            self.ring.close()
        for fut in list(self._pending.values()) + list(self._waiters):
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        self._waiters.clear()

    # ---- submission -------------------------------------------------------------------

    async def _slot(self) -> None:
        """Wait for a free slot (backpressure)."""
        while self._in_flight >= self.max_requests:
            fut = self.loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                self._wake_one()  # pass on a wakeup this waiter may have consumed
                raise

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def _run(self, method, fd, arg, offset) -> Any:
        if self._in_flight >= self.max_requests or self._closed:
            if self._closed:
                raise RuntimeError("this AsyncioContext is closed")
            await self._slot()
        # Submitted (the kernel entered) by the call itself; user_data: the fd, for the
        # error message.
        op = method(fd, arg, offset, fd)
        if self._eager:
            # A page-cache hit completed inside that enter: reap it now and return
            # without a Future or a loop round trip (the CQ is shared memory: no syscall).
            return await self._pending_op(op, self._wait(0), fd)
        self._in_flight += 1
        return await self._pending_op(op, None, fd)

    async def _pending_op(self, op, got, fd) -> Any:
        """op is submitted; got is what was reaped right after it (None: nothing, or
        the context does not reap eagerly)."""
        if got is op:
            if self._waiters:
                self._wake_one()
            res = op.res
            if res < 0:
                raise error_from_res(res, fd)
            return op.result
        if self._eager:
            self._in_flight += 1
            if got is not None:  # another operation's completion came first
                self._dispatch((got,))
                self._dispatch(self._wait_many(1024, 0))
            if op.done:
                res = op.res
                if res < 0:
                    raise error_from_res(res, fd)
                return op.result
        fut = self.loop.create_future()
        self._pending[op] = fut
        try:
            return await fut
        except asyncio.CancelledError:
            if not op.done and not self._closed:
                try:
                    self.ring.submit_cancel(op, _CANCEL)
                except (_SubmissionQueueFull, _ringio.RingClosed):
                    pass  # the operation still completes; its slot is freed then
            raise

    # ---- completion -------------------------------------------------------------------

    def _reap(self) -> None:
        if not self._closed:
            self._dispatch(self._wait_many(max=1024, timeout=0))

    def _dispatch(self, completions) -> None:
        pending = self._pending
        for c in completions:
            if c.user_data is _CANCEL:
                continue  # a cancel's own completion
            self._in_flight -= 1
            if self._waiters:
                self._wake_one()
            fut = pending.pop(c, None)
            if fut is None or fut.done():
                continue  # reaped right after its submission, or its task was cancelled
            res = c.res
            if res < 0:
                fut.set_exception(error_from_res(res, c.user_data))
            else:
                fut.set_result(c.result)

    def _serve(self) -> None:
        ring = self.ring
        while not self._closed:
            try:
                got = ring.wait_many(max=1024, timeout=None)
            except _ringio.RingClosed:
                return
            if got:
                try:
                    self.loop.call_soon_threadsafe(self._dispatch, got)
                except RuntimeError:
                    return  # the loop is closed

    # ---- operations (caio's names and argument order) ----------------------------------

    # read (readinto too) and write run their common case inline (a free slot, the ring fd
    # watched, a page-cache hit that completed inside its submission, no error): one
    # coroutine frame and no bookkeeping.  _pending_op handles everything else.  The Ring's
    # bound methods are read into locals before the call: CPython 3.11 specialises loading
    # an instance attribute, but not calling one as a method (self._wait(0) would look the
    # name up in the class first, every time).

    async def read(self, nbytes: int, fd: int, offset: int, priority: int = 0):
        """Read up to nbytes at offset (-1: the current position): bytes of the size
        actually read (b'' at EOF).  priority is accepted for caio compatibility and
        ignored."""
        if self._inline and self._in_flight < self.max_requests:
            submit, wait = self._submit_read, self._wait  # locals: see above
            op = submit(fd, nbytes, offset, fd)
            got = wait(0)
            if got is op and op.res >= 0 and not self._waiters:
                return op.result
            return await self._pending_op(op, got, fd)
        return await self._run(self._submit_read, fd, nbytes, offset)

    def readinto(self, buf, fd: int, offset: int):
        """Read into the writable buffer buf at offset: the number of bytes read."""
        return self.read(buf, fd, offset)  # submit_read takes a buffer or a size

    async def write(self, payload, fd: int, offset: int, priority: int = 0):
        """Write payload (bytes-like, not copied) at offset (-1: the current position):
        the number of bytes written, which may be short.  priority is ignored."""
        if self._inline and self._in_flight < self.max_requests:
            submit, wait = self._submit_write, self._wait  # locals: see above
            op = submit(fd, payload, offset, fd)
            got = wait(0)
            if got is op and op.res >= 0 and not self._waiters:
                return op.res
            return await self._pending_op(op, got, fd)
        return await self._run(self._submit_write, fd, payload, offset)

    def fsync(self, fd: int):
        """fsync(fd)."""
        return self._run(self._submit_fsync, fd, False, None)

    def fdsync(self, fd: int):
        """fdatasync(fd) (caio's name)."""
        return self._run(self._submit_fsync, fd, True, None)

    def _submit_fsync(self, fd, datasync, _offset, user_data):
        return self.ring.submit_fsync(fd, datasync, user_data)


# ---- one context per event loop ---------------------------------------------------------

_contexts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_context(loop=None) -> AsyncioContext:
    """The AsyncioContext of loop (the running loop by default), created on first use.
    Its Ring is closed when the loop is garbage-collected, or by close_context()."""
    if loop is None:
        loop = asyncio.get_running_loop()
    ctx = _contexts.get(loop)
    if ctx is None or ctx._closed:
        ctx = AsyncioContext(loop=loop)
        _contexts[loop] = ctx
        weakref.finalize(loop, ctx.ring.close)  # the ring does not refer to the loop
    return ctx


def close_context(loop=None) -> None:
    """Close the AsyncioContext of loop (the running loop by default), if any."""
    if loop is None:
        loop = asyncio.get_running_loop()
    ctx = _contexts.pop(loop, None)
    if ctx is not None:
        ctx.close()


async def read(nbytes: int, fd: int, offset: int) -> bytes:
    """Read up to nbytes from fd at offset on the running loop's context."""
    return await get_context().read(nbytes, fd, offset)


async def readinto(buf, fd: int, offset: int) -> int:
    """Read into buf from fd at offset on the running loop's context."""
    return await get_context().readinto(buf, fd, offset)


async def write(data, fd: int, offset: int) -> int:
    """Write data to fd at offset on the running loop's context."""
    return await get_context().write(data, fd, offset)


async def fsync(fd: int) -> None:
    """fsync(fd) on the running loop's context."""
    await get_context().fsync(fd)


async def fdsync(fd: int) -> None:
    """fdatasync(fd) on the running loop's context."""
    await get_context().fdsync(fd)
