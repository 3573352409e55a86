"""Run a command with io_uring blocked, as a container's default seccomp profile does.

    python ci/no_io_uring.py [--errno EPERM|ENOSYS] COMMAND [ARGS...]

Installs a seccomp filter that makes io_uring_setup(2) fail with the given errno (default EPERM)
and execs COMMAND: the filter is inherited by everything it starts.  CI runs the pytest suite on
the simulated backend this way, so "io_uring is blocked here" is a tested configuration, not an
assumption.  Linux, x86_64 or aarch64 (io_uring_setup is syscall 425 on both).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

NR_IO_URING_SETUP = 425
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def block_io_uring(err: int) -> None:
    insns = [
        (0x20, 0, 0, 0),  # ld [0]: the syscall number
        (0x15, 0, 1, NR_IO_URING_SETUP),  # jeq io_uring_setup
        (0x06, 0, 0, SECCOMP_RET_ERRNO | err),
        (0x06, 0, 0, SECCOMP_RET_ALLOW),
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
    prog = _Prog(len(insns), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> int:
    err = errno.EPERM
    if argv[:1] == ["--errno"]:
        err = getattr(errno, argv[1])
        argv = argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    block_io_uring(err)
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
