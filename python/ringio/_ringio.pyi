"""Type stubs for the ringio._ringio C extension."""

import os
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol, TypeAlias

from typing_extensions import Buffer, Self

from .sim import FaultProfile, SimControl

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_FD: TypeAlias = int | _HasFileno
# (host, port) / (host, port, flowinfo, scope_id) with numeric hosts, or an
# AF_UNIX path (a leading NUL makes it an abstract name).
_Address: TypeAlias = tuple[str, int] | tuple[str, int, int] | tuple[str, int, int, int] | str | bytes
_AncData: TypeAlias = Iterable[tuple[int, int, Buffer]]
_Path: TypeAlias = str | bytes | Any  # str, bytes or os.PathLike

__liburing_version__: str

class SubmissionQueueFull(RuntimeError): ...
class RingClosed(RuntimeError): ...
class BackendFallbackWarning(RuntimeWarning): ...

class Completion:
    def __init__(
        self,
        user_data: Any = None,
        res: int = 0,
        result: Any = None,
        flags: int = 0,
        sequence: int = 0,
        *,
        kind: int = 0,
        more: bool = False,
    ) -> None: ...
    @property
    def user_data(self) -> Any: ...
    @property
    def kind(self) -> int: ...
    @property
    def res(self) -> int: ...
    @property
    def result(self) -> Any: ...
    @property
    def flags(self) -> int: ...
    @property
    def sequence(self) -> int: ...
    @property
    def more(self) -> bool: ...
    @property
    def done(self) -> bool: ...
    @property
    def zc_copied(self) -> bool | None: ...
    @property
    def ancdata(self) -> list[tuple[int, int, bytes]] | None: ...
    @property
    def msg_flags(self) -> int | None: ...

class Batch:
    def __enter__(self) -> Ring: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Link:
    def __enter__(self) -> Ring: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class StatxResult(tuple[int, ...]):
    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime: float
    st_mtime: float
    st_ctime: float
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_birthtime: float
    st_birthtime_ns: int
    st_blksize: int
    st_blocks: int
    st_rdev: int
    stx_attributes: int
    stx_mask: int

