"""The ``files`` scenario of ``python -m ringio bench``: reads of a page-cached file.

Two groups, every implementation measured round-robin in the same run
(``bench._run_rows``):

``random 4 KiB, 64 in flight``
    N reads of 4 KiB at random 4 KiB-aligned offsets of a page-cached file
    (256 MiB; the offsets come from one xorshift64 sequence shared with the C
    program, so every row reads the same blocks), 64 in flight: C on liburing
    (``tests/bench/c/file_reads.c``, the limit), ringio's plain Ring API
    (``batch()`` + ``submit_read`` into 64 reused buffers + ``wait_many``; and
    with a new bytes per read), ``ringio.asyncio`` (64 tasks awaiting
    ``ctx.read(4096, fd, offset)``), caio's asyncio contexts with the same 64
    tasks (``linux_uring``, its io_uring backend since caio 0.12, the one the
    targets compare with; ``linux_aio``, kernel AIO; ``thread_aio``), and a
    synchronous ``os.pread`` loop, and python-libaio (kernel AIO through ctypes:
    64 ``AIOBlock`` s over reused buffers, ``submit`` + ``getEvents``).  A peer
    that cannot be imported is reported as unavailable.
``sequential 1 MiB, 4 in flight``
    The file front to back in 1 MiB reads, 4 in flight (the pread loop: one at a
    time), in MiB/s.

``scenario_files(sz, cprogs)`` returns the scenario dict of ``bench.py``; its
``targets`` entry holds the ratios the issue asks for, computed from this run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .bench import CPrograms, Row, Sizes, Unavailable, _c_program, _log, _run_rows, perf_counter

BS_RANDOM = 4096
QD_RANDOM = 64
BS_SEQ = 1 << 20
QD_SEQ = 4


@dataclass(frozen=True)
class FileSizes:
    file_bytes: int
    random_reads: int
    seq_reads: int


FULL_FILES = FileSizes(file_bytes=256 << 20, random_reads=200_000, seq_reads=1024)
QUICK_FILES = FileSizes(file_bytes=8 << 20, random_reads=2_000, seq_reads=32)


def _file_sizes(sz: Sizes) -> FileSizes:
    # bench.Sizes has no file fields: the quick preset is recognised by its tiny NOP count.
    return QUICK_FILES if sz.nop_batch_ops < 100_000 else FULL_FILES


def _offsets(n: int, blocks: int, bs: int) -> list[int]:
    """xorshift64 seeded with 1, as tests/bench/c/file_reads.c."""
    x, out, mask = 1, [], (1 << 64) - 1
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append((x % blocks) * bs)
    return out


def _seq_offsets(n: int, blocks: int, bs: int) -> list[int]:
    return [(i % blocks) * bs for i in range(n)]


@contextmanager
def _data_file(nbytes: int) -> Iterator[Path]:
    """A file of nbytes random bytes, read once so that it sits in the page cache."""
    with tempfile.TemporaryDirectory(prefix="ringio-bench-files-", dir=os.environ.get("TMPDIR")) as d:
        p = Path(d) / "data"
        chunk = os.urandom(1 << 20)
        with open(p, "wb") as f:
            for _ in range(nbytes // len(chunk)):
                f.write(chunk)
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass
        yield p


@contextmanager
def _fd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def _checked(n: int, seconds: float, bad: int, per: int = 1) -> tuple[int, float]:
    if bad:
        raise RuntimeError(f"{bad} reads returned a wrong size")
    return n * per, seconds


# --------------------------------------------------------------------------- ringio Ring API


@contextmanager
def _ringio_ring(path: Path, offsets: list[int], bs: int, qd: int, new_bytes: bool,
                 per: int) -> Iterator:
    import ringio

    with _fd(path) as fd, ringio.Ring(entries=max(qd * 2, 8)) as ring:
        bufs = [bytearray(bs) for _ in range(qd)]
        n = len(offsets)

        def once() -> tuple[int, float]:
            sub, wm = ring.submit_read, ring.wait_many
            it = iter(offsets)
            done = bad = 0
            t0 = perf_counter()
            with ring.batch():
                submitted = min(qd, n)
                for i in range(submitted):
                    sub(fd, bs if new_bytes else bufs[i], next(it), i)
                while done < n:
                    for c in wm(qd):
                        done += 1
                        bad += c.res != bs
                        if submitted < n:
                            slot = c.user_data
                            sub(fd, bs if new_bytes else bufs[slot], next(it), slot)
                            submitted += 1
            dt = perf_counter() - t0
            return _checked(n, dt, bad, per)

        yield once


# --------------------------------------------------------------------------- asyncio contexts


def _tasks_reading(read, fd: int, offsets: list[int], bs: int, qd: int):
    """qd tasks, each awaiting read(bs, fd, offset) over its share of the offsets."""

    async def worker(share: list[int]) -> int:
        bad = 0
        for off in share:
            data = await read(bs, fd, off)
            bad += len(data) != bs
        return bad

    async def main() -> tuple[float, int]:
        t0 = perf_counter()
        bads = await asyncio.gather(*(worker(offsets[i::qd]) for i in range(qd)))
        return perf_counter() - t0, sum(bads)

    return main


@contextmanager
def _asyncio_context(make_ctx, path: Path, offsets: list[int], bs: int, qd: int,
                     per: int) -> Iterator:
    loop = asyncio.new_event_loop()
    try:
        with _fd(path) as fd:
            async def create():
                return make_ctx(qd, loop)

            ctx = loop.run_until_complete(create())
            try:
                main = _tasks_reading(ctx.read, fd, offsets, bs, qd)

                def once() -> tuple[int, float]:
                    dt, bad = loop.run_until_complete(main())
                    return _checked(len(offsets), dt, bad, per)

                yield once
            finally:
                ctx.close()
    finally:
        loop.close()


def _ringio_asyncio_ctx(qd: int, loop):
    import ringio.asyncio as rio

    return rio.AsyncioContext(max_requests=qd, loop=loop)


def _caio_ctx(variant: str):
    def make(qd: int, loop):
        try:
            import importlib

            mod = importlib.import_module(f"caio.{variant}_asyncio")
        except ImportError as e:
            raise Unavailable(f"caio.{variant}_asyncio: {e}") from None
        return mod.AsyncioContext(max_requests=qd, loop=loop)

    return make


def _caio_label(variant: str) -> str:
    try:
        from importlib.metadata import version

        return f"caio {version('caio')} ({variant})"
    except Exception:  # noqa: BLE001 -- not installed: reported as unavailable by the row
        return f"caio ({variant})"


# --------------------------------------------------------------------------- python-libaio


def _libaio_label() -> str:
    try:
        from importlib.metadata import version

        return f"python-libaio {version('libaio')}"
    except Exception:  # noqa: BLE001 -- not installed: reported as unavailable by the row
        return "python-libaio"


@contextmanager
def _libaio(path: Path, offsets: list[int], bs: int, qd: int, per: int) -> Iterator:
    """python-libaio (kernel AIO through ctypes): qd AIOBlocks over reused buffers, each
    resubmitted at its next offset as soon as getEvents() returns it.  Without O_DIRECT the
    kernel does a buffered read inside io_submit, as it does for caio's linux_aio."""
    try:
        import libaio
    except (ImportError, OSError) as e:  # OSError: the package is there, libaio.so.1 is not
        raise Unavailable(f"import libaio failed: {e}") from None
    with _fd(path) as fd, open(fd, "rb", buffering=0, closefd=False) as f, \
            libaio.AIOContext(qd) as ctx:
        blocks = [libaio.AIOBlock(libaio.AIOBLOCK_MODE_READ, f, [bytearray(bs)], 0)
                  for _ in range(qd)]
        n = len(offsets)

        def once() -> tuple[int, float]:
            it = iter(offsets)
            done = bad = 0
            t0 = perf_counter()
            first = blocks[:min(qd, n)]
            for b in first:
                b.offset = next(it)
            submitted = ctx.submit(first)
            while done < n:
                again = []
                for block, res, _res2 in ctx.getEvents(1):
                    done += 1
                    bad += res != bs
                    if submitted < n:
                        block.offset = next(it)
                        again.append(block)
                        submitted += 1
                if again:
                    ctx.submit(again)
            return _checked(n, perf_counter() - t0, bad, per)

        yield once


