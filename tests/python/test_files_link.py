"""Linked chains (Ring.link(), IOSQE_IO_LINK) and direct descriptors
(register_files, openat with file_index, fixed=True), on any backend."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import ringio
from files_support import one, reap

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks

DATA = b"0123456789" * 100


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(DATA)
    return p


def test_open_read_close_chain_with_a_direct_descriptor(ring, path):
    ring.register_files([-1] * 4)
    with ring.link() as r:
        assert r is ring
        ring.submit_openat(path, os.O_RDONLY, file_index=2, user_data="open")
        ring.submit_read(2, 64, 0, "read", fixed=True)
        ring.submit_close(2, "close", fixed=True)
    got = reap(ring, 3)
    assert got["open"].res == 0  # a direct open returns 0, not an fd
    assert got["read"].result == DATA[:64]
    assert got["close"].res == 0
    # The slot is empty again: a fixed read on it fails.
    op = ring.submit_read(2, 1, 0, "after", fixed=True)
    one(ring, op)
    assert op.res == -errno.EBADF


def test_failing_link_cancels_the_rest(ring, tmp_path):
    ring.register_files([-1] * 2)
    with ring.link():
        ring.submit_openat(tmp_path / "missing", os.O_RDONLY, file_index=0, user_data="open")
        ring.submit_read(0, 64, 0, "read", fixed=True)
        ring.submit_close(0, "close", fixed=True)
    got = reap(ring, 3)
    assert got["open"].res == -errno.ENOENT
    assert got["read"].res == -errno.ECANCELED and got["read"].result is None
    assert got["close"].res == -errno.ECANCELED


def test_short_read_breaks_a_link(ring, path):
    fd = os.open(path, os.O_RDWR)
    try:
        with ring.link():
            ring.submit_read(fd, 100, len(DATA) - 10, "short")  # 10 < 100: the link breaks
            ring.submit_write(fd, b"never", 0, "write")
        got = reap(ring, 2)
        assert got["short"].res == 10
        assert got["write"].res == -errno.ECANCELED
        assert os.pread(fd, 5, 0) == DATA[:5]
    finally:
        os.close(fd)


def test_link_with_normal_fds_runs_in_order(ring, path):
    fd = os.open(path, os.O_RDWR)
    try:
        with ring.link():
            ring.submit_write(fd, b"abcd", 0, "w")
            ring.submit_fsync(fd, True, "sync")
            ring.submit_read(fd, 4, 0, "r")
        got = reap(ring, 3)
        assert got["w"].res == 4 and got["sync"].res == 0
        assert got["r"].result == b"abcd"  # the read ran after the write
    finally:
        os.close(fd)


def test_exception_in_the_block_cancels_the_whole_chain(ring, path):
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(KeyError):
            with ring.link():
                ring.submit_write(fd, b"XXXX", 0, "w")
                ring.submit_read(fd, 4, 0, "r")
                raise KeyError("boom")
        got = reap(ring, 2)
        assert got["w"].res == -errno.ECANCELED and got["r"].res == -errno.ECANCELED
        assert os.pread(fd, 4, 0) == DATA[:4]  # nothing reached the kernel
    finally:
        os.close(fd)


def test_chain_longer_than_the_sq_fails_whole(uring, path):
    ring = ringio.Ring(4)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(ringio.SubmissionQueueFull):
                with ring.link():
                    for i in range(ring.sq_entries):
                        ring.submit_read(fd, 1, i, i)
                    ring.submit_read(fd, 1, 0, "one too many")
            got = reap(ring, ring.sq_entries)
            assert {c.res for c in got.values()} == {-errno.ECANCELED}
        finally:
            os.close(fd)
    finally:
        ring.close()


def test_chain_that_does_not_fit_now_fails_whole_in_strict_batch(uring, path):
    ring = ringio.Ring(4)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            with ring.batch(strict=True):
                for i in range(3):
                    ring.submit_read(fd, 1, i, f"staged{i}")
                with pytest.raises(ringio.SubmissionQueueFull):
                    with ring.link():
                        ring.submit_read(fd, 1, 0, "a")
                        ring.submit_read(fd, 1, 1, "b")
            got = reap(ring, 5)
            assert got["a"].res == got["b"].res == -errno.ECANCELED
            assert [got[f"staged{i}"].result for i in range(3)] == [b"0", b"1", b"2"]
        finally:
            os.close(fd)
    finally:
        ring.close()


def test_link_inside_batch_is_staged_whole(ring, path):
    fd = os.open(path, os.O_RDONLY)
    try:
        with ring.batch():
            with ring.link():
                ring.submit_read(fd, 2, 0, "a")
                ring.submit_read(fd, 2, 2, "b")
            assert ring.stats()["inflight"] == 2
        got = reap(ring, 2)
        assert (got["a"].result, got["b"].result) == (b"01", b"23")
    finally:
        os.close(fd)


def test_links_do_not_nest_and_empty_link_is_fine(ring):
    with ring.link():
        with pytest.raises(RuntimeError):
            with ring.link():
                pass
    with ring.link():
        pass
    assert ring.stats()["inflight"] == 0


def test_other_threads_cannot_join_a_chain(ring, path):
    errors = []
    fd = os.open(path, os.O_RDONLY)
    try:
        with ring.link():
            ring.submit_read(fd, 1, 0, "mine")

            def other():
                try:
                    ring.submit_nop("theirs")
                except RuntimeError as e:
                    errors.append(e)

            t = threading.Thread(target=other)
            t.start()
            t.join()
        assert len(errors) == 1
        got = reap(ring, 1)
        assert got["mine"].result == b"0"
    finally:
        os.close(fd)


def test_close_ring_with_open_chain_releases_everything(uring, path):
    ring = ringio.Ring()
    fd = os.open(path, os.O_RDONLY)
    try:
        link = ring.link()
        link.__enter__()
        buf = bytearray(4)
        op = ring.submit_read(fd, buf, 0, "r")
        ring.close()
        buf.extend(b"x")  # the export was released
        assert not op.done
        with pytest.raises(ringio.RingClosed):
            ring.submit_nop()
    finally:
        os.close(fd)


def test_file_index_alloc(ring, path):
    ring.register_files([-1] * 3)
    ops = [ring.submit_openat(path, os.O_RDONLY, file_index=ringio.FILE_INDEX_ALLOC,
                              user_data=i) for i in range(3)]
    got = reap(ring, 3)
    slots = sorted(c.result for c in got.values())
    assert slots == [0, 1, 2]
    full = ring.submit_openat(path, os.O_RDONLY, file_index=ringio.FILE_INDEX_ALLOC,
                              user_data="full")
    one(ring, full)
    assert full.res == -errno.ENFILE
    op = ring.submit_read(slots[1], 3, 0, "r", fixed=True)
    one(ring, op)
    assert op.result == DATA[:3]
    assert all(o.done for o in ops)


def test_registered_normal_fds(ring, path):
    fd = os.open(path, os.O_RDONLY)
    try:
        ring.register_files([fd, None])
        op = ring.submit_read(0, 5, 0, "fixed", fixed=True)
        one(ring, op)
        assert op.result == DATA[:5]
        empty = ring.submit_read(1, 5, 0, "empty", fixed=True)
        one(ring, empty)
        assert empty.res == -errno.EBADF
        ring.register_files([])  # unregisters
        ring.unregister_files()  # nothing registered: fine
    finally:
        os.close(fd)


def test_hard_link_goes_on_after_a_short_read(ring, path):
    ring.register_files([-1])
    with ring.link(hard=True):
        ring.submit_openat(path, os.O_RDONLY, file_index=0, user_data="open")
        ring.submit_read(0, 4096, 0, "read", fixed=True)  # the file is shorter: short read
        ring.submit_close(0, "close", fixed=True)
    got = reap(ring, 3)
    assert got["read"].result == DATA
    assert got["close"].res == 0  # not cancelled


def test_hard_link_goes_on_after_a_failure(ring, tmp_path):
    with ring.link(hard=True):
        ring.submit_unlinkat(tmp_path / "missing", user_data="fails")
        ring.submit_mkdirat(tmp_path / "made", user_data="runs")
    got = reap(ring, 2)
    assert got["fails"].res == -errno.ENOENT
    assert got["runs"].res == 0 and (tmp_path / "made").is_dir()
