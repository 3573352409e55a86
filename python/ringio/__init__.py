"""ringio: completion-based I/O for Python on Linux io_uring.

The objects live in the C extension ``ringio._ringio`` and are re-exported
here unchanged (``ringio.Ring`` *is* the C type: no Python wrapper on the hot
path).

Quick check::

    import ringio

    print(ringio.probe())            # {} when io_uring is unavailable here
    with ringio.Ring() as ring:
        op = ring.submit_nop("hello")
        assert ring.wait(1.0) is op  # the same Completion object
        print(op.user_data, op.res, op.result)
"""

from __future__ import annotations

import os as _os

from . import _ringio
from ._ringio import (
    BackendFallbackWarning,
    Completion,
    Ring,
    RingClosed,
    StatxResult,
    SubmissionQueueFull,
    __liburing_version__,
    is_available,
    probe,
    unavailable_reason,
)
from .files import aligned_buffer, explain_error
from .sim import FaultProfile  # noqa: E402  (ringio.sim imports the extension above)

__version__ = "0.1.0"

#: Every IORING_* and COMPLETION_KIND_* constant of the extension.
_CONSTANT_PREFIXES = ("IORING_", "COMPLETION_KIND_", "FILE_INDEX_", "AT_", "STATX_", "RENAME_")
_constants = {
    name: getattr(_ringio, name)
    for name in dir(_ringio)
    if name.startswith(_CONSTANT_PREFIXES)
}
globals().update(_constants)

__all__ = [
    "BackendFallbackWarning",
    "Completion",
    "FaultProfile",
    "Ring",
    "RingClosed",
    "StatxResult",
    "SubmissionQueueFull",
    "__liburing_version__",
    "aligned_buffer",
    "explain_error",
    "get_include",
    "is_available",
    "probe",
    "unavailable_reason",
]
__all__.extend(sorted(_constants))


def get_include() -> str:
    """Directory holding ``ringio_capi.h``, for compiling C extensions against
    the ``ringio._ringio._C_API`` capsule."""
    return _os.path.join(_os.path.dirname(__file__), "include")


del _constants