# --------------------------------------------------------------------------- os.pread


@contextmanager
def _pread_loop(path: Path, offsets: list[int], bs: int, per: int) -> Iterator:
    with _fd(path) as fd:
        def once() -> tuple[int, float]:
            pread = os.pread
            bad = 0
            t0 = perf_counter()
            for off in offsets:
                bad += len(pread(fd, bs, off)) != bs
            return _checked(len(offsets), perf_counter() - t0, bad, per)

        yield once


# --------------------------------------------------------------------------- the scenario


def _group(path: Path, offsets: list[int], bs: int, qd: int, mode: str, group: str, unit: str,
           per: int, cprogs: CPrograms, repeats: int) -> list[Row]:
    n = len(offsets)
    return _run_rows([
        (Row("C liburing", f"prep_read x{qd} in flight, submit_and_wait, for_each_cqe", group,
             unit), lambda: _c_program(cprogs, "file_reads", path, mode, n, bs, qd)),
        (Row("ringio", f"batch(): submit_read into {qd} reused buffers, wait_many", group, unit),
         lambda: _ringio_ring(path, offsets, bs, qd, False, per)),
        (Row("ringio", "batch(): submit_read(fd, n) -> new bytes, wait_many", group, unit),
         lambda: _ringio_ring(path, offsets, bs, qd, True, per)),
        (Row("ringio.asyncio", f"{qd} tasks: await ctx.read(n, fd, offset)", group, unit),
         lambda: _asyncio_context(_ringio_asyncio_ctx, path, offsets, bs, qd, per)),
        (Row(_caio_label("linux_uring"), f"{qd} tasks: await ctx.read(n, fd, offset)", group,
             unit),
         lambda: _asyncio_context(_caio_ctx("linux_uring"), path, offsets, bs, qd, per)),
        (Row(_caio_label("linux_aio"), f"{qd} tasks: await ctx.read(n, fd, offset)", group,
             unit), lambda: _asyncio_context(_caio_ctx("linux_aio"), path, offsets, bs, qd, per)),
        (Row(_caio_label("thread_aio"), f"{qd} tasks: await ctx.read(n, fd, offset)", group,
             unit), lambda: _asyncio_context(_caio_ctx("thread_aio"), path, offsets, bs, qd, per)),
        (Row(_libaio_label(), f"AIOContext: {qd} AIOBlocks over reused buffers, submit, "
                              "getEvents", group, unit),
         lambda: _libaio(path, offsets, bs, qd, per)),
        (Row("os.pread", "synchronous loop, one read at a time", group, unit),
         lambda: _pread_loop(path, offsets, bs, per)),
    ], repeats)


