"""One round trip per file operation (openat, read, write, readv, writev, fsync,
fallocate, statx, close, unlinkat, renameat, mkdirat), on any backend."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

import pytest
import ringio
from files_support import one, reap

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks

DATA = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(DATA)
    return p


@pytest.fixture
def fd(path):
    fd = os.open(path, os.O_RDWR)
    yield fd
    os.close(fd)


def test_openat_returns_a_cloexec_fd(ring, path):
    op = ring.submit_openat(path, os.O_RDONLY, user_data="open")
    assert op.kind == ringio.COMPLETION_KIND_OPENAT
    one(ring, op)
    assert op.res >= 0 and op.result == op.res
    try:
        assert os.read(op.result, 4) == DATA[:4]
        assert fcntl.fcntl(op.result, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(op.result)


def test_openat_creates_with_mode_relative_to_dir_fd(ring, tmp_path):
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        op = ring.submit_openat("new", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600, dfd, "c")
        one(ring, op)
        assert op.res >= 0
        os.close(op.result)
    finally:
        os.close(dfd)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o600 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_openat_missing_file_is_enoent(ring, tmp_path):
    op = ring.submit_openat(tmp_path / "missing", os.O_RDONLY, user_data=1)
    one(ring, op)
    assert op.res == -errno.ENOENT and op.result is None


def test_openat_fd_nobody_saw_is_closed_with_the_ring(uring, path):
    # fd_leak_check fails the test if the fd of the unseen completion stays open.
    r = ringio.Ring()
    r.submit_openat(path, os.O_RDONLY)
    r.close()


def test_read_into_buffer(ring, fd):
    buf = bytearray(100)
    op = ring.submit_read(fd, buf, 10, "r")
    assert op.kind == ringio.COMPLETION_KIND_READ
    one(ring, op)
    assert (op.res, op.result) == (100, 100)
    assert buf == DATA[10:110]


def test_read_new_bytes_complete_and_short(ring, fd):
    full = ring.submit_read(fd, 300, 0, "full")
    short = ring.submit_read(fd, 300, len(DATA) - 7, "short")
    eof = ring.submit_read(fd, 300, len(DATA), "eof")
    got = reap(ring, 3)
    assert got["full"].result == DATA[:300]
    assert got["full"].result is got["full"].result  # built once, handed over as is
    assert got["short"].result == DATA[-7:] and got["short"].res == 7
    assert got["eof"].result == b"" and got["eof"].res == 0
    assert full.done and short.done and eof.done


def test_read_zero_bytes(ring, fd):
    op = ring.submit_read(fd, 0, 0, "z")
    one(ring, op)
    assert op.result == b""


def test_read_and_write_at_current_position(ring, fd):
    os.lseek(fd, 100, os.SEEK_SET)
    op = ring.submit_read(fd, 10, -1, "r1")
    one(ring, op)
    assert op.result == DATA[100:110]
    assert os.lseek(fd, 0, os.SEEK_CUR) == 110  # the position advanced
    op = ring.submit_write(fd, b"XYZ", user_data="w")  # offset defaults to -1
    one(ring, op)
    assert op.result == 3
    assert os.pread(fd, 3, 110) == b"XYZ"


def test_write_at_offset(ring, fd):
    op = ring.submit_write(fd, memoryview(b"hello"), 4, "w")
    assert op.kind == ringio.COMPLETION_KIND_WRITE
    one(ring, op)
    assert (op.res, op.result) == (5, 5)
    assert os.pread(fd, 9, 0) == DATA[:4] + b"hello"


def test_readv_and_writev(ring, fd):
    op = ring.submit_writev(fd, [b"ab", bytearray(b"cde"), memoryview(b"f")], 1000, "wv")
    assert op.kind == ringio.COMPLETION_KIND_WRITEV
    one(ring, op)
    assert op.result == 6
    bufs = [bytearray(2), bytearray(4)]
    op = ring.submit_readv(fd, bufs, 1000, "rv")
    assert op.kind == ringio.COMPLETION_KIND_READV
    one(ring, op)
    assert op.result == 6
    assert bytes(bufs[0] + bufs[1]) == b"abcdef"


@pytest.mark.parametrize("datasync", [False, True])
def test_fsync(ring, fd, datasync):
    op = ring.submit_fsync(fd, datasync, "s")
    assert op.kind == ringio.COMPLETION_KIND_FSYNC
    one(ring, op)
    assert (op.res, op.result) == (0, None)


def test_fsync_bad_fd_is_ebadf(ring):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    op = ring.submit_fsync(r, user_data="s")
    one(ring, op)
    assert op.res == -errno.EBADF


def test_fallocate_extends(ring, fd):
    op = ring.submit_fallocate(fd, 0, 0, 1 << 20, "fa")
    assert op.kind == ringio.COMPLETION_KIND_FALLOCATE
    one(ring, op)
    assert op.res == 0
    assert os.fstat(fd).st_size == 1 << 20


def test_statx_path_and_fd(ring, path, fd):
    by_path = ring.submit_statx(path, user_data="p")
    by_fd = ring.submit_statx(fd, user_data="fd")
    got = reap(ring, 2)
    assert got["p"] is by_path and got["fd"] is by_fd
    st = os.stat(path)
    for c in got.values():
        assert c.kind == ringio.COMPLETION_KIND_STATX
        r = c.result
        assert isinstance(r, ringio.StatxResult)
        assert (r.st_size, r.st_ino, r.st_mode, r.st_nlink) == (
            st.st_size, st.st_ino, st.st_mode, st.st_nlink)
        assert r.st_dev == st.st_dev and r.st_mtime_ns == st.st_mtime_ns
        assert tuple(r)[:7] == tuple(st)[:7]
        assert r.stx_mask & ringio.STATX_BASIC_STATS == ringio.STATX_BASIC_STATS


def test_statx_missing_and_nofollow(ring, tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    miss = ring.submit_statx(tmp_path / "link", user_data="follow")
    lnk = ring.submit_statx(tmp_path / "link", flags=ringio.AT_SYMLINK_NOFOLLOW, user_data="no")
    got = reap(ring, 2)
    assert got["follow"].res == -errno.ENOENT and got["follow"].result is None
    assert stat.S_ISLNK(got["no"].result.st_mode)
    assert miss.done and lnk.done


def test_close(ring, path):
    fd = os.open(path, os.O_RDONLY)
    op = ring.submit_close(fd, "c")
    one(ring, op)
    assert (op.res, op.result) == (0, None)
    with pytest.raises(OSError):
        os.fstat(fd)


def test_mkdirat_renameat_unlinkat(ring, tmp_path):
    op = ring.submit_mkdirat(tmp_path / "d", 0o755, user_data="mk")
    assert op.kind == ringio.COMPLETION_KIND_MKDIRAT
    one(ring, op)
    assert op.res == 0 and (tmp_path / "d").is_dir()
    again = ring.submit_mkdirat(tmp_path / "d", user_data="again")
    one(ring, again)
    assert again.res == -errno.EEXIST

    (tmp_path / "f").write_bytes(b"x")
    op = ring.submit_renameat(tmp_path / "f", tmp_path / "d" / "g", user_data="mv")
    assert op.kind == ringio.COMPLETION_KIND_RENAMEAT
    one(ring, op)
    assert op.res == 0 and (tmp_path / "d" / "g").read_bytes() == b"x"

    (tmp_path / "h").write_bytes(b"y")
    op = ring.submit_renameat(tmp_path / "h", tmp_path / "d" / "g",
                              flags=ringio.RENAME_NOREPLACE, user_data="noreplace")
    one(ring, op)
    assert op.res == -errno.EEXIST

    op = ring.submit_unlinkat(tmp_path / "d", user_data="notdir")
    one(ring, op)
    assert op.res == -errno.EISDIR
    dfd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        op = ring.submit_unlinkat("g", dfd, user_data="rm")
        one(ring, op)
    finally:
        os.close(dfd)
    assert op.res == 0
    op = ring.submit_unlinkat(tmp_path / "d", flags=ringio.AT_REMOVEDIR, user_data="rmdir")
    assert op.kind == ringio.COMPLETION_KIND_UNLINKAT
    one(ring, op)
    assert op.res == 0 and not (tmp_path / "d").exists()


def test_bad_arguments(ring, fd, path):
    with pytest.raises(TypeError):
        ring.submit_read(fd, b"read-only bytes")
    with pytest.raises(ValueError):
        ring.submit_read(fd, 10, -2)
    with pytest.raises(ValueError):
        ring.submit_read(fd, -1)
    with pytest.raises(TypeError):
        ring.submit_write(fd, "str is not bytes")
    with pytest.raises(ValueError):
        ring.submit_openat("a\0b", os.O_RDONLY)
    with pytest.raises(TypeError):
        ring.submit_openat(3.5, os.O_RDONLY)
    with pytest.raises(ValueError):
        ring.submit_openat(path, os.O_RDONLY | os.O_CLOEXEC, file_index=0)
    with pytest.raises(ValueError):
        ring.submit_read(fd, bytearray(10), 0, buffer_index=0)  # nothing registered
    with pytest.raises(ValueError):
        ring.submit_fallocate(fd, 0, 0, 0)
    assert ring.stats()["inflight"] == 0


def test_buffer_held_until_completion(ring):
    r, w = os.pipe()
    try:
        buf = bytearray(8)
        op = ring.submit_read(r, buf, -1, "pipe")
        with pytest.raises(BufferError):
            buf.extend(b"x")  # exported while the kernel may write it
        os.write(w, b"abc")
        one(ring, op)
        assert op.result == 3 and buf[:3] == b"abc"
        buf.extend(b"x")  # released after the final completion
    finally:
        os.close(r)
        os.close(w)


def test_repr_names_the_kind(ring, fd):
    op = ring.submit_read(fd, 1, 0, "r")
    one(ring, op)
    assert "read" in repr(op)