class Ring:
    def __init__(
        self,
        entries: int = 8,
        flags: int = 0,
        *,
        cq_entries: int | None = None,
        backend: str = "auto",
        seed: int | None = None,
        faults: FaultProfile | str | None = None,
        replay: str | os.PathLike[str] | bytes | None = None,
        record: bool = False,
    ) -> None: ...
    @property
    def fd(self) -> int: ...
    @property
    def sim(self) -> SimControl | None: ...
    @property
    def features(self) -> int: ...
    @property
    def sq_entries(self) -> int: ...
    @property
    def cq_entries(self) -> int: ...
    @property
    def setup_flags(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def backend(self) -> str: ...
    @property
    def running(self) -> bool: ...
    @property
    def inflight(self) -> int: ...
    @property
    def staged(self) -> int: ...
    callback: Callable[[Completion], Any] | None
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    def submit_nop(self, user_data: Any = None) -> Completion: ...
    def submit_timeout(self, seconds: float, user_data: Any = None) -> Completion: ...
    def submit_cancel(
        self, target: Completion, user_data: Any = None, *, flags: int = 0
    ) -> Completion: ...
    def submit_poll(
        self, fd: _FD, mask: int, user_data: Any = None, multishot: bool = False
    ) -> Completion: ...
    def submit_recv(
        self, fd: _FD, buf: Buffer, user_data: Any = None, flags: int = 0
    ) -> Completion: ...
    def submit_recv_multishot(
        self,
        fd: _FD,
        buffer_size: int,
        buffer_count: int,
        user_data: Any = None,
        flags: int = 0,
        *,
        sequence: int = 0,
    ) -> Completion: ...
    def submit_send(
        self, fd: _FD, data: Buffer, user_data: Any = None, flags: int = 0
    ) -> Completion: ...
    def submit_send_zc(
        self, fd: _FD, data: Buffer, user_data: Any = None, flags: int = 0, zc_flags: int = 0
    ) -> Completion: ...
    def submit_recvmsg(
        self,
        fd: _FD,
        buf: Buffer | Iterable[Buffer],
        user_data: Any = None,
        flags: int = 0,
        *,
        ancbufsize: int = 0,
    ) -> Completion: ...
    def submit_sendto(
        self, fd: _FD, data: Buffer, address: _Address, user_data: Any = None, flags: int = 0
    ) -> Completion: ...
    def submit_sendmsg(
        self,
        fd: _FD,
        data: Buffer | Iterable[Buffer],
        address: _Address | None = None,
        user_data: Any = None,
        flags: int = 0,
        *,
        ancdata: _AncData | None = None,
    ) -> Completion: ...
    def submit_sendmsg_zc(
        self,
        fd: _FD,
        data: Buffer | Iterable[Buffer],
        address: _Address | None = None,
        user_data: Any = None,
        flags: int = 0,
        *,
        zc_flags: int = 0,
        ancdata: _AncData | None = None,
    ) -> Completion: ...
    def submit_accept(self, fd: _FD, user_data: Any = None, flags: int = 0) -> Completion: ...
    def submit_accept_multishot(
        self, fd: _FD, user_data: Any = None, flags: int = 0, *, sequence: int = 0
    ) -> Completion: ...
    def submit_connect(self, fd: _FD, address: _Address, user_data: Any = None) -> Completion: ...
    def submit_shutdown(self, fd: _FD, how: int, user_data: Any = None) -> Completion: ...
    def submit_close(self, fd: _FD, user_data: Any = None, *, fixed: bool = False) -> Completion: ...
    # files
    def submit_openat(
        self,
        path: _Path,
        flags: int = 0,
        mode: int = 0o666,
        dir_fd: _FD | None = None,
        user_data: Any = None,
        *,
        file_index: int | None = None,
    ) -> Completion: ...
    def submit_read(
        self,
        fd: _FD,
        buf: Buffer | int,
        offset: int = -1,
        user_data: Any = None,
        *,
        fixed: bool = False,
        buffer_index: int | None = None,
    ) -> Completion: ...
    def submit_write(
        self,
        fd: _FD,
        data: Buffer,
        offset: int = -1,
        user_data: Any = None,
        *,
        fixed: bool = False,
        buffer_index: int | None = None,
    ) -> Completion: ...
    def submit_readv(
        self, fd: _FD, buffers: Iterable[Buffer], offset: int = -1, user_data: Any = None,
        *, fixed: bool = False
    ) -> Completion: ...
    def submit_writev(
        self, fd: _FD, buffers: Iterable[Buffer], offset: int = -1, user_data: Any = None,
        *, fixed: bool = False
    ) -> Completion: ...
    def submit_fsync(
        self, fd: _FD, datasync: bool = False, user_data: Any = None, *, fixed: bool = False
    ) -> Completion: ...
    def submit_fallocate(
        self, fd: _FD, mode: int, offset: int, length: int, user_data: Any = None,
        *, fixed: bool = False
    ) -> Completion: ...
    def submit_statx(
        self,
        path: _Path | _FD,
        dir_fd: _FD | None = None,
        flags: int = 0,
        mask: int = ...,
        user_data: Any = None,
    ) -> Completion: ...
    def submit_unlinkat(
        self, path: _Path, dir_fd: _FD | None = None, flags: int = 0, user_data: Any = None
    ) -> Completion: ...
    def submit_renameat(
        self,
        old: _Path,
        new: _Path,
        old_dir_fd: _FD | None = None,
        new_dir_fd: _FD | None = None,
        flags: int = 0,
        user_data: Any = None,
    ) -> Completion: ...
    def submit_mkdirat(
        self, path: _Path, mode: int = 0o777, dir_fd: _FD | None = None, user_data: Any = None
    ) -> Completion: ...
    def register_files(self, fds: Iterable[_FD | None]) -> None: ...
    def unregister_files(self) -> None: ...
    def register_buffers(self, buffers: Iterable[Buffer]) -> None: ...
    def unregister_buffers(self) -> None: ...
    def link(self, hard: bool = False) -> Link: ...
    def submit_socket(
        self, domain: int, type: int, protocol: int = 0, flags: int = 0, user_data: Any = None
    ) -> Completion: ...
    def wait(self, timeout: float | None = None) -> Completion | None: ...
    def wait_many(self, max: int = 64, timeout: float | None = None) -> list[Completion]: ...
    def break_wait(self) -> None: ...
    def submit(self) -> int: ...
    def batch(self, strict: bool = False) -> Batch: ...
    def serve_completions(self) -> None: ...
    def stop_serving(self) -> None: ...
    def reset_serving(self) -> None: ...
    def stats(self) -> dict[str, int]: ...

def probe(entries: int = 2, flags: int = 0) -> dict[str, bool]: ...
def is_available() -> bool: ...
def unavailable_reason(entries: int = 2, flags: int = 0) -> str | None: ...

def __getattr__(name: str) -> int: ...  # IORING_* / COMPLETION_KIND_* / AT_* / STATX_* constants