def _ratio(rows: list[Row], group: str, num: tuple[str, str], den: tuple[str, str]) -> float | None:
    def find(impl_prefix: str, how_prefix: str) -> Row | None:
        for r in rows:
            if (r.group == group and r.status == "ok" and r.impl.startswith(impl_prefix)
                    and r.how.startswith(how_prefix)):
                return r
        return None

    a, b = find(*num), find(*den)
    if a is None or b is None or not a.median or not b.median:
        return None
    return a.median / b.median


def _targets(rows: list[Row], g_rand: str, g_seq: str) -> list[dict]:
    ring_api = ("ringio", "batch(): submit_read into")
    aio = ("ringio.asyncio", "")
    caio = ("caio", "")  # the first caio row: its io_uring backend (linux_uring)
    checks = [
        ("random: Ring API / C liburing", g_rand, ring_api, ("C liburing", ""), 0.6),
        ("random: ringio.asyncio / caio (linux_uring)", g_rand, aio, caio, 2.5),
        ("random: ringio.asyncio / os.pread loop", g_rand, aio, ("os.pread", ""), 0.5),
        ("sequential: ringio.asyncio / caio (linux_uring)", g_seq, aio, caio, 1.0),
        ("sequential: Ring API / caio (linux_uring)", g_seq, ring_api, caio, 1.0),
    ]
    out = []
    for what, group, num, den, target in checks:
        r = _ratio(rows, group, num, den)
        out.append({"what": what, "ratio": r, "target": target,
                    "met": None if r is None else r >= target})
    return out


def scenario_files(sz: Sizes, cprogs: CPrograms) -> dict:
    fs = _file_sizes(sz)
    g_rand = f"random {BS_RANDOM // 1024} KiB, {QD_RANDOM} in flight"
    g_seq = f"sequential {BS_SEQ >> 20} MiB, {QD_SEQ} in flight"
    with _data_file(fs.file_bytes) as path:
        rand = _offsets(fs.random_reads, fs.file_bytes // BS_RANDOM, BS_RANDOM)
        seq = _seq_offsets(fs.seq_reads, fs.file_bytes // BS_SEQ, BS_SEQ)
        _log(f"files: {fs.file_bytes >> 20} MiB page-cached file at {path}")
        rows = _group(path, rand, BS_RANDOM, QD_RANDOM, "random", g_rand, "reads/s", 1,
                      cprogs, sz.repeats)
        rows += _group(path, seq, BS_SEQ, QD_SEQ, "seq", g_seq, "MiB/s", 1, cprogs, sz.repeats)
    targets = _targets(rows, g_rand, g_seq)
    lines = "; ".join(
        f"{t['what']}: {'n/a' if t['ratio'] is None else format(t['ratio'], '.2f')} "
        f"(target >= {t['target']:g}: {'n/a' if t['met'] is None else 'met' if t['met'] else 'MISSED'})"
        for t in targets)
    return {
        "title": "files: reads of a page-cached file",
        "setup": f"A {fs.file_bytes >> 20} MiB file, read once first so it is page-cached. "
                 f"{fs.random_reads:,} reads of {BS_RANDOM} B at the same pseudo-random aligned "
                 f"offsets for every row, {QD_RANDOM} in flight; {fs.seq_reads:,} sequential "
                 f"reads of 1 MiB, {QD_SEQ} in flight (MiB/s counts 1 MiB per read). "
                 f"Ratios of this run: {lines}.",
        "unit": "reads/s (= MiB/s for 1 MiB reads)",
        "rows": rows,
        "targets": targets,
    }
