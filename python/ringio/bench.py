"""``python -m ringio bench``: ringio against its peers, measured in the same run.

Scenarios (``--scenario NAME``, repeatable; default: all):

``nop``
    NOP submit+complete round trips, in batches (ringio: ``batch()`` +
    ``submit_nop`` + ``wait_many``) and one at a time (``submit_nop`` +
    ``wait``), against YoSTEALTH's ``liburing`` package driven from Python,
    ``uring-api`` (whose only NOP is ``break_wait()``; ringio's
    ``break_wait()`` loop is measured next to it) and a C program on liburing
    (``tests/bench/c/nop.c``), the physical limit.
``pingpong``
    64-byte ping-pong over an AF_UNIX socketpair whose two ends are on one
    ring: each hop is a send and a receive (ringio: inside one ``batch()``
    around the whole loop, so each ``wait_many()`` submits the hop's two
    operations in the ``io_uring_enter`` that waits for them; also without
    ``batch()``), against uring-api (its API: every submit enters the
    kernel) and C liburing (``tests/bench/c/pingpong.c``).
``sends``
    Batches of 64 sends of 64 B on a socketpair drained by a reader process:
    ringio ``batch()`` + ``wait_many`` against uring-api (one at a time: it
    has no batching) and C liburing (``tests/bench/c/sends.c``).
    For ``pingpong`` and ``sends`` the report also splits the time of one
    operation of the ringio row into the C program's time (the kernel's
    work), the interpreter's (the same loop run with every ringio call
    replaced by a C function that does no I/O) and the rest: ringio's own
    code.
``echo``
    A TCP echo server on loopback at 1, 64 and 512 connections, each doing M
    request/response round trips of 64 B.  Servers: ringio (multishot accept,
    multishot recv, send; ``batch()`` + ``wait_many``), uring-api (the same
    loop, its API), asyncio (Protocol), uvloop (same Protocol), C on liburing
    (``tests/bench/c/echo_server.c``).  Every server runs in its own process
    pinned to one CPU and faces the same client process on another
    (``tests/bench/c/echo_client.c``: plain non-blocking sockets and epoll; a
    Python client of the same protocol stands in when no C compiler works).
``http``
    ``wrk -t2 -c64`` (the Debian package) against ``python -m ringio serve``,
    ``http.server.ThreadingHTTPServer`` and a plain asyncio-streams server,
    all serving the same routes with the same Python Fibonacci function:
    ``GET /`` and ``POST /20``, HTTP/1.1 keep-alive.
``timers``
    N ``submit_timeout(0.001)`` completions against asyncio's (and uvloop's)
    ``loop.call_later(0.001, ...)`` and C liburing timeouts.

Every implementation of a group is set up and warmed up (one unmeasured
run), then the group is measured round-robin ``--repeat`` times (default 5),
so that background load drifting during the run hits every implementation
alike; the median, min and max rates are reported, with ratios against the C
program and against asyncio of the same group.  Speed is only ever compared
within one run: nothing here asserts a timing.

``files`` (the file reads against caio) comes from ``ringio.bench_files``
once the file operations land; until then it is listed as skipped.

``--json PATH`` also writes the report as JSON, ``--png PATH`` draws it
(matplotlib, installed by ``nox -s bench``).

Peers that cannot be imported or cannot create a ring are reported as
``unavailable: <reason>``; the C programs are compiled with ``cc -O2 ...
-luring`` into ``build/bench/`` from ``tests/bench/c/`` of the checkout found
from the current directory (``--c-src``, ``--build-dir`` override).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import re
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCENARIOS = ("nop", "pingpong", "sends", "echo", "http", "timers", "files", "sim")

perf_counter = time.perf_counter


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    repeats: int
    nop_batch_ops: int
    nop_batch: int
    nop_single_ops: int
    echo_conns: tuple[int, ...]  # one group per connection count
    echo_msgs: tuple[int, ...]  # round trips per connection, for each count
    echo_sizes: tuple[int, ...]
    timers: int
    timer_delay: float
    pingpong_trips: int
    sends_total: int
    sends_batch: int
    msg_size: int  # pingpong and sends
    http_seconds: int  # wrk -d
    http_conns: int  # wrk -c
    http_paths: tuple[str, ...]


FULL = Sizes(
    repeats=5,
    nop_batch_ops=1_000_000,
    nop_batch=64,
    nop_single_ops=200_000,
    echo_conns=(1, 64, 512),
    echo_msgs=(20_000, 3_000, 400),
    echo_sizes=(64,),
    timers=10_000,
    timer_delay=0.001,
    pingpong_trips=100_000,
    sends_total=640_000,
    sends_batch=64,
    msg_size=64,
    http_seconds=3,
    http_conns=64,
    http_paths=("GET /", "POST /20"),
)

QUICK = Sizes(
    repeats=5,
    nop_batch_ops=2_048,
    nop_batch=64,
    nop_single_ops=512,
    echo_conns=(1, 4),
    echo_msgs=(20, 20),
    echo_sizes=(64,),
    timers=200,
    timer_delay=0.001,
    pingpong_trips=500,
    sends_total=2_048,
    sends_batch=64,
    msg_size=64,
    http_seconds=1,
    http_conns=8,
    http_paths=("GET /",),
)

# Provided buffers of the Python io_uring echo servers (per connection) and of
# the C server (one shared group); see tests/bench/c/echo_server.c.
ECHO_BUF_SIZE = 4096
ECHO_BUF_COUNT = 16


# --------------------------------------------------------------------------- results


class Unavailable(Exception):
    """A peer (or ringio itself) cannot run here; the message says why."""


@dataclass
class Row:
    impl: str  # who: "ringio", "C liburing", "asyncio", ...
    how: str  # what exactly is measured
    group: str  # rows of one group are compared with each other
    unit: str
    status: str = "ok"  # ok | unavailable | failed
    reason: str | None = None
    runs: list[float] = field(default_factory=list)
    median: float | None = None
    min: float | None = None
    max: float | None = None
    ratio_to_c: float | None = None
    ratio_to_asyncio: float | None = None
    ratios: dict[str, float] = field(default_factory=dict)  # vs the scenario's "baselines"

    def finish(self) -> None:
        if self.runs:
            self.median = statistics.median(self.runs)
            self.min = min(self.runs)
            self.max = max(self.runs)


def _log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


Once = Callable[[], "tuple[int, float]"]  # one measured run: (operations, seconds)
Factory = Callable[[], "AbstractContextManager[Once]"]  # sets an implementation up


def _run_rows(specs: list[tuple[Row, Factory]], repeats: int) -> list[Row]:
    """Set every implementation of a group up and warm it up (one unmeasured run),
    then measure them round-robin, `repeats` rounds: background load that drifts
    during the run then spreads over every implementation instead of hitting
    whichever happened to run at that moment."""
    live: list[tuple[Row, Once]] = []
    with ExitStack() as stack:
        for row, factory in specs:
            try:
                once = stack.enter_context(factory())
                once()  # warm-up
            except Unavailable as e:
                row.status, row.reason = "unavailable", str(e)
            except Exception as e:  # noqa: BLE001 -- a peer blowing up is reported, not fatal
                row.status, row.reason = "failed", f"{type(e).__name__}: {e}"
            else:
                live.append((row, once))
        for _ in range(repeats):
            for row, once in live:
                if row.status != "ok":
                    continue
                try:
                    n, seconds = once()
                except Exception as e:  # noqa: BLE001 -- reported in the table
                    row.status, row.reason = "failed", f"{type(e).__name__}: {e}"
                    row.runs.clear()
                else:
                    row.runs.append(n / seconds if seconds > 0 else float("inf"))
    for row, _ in specs:
        row.finish()
        if row.status == "ok":
            _log(f"  {row.impl} [{row.how}]: {_fmt_rate(row.median)} {row.unit} "
                 f"(min {_fmt_rate(row.min)}, max {_fmt_rate(row.max)})")
        else:
            _log(f"  {row.impl} [{row.how}]: {row.status}: {row.reason}")
    return [row for row, _ in specs]


def _set_ratios(rows: list[Row], baselines: Sequence[str] = ()) -> None:
    by_group: dict[str, dict[str, Row]] = {}
    for r in rows:
        if r.status == "ok":
            by_group.setdefault(r.group, {}).setdefault(r.impl, r)
    for r in rows:
        if r.status != "ok":
            continue
        peers = by_group.get(r.group, {})
        c, aio = peers.get("C liburing"), peers.get("asyncio")
        if c is not None and c.median:
            r.ratio_to_c = r.median / c.median
        if aio is not None and aio.median:
            r.ratio_to_asyncio = r.median / aio.median
        for name in baselines:
            base = peers.get(name)
            if base is not None and base.median:
                r.ratios[name] = r.median / base.median


# --------------------------------------------------------------------------- peers


def _import_ringio():
    try:
        import ringio
    except ImportError as e:
        raise Unavailable(f"import ringio failed: {e}") from None
    if not ringio.is_available():
        raise Unavailable(f"io_uring cannot be used here: {ringio.unavailable_reason()}")
    return ringio


def _import_yo_liburing():
    try:
        import liburing
    except ImportError as e:
        raise Unavailable(f"PyPI package `liburing` not importable: {e}") from None
    for name in ("Ring", "Cqe", "io_uring_queue_init", "io_uring_get_sqe", "io_uring_prep_nop",
                 "io_uring_submit", "io_uring_submit_and_wait", "io_uring_wait_cqe",
                 "io_uring_cq_ready", "io_uring_cq_advance", "io_uring_cqe_seen"):
        if not hasattr(liburing, name):
            raise Unavailable(f"liburing {_version('liburing')} has no {name}()")
    return liburing


def _import_uring_api():
    try:
        import uring_api
    except ImportError as e:
        raise Unavailable(f"PyPI package `uring-api` not importable: {e}") from None
    if not uring_api.probe():
        raise Unavailable(
            f"uring-api {_version('uring-api')}: probe() == {{}} (installed as the pure-Python "
            "wrapper without its extension: it needs liburing >= 2.4 headers to build)")
    if not hasattr(uring_api.Ring, "submit_recv_multishot"):
        raise Unavailable(
            f"uring-api {_version('uring-api')} has no submit_* API (its later releases moved "
            "to prepare_*/construct_*); the bench session pins the release ringio's API follows")
    return uring_api


def _import_uvloop():
    try:
        import uvloop
    except ImportError as e:
        raise Unavailable(f"uvloop not importable: {e}") from None
    return uvloop


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _peer_label(name: str, dist: str | None = None) -> str:
    v = _version(dist or name)
    return f"{name} {v}" if v else name


# --------------------------------------------------------------------------- C programs


class CPrograms:
    """Compiles tests/bench/c/*.c into build/bench/, each once per bench run."""

    def __init__(self, src: Path | None, build: Path | None) -> None:
        self.src = src
        self.build = build
        self._built: dict[str, Path | str] = {}

    @staticmethod
    def find_src(explicit: str | None) -> Path | None:
        if explicit:
            return Path(explicit).resolve()
        env = os.environ.get("RINGIO_BENCH_C_SRC")
        if env:
            return Path(env).resolve()
        here = Path.cwd().resolve()
        for d in (here, *here.parents):
            cand = d / "tests" / "bench" / "c"
            if (cand / "nop.c").is_file():
                return cand
        return None

    def get(self, name: str) -> Path:
        """The path of the built program, or raise Unavailable."""
        if name not in self._built:
            try:
                self._built[name] = self._compile(name)
            except Unavailable as e:
                self._built[name] = str(e)
        got = self._built[name]
        if isinstance(got, str):
            raise Unavailable(got)
        return got

    def _compile(self, name: str) -> Path:
        if self.src is None:
            raise Unavailable("C sources tests/bench/c/ not found (run from a ringio checkout "
                              "or pass --c-src)")
        source = self.src / f"{name}.c"
        if not source.is_file():
            raise Unavailable(f"{source} does not exist")
        build = self.build or (self.src.parent.parent.parent / "build" / "bench")
        build.mkdir(parents=True, exist_ok=True)
        out = build / name
        cc = os.environ.get("CC", "cc")
        if shutil.which(cc) is None:
            raise Unavailable(f"no C compiler ({cc!r} not on PATH)")
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-o", str(out), str(source)]
        if name != "echo_client":
            cmd.append("-luring")
        _log(f"compiling: {' '.join(shlex.quote(c) for c in cmd)}")
        p = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if p.returncode != 0:
            raise Unavailable(f"compiling {source.name} failed: {p.stderr.strip()[-400:]}")
        return out


def _run_c(cmd: Sequence[str], timeout: float = 300) -> dict:
    p = subprocess.run(list(cmd), check=False, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if not out.get("ok", False):
        raise RuntimeError(f"{Path(cmd[0]).name} reported wrong results: {out}")
    return out


# --------------------------------------------------------------------------- nop


def _nop_checked(n: int, seconds: float, res: int) -> tuple[int, float]:
    """Every consumer reads each completion's res (OR-ed together): all must be 0."""
    if res != 0:
        raise RuntimeError(f"a NOP completed with res != 0 (OR of all: {res})")
    return n, seconds


@contextmanager
def _nop_ringio_batch(n: int, batch: int) -> Iterator[Once]:
    ringio = _import_ringio()
    with ringio.Ring(entries=batch) as ring:
        sub, wm, bt = ring.submit_nop, ring.wait_many, ring.batch

        def once() -> tuple[int, float]:
            done = res = 0
            t0 = perf_counter()
            while done < n:
                want = min(batch, n - done)
                with bt():
                    for _ in range(want):
                        sub()
                    got = 0
                    while got < want:
                        for c in wm(want - got):
                            res |= c.res
                            got += 1
                done += want
            return _nop_checked(n, perf_counter() - t0, res)

        yield once


@contextmanager
def _nop_ringio_single(n: int) -> Iterator[Once]:
    ringio = _import_ringio()
    with ringio.Ring(entries=8) as ring:
        sub, wait = ring.submit_nop, ring.wait

        def once() -> tuple[int, float]:
            res = 0
            t0 = perf_counter()
            for _ in range(n):
                sub()
                res |= wait().res
            return _nop_checked(n, perf_counter() - t0, res)

        yield once


def _break_wait_once(n: int, brk: Callable[[], Any], wait: Callable[[], Any]) -> Once:
    """n round trips of break_wait() (an internal NOP) and wait(), which must return None;
    the loop of the uring-api row, run on uring-api and on ringio."""

    def once() -> tuple[int, float]:
        t0 = perf_counter()
        for _ in range(n):
            brk()
            if wait() is not None:
                raise RuntimeError("break_wait() did not make wait() return None")
        return n, perf_counter() - t0

    return once


@contextmanager
def _nop_ringio_break_wait(n: int) -> Iterator[Once]:
    """The uring-api row's loop on ringio: its internal NOP, no Completion object."""
    ringio = _import_ringio()
    with ringio.Ring(entries=8) as ring:
        yield _break_wait_once(n, ring.break_wait, ring.wait)


@contextmanager
def _yo_ring(entries: int) -> Iterator[tuple[Any, Any, Any]]:
    """(the liburing module, a ring of `entries` set up by io_uring_queue_init, a Cqe)."""
    L = _import_yo_liburing()
    ring, cqe = L.Ring(), L.Cqe()
    L.io_uring_queue_init(entries, ring)
    try:
        yield L, ring, cqe
    finally:
        L.io_uring_queue_exit(ring)


@contextmanager
def _nop_yo_batch(n: int, batch: int) -> Iterator[Once]:
    with _yo_ring(batch) as (L, ring, cqe):
        get_sqe, prep, saw = L.io_uring_get_sqe, L.io_uring_prep_nop, L.io_uring_submit_and_wait
        wait_cqe, ready, advance = L.io_uring_wait_cqe, L.io_uring_cq_ready, L.io_uring_cq_advance

        def once() -> tuple[int, float]:
            done = res = 0
            t0 = perf_counter()
            while done < n:
                want = min(batch, n - done)
                for _ in range(want):
                    prep(get_sqe(ring))
                saw(ring, want)
                got = 0
                while got < want:
                    wait_cqe(ring, cqe)
                    k = ready(ring)
                    for i in range(k):
                        res |= cqe[i].res
                    advance(ring, k)
                    got += k
                done += want
            return _nop_checked(n, perf_counter() - t0, res)

        yield once


@contextmanager
def _nop_yo_single(n: int) -> Iterator[Once]:
    with _yo_ring(8) as (L, ring, cqe):
        get_sqe, prep, submit = L.io_uring_get_sqe, L.io_uring_prep_nop, L.io_uring_submit
        wait_cqe, seen = L.io_uring_wait_cqe, L.io_uring_cqe_seen

        def once() -> tuple[int, float]:
            res = 0
            t0 = perf_counter()
            for _ in range(n):
                prep(get_sqe(ring))
                submit(ring)
                wait_cqe(ring, cqe)
                c = cqe[0]
                res |= c.res
                seen(ring, c)
            return _nop_checked(n, perf_counter() - t0, res)

        yield once


@contextmanager
def _nop_uring_api_single(n: int) -> Iterator[Once]:
    uring_api = _import_uring_api()
    ring = uring_api.Ring(8)
    try:
        yield _break_wait_once(n, ring.break_wait, ring.wait)
    finally:
        ring.close()


@contextmanager
def _c_program(cprogs: CPrograms, name: str, *args: object) -> Iterator[Once]:
    """A C program printing {"ops": n, "seconds": t, "ok": true}; one process per run."""
    cmd = [str(cprogs.get(name)), *map(str, args)]

    def once() -> tuple[int, float]:
        out = _run_c(cmd)
        return out["ops"], out["seconds"]

    yield once


def scenario_nop(sz: Sizes, cprogs: CPrograms) -> dict:
    b, nb, ns = sz.nop_batch, sz.nop_batch_ops, sz.nop_single_ops
    yo, ua = _peer_label("liburing"), _peer_label("uring-api")
    gb, gs = f"batch of {b}", "one at a time"
    rows = _run_rows([
        (Row("ringio", f"batch(): {b}x submit_nop, wait_many", gb, "ops/s"),
         lambda: _nop_ringio_batch(nb, b)),
        (Row(yo, f"{b}x get_sqe+prep_nop, submit_and_wait, cq_ready/advance", gb, "ops/s"),
         lambda: _nop_yo_batch(nb, b)),
        (Row("C liburing", f"{b}x get_sqe+prep_nop, submit_and_wait, for_each_cqe", gb,
             "ops/s"), lambda: _c_program(cprogs, "nop", nb, b)),
    ], sz.repeats)
    rows += _run_rows([
        (Row("ringio", "submit_nop, wait", gs, "ops/s"), lambda: _nop_ringio_single(ns)),
        (Row(yo, "get_sqe+prep_nop, submit, wait_cqe, cqe_seen", gs, "ops/s"),
         lambda: _nop_yo_single(ns)),
        (Row(ua, "break_wait, wait (its internal NOP: it has no submit_nop)", gs, "ops/s"),
         lambda: _nop_uring_api_single(ns)),
        (Row("ringio", "break_wait, wait (the uring-api row's loop)", gs, "ops/s"),
         lambda: _nop_ringio_break_wait(ns)),
        (Row("C liburing", "get_sqe+prep_nop, submit, wait_cqe, cqe_seen", gs, "ops/s"),
         lambda: _c_program(cprogs, "nop", ns, 1)),
    ], sz.repeats)
    return {
        "title": "nop: NOP submit+complete round trips",
        "setup": f"{nb:,} NOPs in batches of {b}; {ns:,} NOPs one at a time. "
                 "Each consumer reads every completion's res.",
        "unit": "ops/s",
        "rows": rows,
    }


# --------------------------------------------------------------------------- echo: servers


def _listen() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s


def _nodelay(fd: int) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        s.detach()


def _coop_ring(make: Callable[[int], Any], coop_flag: int, coop: bool) -> Any:
    """A ring made with IORING_SETUP_COOP_TASKRUN (as the C server), or without
    it when not asked for or when the kernel refuses it."""
    if coop:
        try:
            return make(coop_flag)
        except (OSError, ValueError):
            pass
    return make(0)


def _serve_ringio(lsock: socket.socket, batched: bool, coop: bool = True) -> None:
    """The echo server loop on ringio.

    user_data: None for the accept, the fd (int) for a connection's recv legs,
    (fd, data) for a send.  With `batched`, every turn runs in a batch() block
    whose wait_many() hands the turn's sends to the kernel in the same
    io_uring_enter that waits; without it, the loop is the uring-api one:
    each submit_* enters the kernel, wait() returns one completion.
    """
    import ringio

    ring = _coop_ring(lambda f: ringio.Ring(entries=1024, flags=f),
                      ringio.IORING_SETUP_COOP_TASKRUN, coop)
    lfd = lsock.fileno()
    enobufs = -errno.ENOBUFS
    send, recv_ms, accept_ms = ring.submit_send, ring.submit_recv_multishot, ring.submit_accept_multishot
    size, count = ECHO_BUF_SIZE, ECHO_BUF_COUNT
    accept_ms(lfd, None)

    def handle(c) -> None:
        ud = c.user_data
        if ud.__class__ is int:  # a recv leg of connection ud
            res = c.res
            if res > 0:
                data = c.result
                send(ud, data, (ud, data))
            if not c.more:
                if res > 0 or res == enobufs:
                    recv_ms(ud, size, count, ud)  # the buffers ran out: re-arm
                else:
                    os.close(ud)  # EOF or error
        elif ud is None:  # a new connection
            fd = c.res
            if fd >= 0:
                _nodelay(fd)
                recv_ms(fd, size, count, fd)
            if not c.more:
                accept_ms(lfd, None)
        else:  # a send
            res = c.res
            fd, data = ud
            if 0 < res < len(data):
                rest = data[res:]
                send(fd, rest, (fd, rest))

    if batched:
        wait_many, batch = ring.wait_many, ring.batch
        comps: list = []
        while True:
            with batch():
                for c in comps:
                    handle(c)
                comps = wait_many(256)
    else:
        wait = ring.wait
        while True:
            handle(wait())


def _serve_uring_api(lsock: socket.socket) -> None:
    """The same loop on uring-api (its API: each submit_* enters, wait() returns one)."""
    import uring_api

    ring = _coop_ring(lambda f: uring_api.Ring(1024, f),
                      getattr(uring_api, "IORING_SETUP_COOP_TASKRUN", 1 << 8), True)
    lfd = lsock.fileno()
    enobufs = -errno.ENOBUFS
    more_flag = getattr(uring_api, "IORING_CQE_F_MORE", 2)
    send, recv_ms, accept_ms = ring.submit_send, ring.submit_recv_multishot, ring.submit_accept_multishot
    size, count = ECHO_BUF_SIZE, ECHO_BUF_COUNT
    wait = ring.wait
    accept_ms(lfd, None)
    while True:
        c = wait()
        if c is None:
            continue
        ud = c.user_data
        if ud.__class__ is int:
            res = c.res
            if res > 0:
                data = c.result
                send(ud, data, (ud, data))
            if not c.flags & more_flag:
                if res > 0 or res == enobufs:
                    recv_ms(ud, size, count, ud)
                else:
                    os.close(ud)
        elif ud is None:
            fd = c.res
            if fd >= 0:
                _nodelay(fd)
                recv_ms(fd, size, count, fd)
            if not c.flags & more_flag:
                accept_ms(lfd, None)
        else:
            res = c.res
            fd, data = ud
            if 0 < res < len(data):
                rest = data[res:]
                send(fd, rest, (fd, rest))


def _serve_asyncio(lsock: socket.socket, use_uvloop: bool) -> None:
    import asyncio

    class Echo(asyncio.Protocol):
        __slots__ = ("transport",)

        def connection_made(self, transport) -> None:  # type: ignore[override]
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(loop.create_server(Echo, sock=lsock, backlog=1024))
    loop.run_forever()


_SERVERS: dict[str, Callable[[socket.socket], None]] = {
    "ringio": lambda s: _serve_ringio(s, batched=True),
    "ringio-noflags": lambda s: _serve_ringio(s, batched=True, coop=False),
    "ringio-wait": lambda s: _serve_ringio(s, batched=False),
    "uring-api": _serve_uring_api,
    "asyncio": lambda s: _serve_asyncio(s, use_uvloop=False),
    "uvloop": lambda s: _serve_asyncio(s, use_uvloop=True),
}


def _child_serve(impl: str) -> int:
    """`python -m ringio.bench serve-echo IMPL`: print PORT n, serve until stdin closes."""
    lsock = _listen()

    def watch_stdin() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(f"PORT {lsock.getsockname()[1]}\n")
    sys.stdout.flush()
    _SERVERS[impl](lsock)
    return 0


# --------------------------------------------------------------------------- echo: client


def _child_client(port: int, conns: int, msgs: int, size: int) -> int:
    """The Python stand-in for tests/bench/c/echo_client.c (same protocol, same output)."""
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)

    # Byte k of message `rnd` on connection i is (i * 31 + rnd * 7 + k) mod 256, as in C.
    base = bytes(range(256)) * (size // 256 + 2)

    def payload(i: int, rnd: int) -> bytes:
        off = (i * 31 + rnd * 7) & 0xFF
        return base[off:off + size]

    ok = True
    t0 = 0.0
    for phase in (0, 1):
        target = 1 if phase == 0 else msgs + 1
        rounds = [0 if phase == 0 else 1] * conns
        out = [payload(i, rounds[i]) for i in range(conns)]
        got = [bytearray() for _ in range(conns)]
        active = conns
        if phase == 1:
            t0 = perf_counter()
        for i, s in enumerate(socks):
            s.sendall(out[i])
        while active:
            events = sel.select(10.0)
            if not events:
                sys.stderr.write(f"echo client: no progress for 10 s ({active} waiting)\n")
                return 1
            for key, _ in events:
                i = key.data
                s = socks[i]
                try:
                    chunk = s.recv(size - len(got[i]))
                except BlockingIOError:
                    continue
                if not chunk:
                    sys.stderr.write("echo client: server closed a connection\n")
                    return 1
                got[i] += chunk
                if len(got[i]) < size:
                    continue
                ok = ok and bytes(got[i]) == out[i]
                rounds[i] += 1
                if rounds[i] == target:
                    active -= 1
                    continue
                got[i] = bytearray()
                out[i] = payload(i, rounds[i])
                s.setblocking(True)
                s.sendall(out[i])
                s.setblocking(False)
    seconds = perf_counter() - t0
    for s in socks:
        s.close()
    print(json.dumps({"messages": conns * msgs, "seconds": seconds, "ok": ok}))
    return 0 if ok else 1


# --------------------------------------------------------------------------- echo: harness


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class EchoHarness:
    def __init__(self, cprogs: CPrograms, sz: Sizes) -> None:
        self.cprogs = cprogs
        self.sz = sz
        self.client_args: list[str] = []
        cpus = _cpus()
        self.server_cpu = cpus[0] if len(cpus) >= 2 else None
        self.client_cpu = cpus[1] if len(cpus) >= 2 else None
        try:
            self.client_cmd: list[str] = [str(cprogs.get("echo_client"))]
            self.client_desc = "tests/bench/c/echo_client.c (epoll, non-blocking sockets"
            if self.client_cpu is not None:
                # Pinned to a CPU of its own, the client polls without sleeping, so its
                # wake-ups do not pace the server.
                self.client_args = ["spin"]
                self.client_desc += ", polling without sleeping on its own CPU"
            self.client_desc += ")"
        except Unavailable as e:
            self.client_cmd = [sys.executable, "-m", "ringio.bench", "echo-client"]
            self.client_desc = f"the Python client in ringio.bench (C client unavailable: {e})"

    @contextmanager
    def server(self, server_cmd: list[str], size: int, conns: int, msgs: int) -> Iterator[Once]:
        """Start a server process; each call of the yielded function is one client run."""
        # stderr goes to a file: a pipe nobody reads could fill up and stall the server.
        with tempfile.TemporaryFile(mode="w+") as errfile:
            server = subprocess.Popen(
                server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errfile,
                # The harness runs no threads, so preexec_fn is safe here.
                text=True, preexec_fn=_pinned(self.server_cpu),  # noqa: PLW1509
            )
            try:
                port = self._read_port(server, errfile)

                def once() -> tuple[int, float]:
                    if server.poll() is not None:
                        raise RuntimeError(f"server exited {server.returncode}: "
                                           f"{_tail(errfile)}")
                    cmd = [*self.client_cmd, str(port), str(conns), str(msgs), str(size),
                           *self.client_args]
                    p = subprocess.run(cmd, check=False, capture_output=True, text=True,
                                       timeout=600, preexec_fn=_pinned(self.client_cpu))
                    if p.returncode != 0:
                        tail = p.stderr.strip()[-300:]
                        if server.poll() is not None:
                            tail += f"; server exited {server.returncode}: {_tail(errfile)}"
                        raise RuntimeError(f"echo client failed: {tail}")
                    out = json.loads(p.stdout.strip().splitlines()[-1])
                    if not out["ok"]:
                        raise RuntimeError("echoed bytes differ from what was sent")
                    return out["messages"], out["seconds"]

                yield once
            finally:
                self._stop(server)

    @staticmethod
    def _read_port(server: subprocess.Popen, errfile: Any) -> int:
        sel = selectors.DefaultSelector()
        sel.register(server.stdout, selectors.EVENT_READ)
        if not sel.select(30.0):
            raise RuntimeError("server did not report its port within 30 s")
        line = server.stdout.readline().strip()
        if not line.startswith("PORT "):
            server.wait(5)
            raise RuntimeError(f"server failed to start: {line} {_tail(errfile)}")
        return int(line.split()[1])

    @staticmethod
    def _stop(server: subprocess.Popen) -> None:
        try:
            server.stdin.close()  # the servers exit when stdin closes
        except OSError:
            pass
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


def _tail(f: Any, n: int = 400) -> str:
    f.seek(0)
    return f.read().strip()[-n:]


def _py_server(impl: str) -> list[str]:
    return [sys.executable, "-m", "ringio.bench", "serve-echo", impl]


def _check_ringio_sockets() -> None:
    ringio = _import_ringio()
    missing = [m for m in ("submit_accept_multishot", "submit_recv_multishot", "submit_send")
               if not hasattr(ringio.Ring, m)]
    if missing:
        raise Unavailable(f"this ringio build has no {', '.join(missing)} (socket operations "
                          "not installed yet)")


def scenario_echo(sz: Sizes, cprogs: CPrograms) -> dict:
    h = EchoHarness(cprogs, sz)
    ua, uv = _peer_label("uring-api"), _peer_label("uvloop")

    def ringio_cmd(impl: str) -> Callable[[], list[str]]:
        def f() -> list[str]:
            _check_ringio_sockets()
            return _py_server(impl)
        return f

    def peer_cmd(impl: str, check: Callable[[], Any]) -> Callable[[], list[str]]:
        def f() -> list[str]:
            check()
            return _py_server(impl)
        return f

    servers: list[tuple[str, str, Callable[[], list[str]]]] = [
        # The loop without COOP_TASKRUN ("ringio-noflags") and without batch() ("ringio-wait")
        # are still servable (python -m ringio.bench serve-echo IMPL) but no longer measured
        # by default: the run is long enough with three connection counts.
        ("ringio", "multishot accept+recv, send; batch() + wait_many", ringio_cmd("ringio")),
        (ua, "same loop: wait() one at a time (no batch, no wait_many)",
         peer_cmd("uring-api", _import_uring_api)),
        ("asyncio", "Protocol: data_received -> transport.write", lambda: _py_server("asyncio")),
        (uv, "same Protocol on uvloop", peer_cmd("uvloop", _import_uvloop)),
        ("C liburing", "multishot accept+recv (shared buffer ring), send; submit_and_wait",
         lambda: [str(cprogs.get("echo_server"))]),
    ]
    rows: list[Row] = []
    for size in sz.echo_sizes:
        for conns, msgs in zip(sz.echo_conns, sz.echo_msgs, strict=True):
            group = f"{conns} conn" + ("" if len(sz.echo_sizes) == 1 else f", {size} B")
            _log(f"echo, {conns} connections, {size}-byte messages")
            rows += _run_rows([
                (Row(impl, how, group, "msg/s"),
                 lambda cmd=cmd, size=size, conns=conns, msgs=msgs: h.server(cmd(), size, conns, msgs))
                for impl, how, cmd in servers
            ], sz.repeats)
    pin = (f"server on CPU {h.server_cpu}, client on CPU {h.client_cpu}"
           if h.server_cpu is not None else "not pinned (fewer than 2 CPUs)")
    return {
        "title": "echo: TCP loopback echo",
        "baselines": [uv, ua],
        "setup": "; ".join(f"{c} connections x {m:,} request/response round trips each"
                           for c, m in zip(sz.echo_conns, sz.echo_msgs, strict=True))
                 + f"; {'/'.join(f'{x} B' for x in sz.echo_sizes)} messages. "
                 f"Client: {h.client_desc}, one process for every server; {pin}. "
                 f"io_uring servers: IORING_SETUP_COOP_TASKRUN unless said otherwise, "
                 f"provided buffers of {ECHO_BUF_SIZE} B ({ECHO_BUF_COUNT} per connection "
                 "in Python, one shared ring of 4096 in C).",
        "unit": "msg/s",
        "rows": rows,
    }


# --------------------------------------------------------------------------- pingpong


def _pp_check(ok: bool) -> None:
    if not ok:
        raise RuntimeError("a send or receive moved fewer bytes than the message")


def _pp_hops(n: int, hops, send, recv, wm, msg, buf, size: int) -> bool:
    """The loop of the batched ringio row (and of its interpreter floor): per hop a
    send and a receive are staged, and wait_many() hands both to the kernel in the
    io_uring_enter that waits for them."""
    ok = True
    for _ in range(n):
        for x, y in hops:
            s = send(x, msg)
            r = recv(y, buf)
            if len(wm(2)) < 2:
                wm(1)
            ok = ok and s.res == size and r.res == size
    return ok


@contextmanager
def _pingpong_ringio(n: int, size: int, batched: bool) -> Iterator[Once]:
    """Both ends of a socketpair on one ring; a hop is a send and a receive."""
    ringio = _import_ringio()
    a, b = socket.socketpair()
    msg, buf = b"p" * size, bytearray(size)
    try:
        with ringio.Ring(entries=8) as ring:
            send, recv, wm, wait = ring.submit_send, ring.submit_recv, ring.wait_many, ring.wait
            hops = ((a.fileno(), b.fileno()), (b.fileno(), a.fileno()))

            def once() -> tuple[int, float]:
                ok = True
                t0 = perf_counter()
                if batched:
                    with ring.batch():  # every wait_many() submits what is staged: one enter per hop
                        ok = _pp_hops(n, hops, send, recv, wm, msg, buf, size)
                else:
                    for _ in range(n):
                        for x, y in hops:  # each submit enters the kernel; wait() one at a time
                            s = send(x, msg)
                            r = recv(y, buf)
                            wait()
                            wait()
                            ok = ok and s.res == size and r.res == size
                dt = perf_counter() - t0
                _pp_check(ok and buf == msg)
                return n, dt

            yield once
    finally:
        a.close()
        b.close()


class _Done:
    """What the interpreter-floor loops get back instead of a Completion."""

    __slots__ = ("res",)

    def __init__(self, res: int) -> None:
        self.res = res


def _interpreter_floor(loop: Callable[[], None], ops: int, repeats: int) -> float:
    """Median seconds per op of `loop`: a benchmark loop with every ringio call replaced by
    a C function that does no I/O (dict.get, list.copy), so what is left is the
    interpreter's own cost of running the loop."""
    loop()  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = perf_counter()
        loop()
        runs.append((perf_counter() - t0) / ops)
    return statistics.median(runs)


@contextmanager
def _pingpong_uring_api(n: int, size: int) -> Iterator[Once]:
    uring_api = _import_uring_api()
    a, b = socket.socketpair()
    msg, buf = b"p" * size, bytearray(size)
    ring = uring_api.Ring(8)
    try:
        send, recv, wait = ring.submit_send, ring.submit_recv, ring.wait
        hops = ((a.fileno(), b.fileno()), (b.fileno(), a.fileno()))

        def once() -> tuple[int, float]:
            ok = True
            t0 = perf_counter()
            for _ in range(n):
                for x, y in hops:
                    send(x, msg, None)
                    recv(y, buf, None)
                    ok = ok and wait().res == size and wait().res == size
            dt = perf_counter() - t0
            _pp_check(ok and buf == msg)
            return n, dt

        yield once
    finally:
        ring.close()
        a.close()
        b.close()


def scenario_pingpong(sz: Sizes, cprogs: CPrograms) -> dict:
    n, size = sz.pingpong_trips, sz.msg_size
    g, u = "pingpong", "round trips/s"
    rows = _run_rows([
        (Row("ringio", "one batch() around the loop: submit_send + submit_recv, wait_many "
                       "(one enter per hop)", g, u),
         lambda: _pingpong_ringio(n, size, batched=True)),
        (Row("ringio", "no batch(): submit_send, submit_recv, wait, wait", g, u),
         lambda: _pingpong_ringio(n, size, batched=False)),
        (Row(_peer_label("uring-api"), "submit_send, submit_recv, wait, wait (its API)", g, u),
         lambda: _pingpong_uring_api(n, size)),
        (Row("C liburing", "prep_send + prep_recv, submit_and_wait(2)", g, u),
         lambda: _c_program(cprogs, "pingpong", n, size)),
    ], sz.repeats)
    done = _Done(size)
    stand_in = {0: done, 1: done}.get  # (fd, buffer) -> an object with .res, no I/O
    two = [done].__mul__  # wait_many(2) -> a new list of two
    floor = _interpreter_floor(
        lambda: _pp_hops(n, ((0, 1), (1, 0)), stand_in, stand_in, two, b"", b"", size),
        n, sz.repeats)
    return {
        "title": f"pingpong: {size}-byte ping-pong on a socketpair",
        "baselines": [_peer_label("uring-api")],
        "setup": f"{n:,} round trips of {size} B over an AF_UNIX stream socketpair whose two ends "
                 "are on one ring; a round trip is two hops (a to b, b to a), each hop a send "
                 "and a receive.",
        "unit": u,
        "rows": rows,
        "floor": _floor_report(rows, floor, "round trip"),
    }


def _floor_report(rows: list[Row], floor_s: float, op: str) -> dict:
    """Where one op of the first ringio row spends its time: the C program's time for the
    same op (the kernel's work, which no binding avoids), the interpreter running the loop
    (floor_s), and what is left: ringio's own code."""
    mine = next(r for r in rows if r.impl == "ringio")
    c = next((r for r in rows if r.impl == "C liburing"), None)
    rep = {"op": op, "interpreter_us": floor_s * 1e6, "row": mine.how}
    if mine.status == "ok" and mine.median and c is not None and c.status == "ok" and c.median:
        rep["ringio_us"] = 1e6 / mine.median
        rep["c_us"] = 1e6 / c.median
        rep["ringio_code_us"] = rep["ringio_us"] - rep["c_us"] - rep["interpreter_us"]
    return rep


# --------------------------------------------------------------------------- sends


# The reader when the C program cannot be built: recv_into one buffer, no allocation per read.
_DRAIN = ("import socket\ns = socket.socket(fileno=0)\nbuf = bytearray(1 << 20)\n"
          "while s.recv_into(buf):\n    pass\n")


@contextmanager
def _drained_pair(cprogs: CPrograms) -> Iterator[socket.socket]:
    """The writing end of a socketpair whose other end a reader process drains: the C
    program's own reader (`sends drain`), so every row faces the same reader."""
    try:
        cmd = [str(cprogs.get("sends")), "drain"]
    except Unavailable:
        cmd = [sys.executable, "-c", _DRAIN]
    a, b = socket.socketpair()
    reader = subprocess.Popen(cmd, stdin=b)
    b.close()
    try:
        yield a
    finally:
        a.close()
        reader.wait(30)


def _sends_loop(n: int, batch: int, send, wm, bt, fd, msg, size: int) -> int:
    """The loop of the ringio row (and of its interpreter floor): `batch` sends staged in
    one batch() block, reaped with wait_many().  Returns the OR of res ^ size (0: all sent)."""
    bad = done = 0
    while done < n:
        want = min(batch, n - done)
        with bt():
            for _ in range(want):
                send(fd, msg)
            got = 0
            while got < want:
                for c in wm(want - got):
                    bad |= c.res ^ size
                    got += 1
        done += want
    return bad


@contextmanager
def _sends_ringio(n: int, batch: int, size: int, cprogs: CPrograms) -> Iterator[Once]:
    ringio = _import_ringio()
    msg = b"s" * size
    with _drained_pair(cprogs) as a, ringio.Ring(entries=batch) as ring:
        send, wm, bt = ring.submit_send, ring.wait_many, ring.batch
        fd = a.fileno()

        def once() -> tuple[int, float]:
            t0 = perf_counter()
            bad = _sends_loop(n, batch, send, wm, bt, fd, msg, size)
            dt = perf_counter() - t0
            if bad:
                raise RuntimeError("a send did not send the whole message")
            return n, dt

        yield once


@contextmanager
def _sends_uring_api(n: int, size: int, cprogs: CPrograms) -> Iterator[Once]:
    uring_api = _import_uring_api()
    msg = b"s" * size
    ring = uring_api.Ring(64)
    try:
        with _drained_pair(cprogs) as a:
            send, wait = ring.submit_send, ring.wait
            fd = a.fileno()

            def once() -> tuple[int, float]:
                bad = 0
                t0 = perf_counter()
                for _ in range(n):
                    send(fd, msg, None)
                    bad |= wait().res ^ size
                dt = perf_counter() - t0
                if bad:
                    raise RuntimeError("a send did not send the whole message")
                return n, dt

            yield once
    finally:
        ring.close()


def scenario_sends(sz: Sizes, cprogs: CPrograms) -> dict:
    n, b, size = sz.sends_total, sz.sends_batch, sz.msg_size
    g, u = f"batches of {b}", "sends/s"
    rows = _run_rows([
        (Row("ringio", f"batch(): {b}x submit_send, wait_many", g, u),
         lambda: _sends_ringio(n, b, size, cprogs)),
        (Row(_peer_label("uring-api"), "submit_send, wait (it has no batching)", g, u),
         lambda: _sends_uring_api(n, size, cprogs)),
        (Row("C liburing", f"{b}x prep_send, submit_and_wait({b})", g, u),
         lambda: _c_program(cprogs, "sends", n, b, size)),
    ], sz.repeats)
    done, lock = _Done(size), threading.Lock()
    floor = _interpreter_floor(
        lambda: _sends_loop(n, b, {0: done}.get, [done].__mul__, lambda: lock, 0, b"", size),
        n, sz.repeats)
    return {
        "title": f"sends: batched {size}-byte sends",
        "baselines": [_peer_label("uring-api")],
        "setup": f"{n:,} sends of {size} B on an AF_UNIX stream socketpair, {b} per batch; a "
                 "reader process drains the other end with 1 MiB reads (the loop of "
                 "tests/bench/c/sends.c for every row: `sends drain`, or its forked child).",
        "unit": u,
        "rows": rows,
        "floor": _floor_report(rows, floor, "send"),
    }


# --------------------------------------------------------------------------- http

_WRK_POST = 'wrk.method = "POST"\n'


def _http_threading(lsock: socket.socket) -> None:
    """http.server.ThreadingHTTPServer with the same three routes, HTTP/1.1 keep-alive."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from .serve import FIBONACCI_MAX, fibonacci

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, every keep-alive response
        # would wait for a delayed ACK (40 ms).  TCP_NODELAY, as ringio and asyncio set it.
        disable_nagle_algorithm = True

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            if self.path == "/":
                self._answer(200, b"ringio serve: POST /N answers the Nth Fibonacci number; GET /health\n")
            elif self.path == "/health":
                self._answer(200, b"ok\n")
            else:
                self._answer(404, b"Not Found\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            try:
                n = int(self.path[1:])
            except ValueError:
                self._answer(404, b"Not Found\n")
                return
            if not 0 <= n <= FIBONACCI_MAX:
                self._answer(400, b"N out of range\n")
                return
            self._answer(200, f"{fibonacci(n)}\n".encode())

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self) -> None:  # the socket is bound already
            self.server_address = self.socket.getsockname()
            self.server_name, self.server_port = self.server_address[:2]

    srv = Server(lsock.getsockname(), Handler, bind_and_activate=False)
    srv.socket.close()
    srv.socket = lsock
    srv.serve_forever()


def _http_asyncio(lsock: socket.socket) -> None:
    """A plain asyncio-streams HTTP/1.1 server with the same routes, keep-alive."""
    import asyncio

    from .serve import FIBONACCI_MAX, fibonacci

    index = b"ringio serve: POST /N answers the Nth Fibonacci number; GET /health\n"

    def answer(status: int, body: bytes) -> bytes:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n").encode() + body

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ")
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if method == "GET" and path == "/":
                    out = answer(200, index)
                elif method == "GET" and path == "/health":
                    out = answer(200, b"ok\n")
                elif method == "POST" and path[1:].isdigit():
                    n = int(path[1:])
                    out = (answer(200, f"{fibonacci(n)}\n".encode()) if n <= FIBONACCI_MAX
                           else answer(400, b"N out of range\n"))
                else:
                    out = answer(404, b"Not Found\n")
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=lsock, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())


_HTTP_SERVERS: dict[str, Callable[[socket.socket], None]] = {
    "threading": _http_threading,
    "asyncio": _http_asyncio,
}


def _child_serve_http(impl: str) -> int:
    """`python -m ringio.bench serve-http IMPL`: print PORT n, serve until killed."""
    lsock = _listen()
    sys.stdout.write(f"PORT {lsock.getsockname()[1]}\n")
    sys.stdout.flush()
    _HTTP_SERVERS[impl](lsock)
    return 0


class HttpHarness:
    """A server process (pinned to the first CPU) and wrk (pinned to the second)."""

    PORT_RE = re.compile(rb"(?:^PORT |listening on http://127\.0\.0\.1:)(\d+)", re.M)

    def __init__(self, sz: Sizes, workdir: Path) -> None:
        self.sz = sz
        self.wrk = shutil.which("wrk")
        cpus = _cpus()
        self.server_cpu = cpus[0] if len(cpus) >= 2 else None
        self.client_cpu = cpus[1] if len(cpus) >= 2 else None
        workdir.mkdir(parents=True, exist_ok=True)
        self.post_lua = workdir / "wrk_post.lua"
        self.post_lua.write_text(_WRK_POST, encoding="ascii")

    @contextmanager
    def server(self, cmd: list[str], method: str, path: str) -> Iterator[Once]:
        if self.wrk is None:
            raise Unavailable("wrk is not installed (apt-get install wrk; ci/bootstrap.sh does)")
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=_pinned(self.server_cpu))  # noqa: PLW1509
            try:
                port = self._port(proc, out)
                url = f"http://127.0.0.1:{port}{path}"
                wrk = [self.wrk, "-t2", f"-c{self.sz.http_conns}", f"-d{self.sz.http_seconds}s"]
                if method == "POST":
                    wrk += ["-s", str(self.post_lua)]

                def once() -> tuple[int, float]:
                    if proc.poll() is not None:
                        raise RuntimeError(f"server exited {proc.returncode}: {_tail_bytes(out)}")
                    p = subprocess.run([*wrk, url], check=False, capture_output=True, text=True,
                                       timeout=self.sz.http_seconds + 60,
                                       preexec_fn=_pinned(self.client_cpu))  # noqa: PLW1509
                    return _parse_wrk(p)

                yield once
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    @classmethod
    def _port(cls, proc: subprocess.Popen, out: Any) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out.seek(0)
            m = cls.PORT_RE.search(out.read())
            if m:
                return int(m.group(1))
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: {_tail_bytes(out)}")
            time.sleep(0.02)
        raise RuntimeError("server did not report its port within 30 s")


def _tail_bytes(f: Any, n: int = 400) -> str:
    f.seek(0)
    return f.read().decode(errors="replace").strip()[-n:]


def _parse_wrk(p: subprocess.CompletedProcess) -> tuple[int, float]:
    if p.returncode != 0:
        raise RuntimeError(f"wrk exited {p.returncode}: {p.stderr.strip()[-300:]}")
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", p.stdout)
    if m is None:
        raise RuntimeError(f"unexpected wrk output: {p.stdout[-300:]}")
    n = int(m.group(1))
    secs = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    if bad:
        raise RuntimeError(f"{bad.group(1)} of {n} responses were not 2xx")
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", p.stdout)
    if errs and sum(int(x) for x in errs.groups()) > n // 100:
        raise RuntimeError(f"wrk: {errs.group(0)} ({n} requests)")
    if n == 0:
        raise RuntimeError("wrk completed no request")
    return n, secs


def scenario_http(sz: Sizes, cprogs: CPrograms) -> dict:
    h = HttpHarness(sz, (cprogs.build or Path(tempfile.gettempdir()) / "ringio-bench"))

    def ringio_cmd() -> list[str]:
        _check_ringio_sockets()
        return [sys.executable, "-m", "ringio", "serve", "--port", "0"]

    servers: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("ringio", "python -m ringio serve (one ring, batch() + wait_many)", ringio_cmd),
        ("asyncio", "asyncio streams: readuntil, write, drain",
         lambda: [sys.executable, "-m", "ringio.bench", "serve-http", "asyncio"]),
        ("ThreadingHTTPServer", "http.server, a thread per connection, HTTP/1.1",
         lambda: [sys.executable, "-m", "ringio.bench", "serve-http", "threading"]),
    ]
    rows: list[Row] = []
    for target in sz.http_paths:
        method, path = target.split(" ")
        _log(f"http, {target}")
        rows += _run_rows([
            (Row(impl, how, target, "req/s"),
             lambda cmd=cmd, method=method, path=path: h.server(cmd(), method, path))
            for impl, how, cmd in servers
        ], sz.repeats)
    pin = (f"server on CPU {h.server_cpu}, wrk on CPU {h.client_cpu}"
           if h.server_cpu is not None else "not pinned (fewer than 2 CPUs)")
    return {
        "title": "http: HTTP/1.1 keep-alive with wrk",
        "baselines": ["ThreadingHTTPServer"],
        "setup": f"wrk -t2 -c{sz.http_conns} -d{sz.http_seconds}s against each server "
                 f"({', '.join(sz.http_paths)}; POST /20 answers F(20) = 6765 from a Python "
                 f"handler, the same function everywhere); {pin}; a non-2xx answer fails the row.",
        "unit": "req/s",
        "rows": rows,
    }


# --------------------------------------------------------------------------- timers


@contextmanager
def _timers_ringio(n: int, delay: float) -> Iterator[Once]:
    ringio = _import_ringio()
    etime = -errno.ETIME
    with ringio.Ring(entries=4096, cq_entries=16384) as ring:
        sub, wm, bt = ring.submit_timeout, ring.wait_many, ring.batch

        def once() -> tuple[int, float]:
            expired = got = 0
            t0 = perf_counter()
            with bt():
                for _ in range(n):
                    sub(delay)
                while got < n:
                    for c in wm(4096):
                        expired += c.res == etime
                        got += 1
            dt = perf_counter() - t0
            if expired != n:
                raise RuntimeError(f"{n - expired} timeouts did not complete with -ETIME")
            return n, dt

        yield once


@contextmanager
def _timers_asyncio(n: int, delay: float, use_uvloop: bool) -> Iterator[Once]:
    import asyncio

    if use_uvloop:
        loop = _import_uvloop().new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        def once() -> tuple[int, float]:
            fut = loop.create_future()
            count = 0

            def cb() -> None:
                nonlocal count
                count += 1
                if count == n:
                    fut.set_result(None)

            async def main() -> float:
                t0 = perf_counter()
                call_later = loop.call_later
                for _ in range(n):
                    call_later(delay, cb)
                await fut
                return perf_counter() - t0

            return n, loop.run_until_complete(main())

        yield once
    finally:
        loop.close()


def _scenario_files(sz: Sizes, cprogs: CPrograms) -> dict:
    from .bench_files import scenario_files  # its own module (it imports this one)

    return scenario_files(sz, cprogs)


def _scenario_sim(sz: Sizes, cprogs: CPrograms) -> dict:
    from .bench_sim import scenario_sim  # its own module (it imports this one)

    return scenario_sim(sz, cprogs)


def scenario_timers(sz: Sizes, cprogs: CPrograms) -> dict:
    n, d = sz.timers, sz.timer_delay
    g, u = "timers", "completions/s"
    rows = _run_rows([
        (Row("ringio", f"batch(): {n:,}x submit_timeout({d}), wait_many", g, u),
         lambda: _timers_ringio(n, d)),
        (Row("asyncio", f"{n:,}x loop.call_later({d}, cb)", g, u),
         lambda: _timers_asyncio(n, d, use_uvloop=False)),
        (Row(_peer_label("uvloop"), f"{n:,}x loop.call_later({d}, cb)", g, u),
         lambda: _timers_asyncio(n, d, use_uvloop=True)),
        (Row("C liburing", f"{n:,}x prep_timeout, submit_and_wait", g, u),
         lambda: _c_program(cprogs, "timers", n, repr(d))),
    ], sz.repeats)
    return {
        "title": "timers: relative timeouts",
        "setup": f"{n:,} timers of {d * 1000:g} ms armed at once; time from the first arm to "
                 "the last expiry (so at least the delay).",
        "unit": u,
        "rows": rows,
    }


# --------------------------------------------------------------------------- report


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _system_liburing() -> str:
    try:
        p = subprocess.run(["pkg-config", "--modversion", "liburing"], check=False,
                           capture_output=True, text=True, timeout=10)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def _cc_version() -> str:
    cc = os.environ.get("CC", "cc")
    try:
        p = subprocess.run([cc, "--version"], check=False, capture_output=True, text=True,
                           timeout=10)
        return p.stdout.splitlines()[0] if p.returncode == 0 and p.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "not installed"
    try:
        p = subprocess.run([wrk, "-v"], check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"wrk (\S+)", p.stdout + p.stderr)
    return m.group(1) if m else "unknown"


def render_png(report: dict, path: str) -> None:
    """One horizontal bar chart per group: every implementation's median, min-max whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = []
    for sc in report["scenarios"].values():
        groups = list(dict.fromkeys(r["group"] for r in sc["rows"]))
        for g in groups:
            rows = [r for r in sc["rows"] if r["group"] == g and r["status"] == "ok"]
            if rows:
                panels.append((f"{sc['title'].split(':')[0]}: {g}", sc["unit"], rows))
    if not panels:
        raise RuntimeError("nothing to draw: no row ran")
    cols = 2
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(13, 2.3 * nrows + 0.8), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title, unit, rows) in zip(axes.flat, panels, strict=False):
        labels = [r["impl"] if len(r["how"]) > 60 or [x["impl"] for x in rows].count(r["impl"]) == 1
                  else f"{r['impl']} ({r['how'][:28]})" for r in rows]
        med = [r["median"] for r in rows]
        err = [[r["median"] - r["min"] for r in rows], [r["max"] - r["median"] for r in rows]]
        colors = ["#d62728" if r["impl"].startswith("ringio") else "#7f7f7f" if r["impl"] == "C liburing"
                  else "#1f77b4" for r in rows]
        y = list(range(len(rows)))[::-1]
        ax.barh(y, med, xerr=err, color=colors, capsize=2)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: _fmt_rate(x) if x else "0"))
        ax.tick_params(axis="x", labelsize=7)
        top = max(med)
        for yi, m in zip(y, med, strict=True):
            ax.text(m + top * 0.01, yi, _fmt_rate(m), va="center", fontsize=7)
        ax.set_xlim(0, top * 1.25)
    m = report["machine"]
    via = report.get("via") or report["command"]
    fig.suptitle(f"{via.split(' -- ')[0]}  |  {m['cpu']}, {m['cpus']} CPUs, "
                 f"kernel {m['kernel']}, {m['python']}  |  median of {report['repeats']} runs "
                 "(red: ringio, grey: C liburing)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def machine_info(busy_sample: float = 1.0) -> dict:
    try:
        import ringio

        ringio_v = f"{ringio.__version__} (built against {ringio.__liburing_version__})"
    except ImportError as e:  # pragma: no cover
        ringio_v = f"unavailable: {e}"
    peers = {d: _version(d) or "not installed" for d in ("uvloop", "liburing", "uring-api", "caio", "libaio")}
    peers["python-libaio"] = peers.pop("libaio")  # the PyPI name is just libaio
    peers["wrk"] = _wrk_version()
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(_cpus()) or None,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "ringio": ringio_v,
        "liburing_system": _system_liburing(),
        "cc": _cc_version(),
        "peers": peers,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy_before_pct": _cpu_busy(busy_sample),
    }


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return ""
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _fmt_ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def _command(argv: Sequence[str]) -> str:
    return "python -m ringio bench" + "".join(" " + shlex.quote(a) for a in argv)


def _via(argv: Sequence[str]) -> str | None:
    """The nox command line that ran us, if nox did."""
    if os.environ.get("NOX_CURRENT_SESSION") != "bench":
        return None
    return ".venv/bin/nox -s bench" + ("".join([" --", *(" " + shlex.quote(a) for a in argv)])
                                       if argv else "")


def _cpu_busy(seconds: float = 1.0) -> float | None:
    """Percentage of all CPUs busy over `seconds` while this process sleeps: what
    other processes are using (the machine is idle if this is near 0)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return sum(v[:8]), idle

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1)


def render_markdown(report: dict) -> str:
    m = report["machine"]
    out = ["## ringio benchmarks", ""]
    via = f" (run by `{report['via']}`)" if report.get("via") else ""
    quick = " -- quick sizes: a smoke run, not a measurement" if report["quick"] else ""
    out.append(f"Command: `{report['command']}`{via}{quick}")
    out.append("")
    out.append("| machine | |")
    out.append("| --- | --- |")
    out.append(f"| CPU | {m['cpu']} ({m['cpus']} logical CPUs, {m['cpus_usable']} usable) |")
    out.append(f"| kernel | {m['kernel']} |")
    out.append(f"| Python | {m['python']} |")
    out.append(f"| ringio | {m['ringio']} |")
    out.append(f"| liburing (C programs) | {m['liburing_system']}, {m['cc']} |")
    out.append("| peers | " + ", ".join(f"{k} {v}" for k, v in m["peers"].items()) + " |")
    busy = [m.get("cpu_busy_before_pct"), m.get("cpu_busy_after_pct")]
    out.append("| CPUs busy with other work | "
               + " / ".join("?" if b is None else f"{b:g}%" for b in busy)
               + " (sampled just before / after the run) |")
    out.append("")
    if any(b is not None and b > 10 for b in busy):
        out.append("**Warning: other processes were using the CPUs around this run: absolute "
                   "numbers and spreads are noisier than on an idle machine (ratios within one "
                   "group are measured round-robin and suffer less).**")
        out.append("")
    out.append(f"Median of {report['repeats']} runs after one warm-up run (min-max in "
               "brackets); ratios are medians divided by the C liburing (or asyncio) median of "
               "the same group in the same run.")
    for sc in report["scenarios"].values():
        out.append("")
        out.append(f"### {sc['title']}")
        out.append("")
        out.append(sc["setup"])
        out.append("")
        groups = list(dict.fromkeys(r["group"] for r in sc["rows"]))
        show_aio = any(r["ratio_to_asyncio"] is not None for r in sc["rows"])
        bases = [b for b in sc.get("baselines", ()) if any(b in r.get("ratios", {}) for r in sc["rows"])]
        names = (["group"] if len(groups) > 1 else []) + ["implementation", "how"]
        nums = ([f"{sc['unit']} median [min-max]", "vs C liburing"] + (["vs asyncio"] if show_aio else [])
                + [f"vs {b}" for b in bases])
        out.append("| " + " | ".join(names + nums) + " |")
        out.append("|" + "|".join([" --- "] * len(names) + [" ---: "] * len(nums)) + "|")
        for r in sc["rows"]:
            cells = [r["group"]] if len(groups) > 1 else []
            cells += [r["impl"], r["how"]]
            if r["status"] == "ok":
                cells.append(f"**{_fmt_rate(r['median'])}** [{_fmt_rate(r['min'])}-"
                             f"{_fmt_rate(r['max'])}]")
                cells.append(_fmt_ratio(r["ratio_to_c"]))
                if show_aio:
                    cells.append(_fmt_ratio(r["ratio_to_asyncio"]))
                cells += [_fmt_ratio(r.get("ratios", {}).get(b)) for b in bases]
            else:
                cells.append(f"{r['status']}: {r['reason']}".replace("|", "\\|"))
                cells.append("")
                if show_aio:
                    cells.append("")
                cells += [""] * len(bases)
            out.append("| " + " | ".join(cells) + " |")
        fl = sc.get("floor")
        if fl and "ringio_us" in fl:
            out.append("")
            out.append(f"Where one {fl['op']} of the first ringio row goes: {fl['ringio_us']:.2f} us = "
                       f"the C program's {fl['c_us']:.2f} us (the kernel's work, which no binding "
                       f"avoids) + {fl['interpreter_us']:.2f} us of interpreter running the loop "
                       "(the same loop with every ringio call replaced by a C function that does "
                       f"no I/O) + {fl['ringio_code_us']:.2f} us in ringio's own code.")
    if report["skipped"]:
        out.append("")
        out.append("Not measured:")
        out.append("")
        for k, v in report["skipped"].items():
            out.append(f"- {k}: {v}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (seconds in all): a smoke run, not a measurement")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the report as JSON to PATH (the Markdown table still goes to "
                        "stdout); without PATH, print JSON instead of Markdown")
    p.add_argument("--png", default=None, metavar="PATH",
                   help="draw the medians as a PNG chart at PATH (needs matplotlib)")
    p.add_argument("--scenario", action="append", choices=SCENARIOS, metavar="NAME",
                   help=f"run only this scenario ({', '.join(SCENARIOS)}); repeatable")
    p.add_argument("--repeat", type=int, default=None, metavar="N",
                   help="measured runs per implementation after the warm-up (default 5)")
    p.add_argument("--c-src", default=None, metavar="DIR",
                   help="directory of the C programs (default: tests/bench/c of the checkout "
                        "containing the current directory)")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="where the C programs are compiled (default: build/bench of the checkout)")


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    sz = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            raise SystemExit("--repeat must be >= 1")
        sz = Sizes(**{**asdict(sz), "repeats": args.repeat})
    src = CPrograms.find_src(args.c_src)
    cprogs = CPrograms(src, Path(args.build_dir).resolve() if args.build_dir else None)
    wanted = list(dict.fromkeys(args.scenario or SCENARIOS))
    fns = {"nop": scenario_nop, "pingpong": scenario_pingpong, "sends": scenario_sends,
           "echo": scenario_echo, "http": scenario_http, "timers": scenario_timers,
           "files": _scenario_files, "sim": _scenario_sim}
    report: dict[str, Any] = {
        "command": _command(argv),
        "via": _via(argv),
        "quick": bool(args.quick),
        "repeats": sz.repeats,
        "sizes": asdict(sz),
        "machine": machine_info(0.25 if args.quick else 1.0),
        "scenarios": {},
        "skipped": {},
    }
    for name in wanted:
        _log(f"scenario {name}")
        sc = fns[name](sz, cprogs)
        _set_ratios(sc["rows"], sc.get("baselines", ()))
        sc["rows"] = [asdict(r) for r in sc["rows"]]
        report["scenarios"][name] = sc
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["cpu_busy_after_pct"] = _cpu_busy(0.25 if args.quick else 1.0)
    return report


def main(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    report = run(args, argv)
    if args.json == "-":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_markdown(report))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            _log(f"wrote {args.json}")
    if args.png:
        try:
            render_png(report, args.png)
        except ImportError as e:
            _log(f"no chart: {e} (pip install matplotlib; the bench nox session does)")
            return 1
        _log(f"wrote {args.png}")
    # ringio itself failing (not a peer) is an error; unavailable io_uring is not.
    failed = [r for sc in report["scenarios"].values() for r in sc["rows"]
              if r["impl"] == "ringio" and r["status"] == "failed"]
    return 1 if failed else 0


def _child_main(argv: list[str]) -> int:
    """Internal roles of the echo scenario's processes."""
    if len(argv) == 2 and argv[0] == "serve-echo" and argv[1] in _SERVERS:
        return _child_serve(argv[1])
    if len(argv) == 2 and argv[0] == "serve-http" and argv[1] in _HTTP_SERVERS:
        return _child_serve_http(argv[1])
    if len(argv) == 5 and argv[0] == "echo-client":
        return _child_client(*(int(a) for a in argv[1:]))
    sys.stderr.write("usage: python -m ringio.bench serve-echo IMPL | serve-http IMPL | "
                     "echo-client PORT CONNS MSGS SIZE  (internal: use `python -m ringio bench`)\n")
    return 2


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
