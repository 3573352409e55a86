"""Registered buffers (READ_FIXED / WRITE_FIXED), aligned buffers and O_DIRECT,
RLIMIT_MEMLOCK and error explanations."""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import textwrap

import pytest
import ringio
from files_support import reap

pytestmark = pytest.mark.usefixtures("fd_leak_check")  # conftest.py: no descriptor leaks

DATA = os.urandom(3 * 4096)


@pytest.fixture
def fd(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(DATA)
    fd = os.open(p, os.O_RDWR)
    yield fd
    os.close(fd)


def test_read_fixed_and_write_fixed(ring, fd):
    a = bytearray(8192)
    b = ringio.aligned_buffer(4096)
    ring.register_buffers([a, b])
    b[:4] = b"WXYZ"
    r = ring.submit_read(fd, memoryview(a)[100:200], 5, "r", buffer_index=0)
    w = ring.submit_write(fd, memoryview(b)[:4], 8192, "w", buffer_index=1)
    got = reap(ring, 2)
    assert got["r"].result == 100 and a[100:200] == DATA[5:105]
    assert got["w"].result == 4 and os.pread(fd, 4, 8192) == b"WXYZ"
    assert r.kind == ringio.COMPLETION_KIND_READ and w.kind == ringio.COMPLETION_KIND_WRITE
    ring.unregister_buffers()


def test_registered_buffers_stay_exported_until_unregistered(ring):
    a = bytearray(4096)
    ring.register_buffers([a])
    with pytest.raises(BufferError):
        a.extend(b"x")
    ring.unregister_buffers()
    a.extend(b"x")


def test_registered_buffers_released_at_close(uring):
    a = bytearray(4096)
    ring = ringio.Ring()
    ring.register_buffers([a])
    ring.close()
    a.extend(b"x")


def test_fixed_buffer_must_lie_inside_the_registered_one(ring, fd):
    a = bytearray(4096)
    ring.register_buffers([a])
    with pytest.raises(ValueError, match="inside registered buffer 0"):
        ring.submit_read(fd, bytearray(10), 0, buffer_index=0)
    with pytest.raises(ValueError, match="not a registered buffer"):
        ring.submit_read(fd, memoryview(a)[:10], 0, buffer_index=1)
    with pytest.raises(TypeError):
        ring.register_buffers([b"read-only"])
    with pytest.raises(ValueError):
        ring.register_buffers([bytearray()])
    ring.unregister_buffers()


def test_aligned_buffer():
    b = ringio.aligned_buffer(10000)
    assert isinstance(b, mmap.mmap) and len(b) == 10000 and b[:10] == bytes(10)
    big = ringio.aligned_buffer(100, alignment=1 << 16)
    assert len(big) == 100 and not big.readonly
    import ctypes
    probe = ctypes.c_char.from_buffer(big)
    assert ctypes.addressof(probe) % (1 << 16) == 0
    del probe
    with pytest.raises(ValueError):
        ringio.aligned_buffer(0)
    with pytest.raises(ValueError):
        ringio.aligned_buffer(10, alignment=3000)


def test_explain_error():
    c = ringio.Completion(res=-errno.ENOENT)
    assert "No such file" in ringio.explain_error(c)
    r, w = os.pipe()
    try:
        assert "aligned" not in ringio.explain_error(-errno.EINVAL, fd=r)  # not O_DIRECT
    finally:
        os.close(r)
        os.close(w)
    assert "logical block size" in ringio.explain_error(-errno.EINVAL)
    assert "link() chain" in ringio.explain_error(errno.ECANCELED)


def _direct_fd(tmp_path):
    p = tmp_path / "direct"
    p.write_bytes(DATA)
    try:
        return os.open(p, os.O_RDWR | os.O_DIRECT)
    except OSError as e:
        pytest.skip(f"O_DIRECT unsupported here: {e}")


@pytest.mark.kernel
def test_o_direct_aligned_works_misaligned_is_einval(ring, tmp_path):
    fd = _direct_fd(tmp_path)
    try:
        good = ringio.aligned_buffer(4096)
        ok = ring.submit_read(fd, good, 4096, "aligned")
        bad = ring.submit_read(fd, ringio.aligned_buffer(4096), 1, "misaligned")  # offset 1
        got = reap(ring, 2)
        assert got["aligned"].res == 4096 and bytes(good) == DATA[4096:8192]
        assert got["misaligned"].res == -errno.EINVAL
        msg = ringio.explain_error(got["misaligned"], fd)
        assert "O_DIRECT" in msg and "logical block size" in msg
        assert ok.done and bad.done
    finally:
        os.close(fd)


@pytest.mark.kernel
def test_register_buffers_over_memlock_explains_rlimit(uring, subprocess_env):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user without CAP_IPC_LOCK")
    code = textwrap.dedent("""
        import errno, os, resource, ringio
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
        os.setgid(65534); os.setuid(65534)   # no CAP_IPC_LOCK: pinned pages are charged
        ring = ringio.Ring()  # the ring's user (who is charged) is fixed at creation
        try:
            ring.register_buffers([bytearray(8 << 20)])
        except OSError as e:
            print(e.errno == errno.ENOMEM, "RLIMIT_MEMLOCK" in str(e), str(e))
        else:
            print("registered")
        ring.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("registered"):
        pytest.skip("this kernel does not charge registered buffers to RLIMIT_MEMLOCK")
    assert out.stdout.startswith("True True"), out.stdout
