"""File I/O helpers: buffers for O_DIRECT and explanations of file errors.

``ringio.aligned_buffer`` and ``ringio.explain_error`` are re-exported by the
package.  The submit_* file operations themselves are methods of ``Ring``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os

__all__ = ["aligned_buffer", "explain_error", "is_direct", "O_DIRECT_HINT"]

#: What a misaligned O_DIRECT transfer violates (Linux answers EINVAL).
O_DIRECT_HINT = (
    "O_DIRECT I/O needs the buffer address, the file offset and the length to be "
    "multiples of the device's logical block size (usually 512 or 4096 bytes; "
    "`blockdev --getss`, or statx's STATX_DIOALIGN): use ringio.aligned_buffer(size) "
    "and block-multiple offsets and sizes"
)


def aligned_buffer(size: int, alignment: int = 4096) -> memoryview | mmap.mmap:
    """A zero-filled writable buffer of `size` bytes whose address is a multiple of
    `alignment` (a power of two), for O_DIRECT reads and writes.

    Backed by an anonymous mmap, so it is page aligned; for an alignment above the page
    size the map is over-allocated and an aligned memoryview slice of it is returned
    (the slice keeps the map alive).  Pass it to submit_read/submit_write or
    register_buffers like any writable buffer."""
    if not isinstance(size, int) or not isinstance(alignment, int):
        raise TypeError("size and alignment must be int")
    if size <= 0:
        raise ValueError(f"size must be > 0, not {size}")
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, not {alignment}")
    if alignment <= mmap.PAGESIZE:
        return mmap.mmap(-1, size)
    m = mmap.mmap(-1, size + alignment)
    probe = ctypes.c_char.from_buffer(m)  # an export: released by del below
    address = ctypes.addressof(probe)
    del probe
    start = -address % alignment
    return memoryview(m)[start:start + size]


def is_direct(fd: int) -> bool:
    """True when fd was opened with O_DIRECT (False if fd is not an open descriptor)."""
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))
    except OSError:
        return False


def explain_error(res, fd: int | None = None) -> str:
    """A human-readable explanation of a failed file operation.

    `res` is a Completion (its ``res``), a negative res or a positive errno.  When the
    error is EINVAL and `fd` (or nothing is known) may be an O_DIRECT descriptor, the
    message explains the alignment rule, the usual cause of EINVAL for O_DIRECT."""
    code = getattr(res, "res", res)
    if not isinstance(code, int):
        raise TypeError("res must be a Completion or an int")
    code = -code if code < 0 else code
    if code == 0:
        return "no error"
    text = f"[Errno {code}] {os.strerror(code)}"
    if code == errno.EINVAL and (fd is None or is_direct(fd)):
        text += ": " + O_DIRECT_HINT
    elif code == errno.ECANCELED:
        text += ": cancelled, or an earlier operation of its link() chain failed"
    elif code == errno.EBADF and fd is not None:
        text += ": not an open descriptor (or, with fixed=True, an empty registered slot)"
    return text


def error_from_res(res: int, fd: int | None = None) -> OSError:
    """OSError (the errno's own subclass: FileNotFoundError, IsADirectoryError, ...) for
    a negative res; EINVAL on an O_DIRECT fd carries the alignment explanation."""
    code = -res
    if code == errno.EINVAL and fd is not None and is_direct(fd):
        return OSError(code, f"{os.strerror(code)}: {O_DIRECT_HINT}")
    return OSError(code, os.strerror(code))
