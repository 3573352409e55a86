"""The simulated kernel: fault profiles, scripting, traces.

``Ring(backend="sim", seed=..., faults=..., replay=..., record=...)`` runs on
an in-process simulation of io_uring (``backends/sim/``): it reads the same
SQEs the kernel would, performs the I/O with ordinary non-blocking syscalls,
and posts kernel-shaped CQEs.  Every choice it makes comes from one decision
source, so the same seed, profile and calls give the same completions.

``ring.sim`` (a :class:`SimControl`) scripts one exact ordering::

    ring.sim.hold(7, notif_only=True)   # the F_NOTIF of send 7 waits...
    ...                                 # ...until recv 8 has completed
    ring.sim.release(7)

A fault profile switches fault sites on; each site is enabled for a whole run
with probability ``enable`` and then fires with probability ``fire``::

    FaultProfile(short_read=(1.0, 0.3), errors={"recv": ["ECONNRESET"]})
    FaultProfile.parse("short_read=1:0.3,errors.recv=ECONNRESET")
"""

from __future__ import annotations

import errno as _errno
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from . import _ringio

__all__ = ["SITES", "FaultProfile", "SimControl", "opcode_of"]

#: Fault sites, in the order of ``enum ringio_sim_fault`` (backends/sim/include/ringio/sim.h).
SITES = (
    "short_read",
    "short_write",
    "inject_error",
    "notif_delay",
    "notif_reorder",
    "notif_after_error",
    "multishot_end",
    "enter_busy",
)

_OPCODES = {
    name[len("IORING_OP_") :].lower(): getattr(_ringio, name) for name in dir(_ringio) if name.startswith("IORING_OP_")
}
_OPNAMES = {v: k for k, v in _OPCODES.items()}
_TRACE_MAGIC = b"RINGIOTRACE1\n"
_RAW_MAGIC = b"RSIM\x01"


def opcode_of(op: str | int) -> int:
    """IORING_OP_* number of an opcode name ("recv", "send_zc", ...) or number."""
    if isinstance(op, int):
        if not 0 <= op < 64:
            raise ValueError(f"opcode {op} out of range")
        return op
    try:
        return _OPCODES[op.lower().removeprefix("ioring_op_")]
    except KeyError:
        raise ValueError(f"unknown opcode {op!r}; known: {', '.join(sorted(_OPCODES))}") from None


def _errno_of(e: str | int) -> int:
    if isinstance(e, int):
        if e <= 0:
            raise ValueError(f"injected errnos are positive, not {e}")
        return e
    v = getattr(_errno, e.upper(), None)
    if not isinstance(v, int):
        raise ValueError(f"unknown errno name {e!r}")
    return v


def _site(v: Any, name: str) -> tuple[float, float] | None:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        v = (1.0, float(v))
    enable, fire = (float(x) for x in v)
    if not (0.0 <= enable <= 1.0 and 0.0 <= fire <= 1.0):
        raise ValueError(f"{name}: probabilities must be in [0, 1], got {v!r}")
    return (enable, fire)


@dataclass(frozen=True)
class FaultProfile:
    """Which faults the simulated kernel may inject, and how often.

    Each site is ``None`` (off), a fire probability (enabled for every run), or
    ``(enable, fire)``: enabled for a run with probability ``enable``, then fires
    with probability ``fire`` each time the simulation passes it.  ``errors``
    maps opcodes (names or numbers) to the errnos ``inject_error`` picks from
    (names or numbers); giving errors without ``inject_error`` means
    ``inject_error=(1.0, 0.1)``.
    """

    short_read: tuple[float, float] | float | None = None
    short_write: tuple[float, float] | float | None = None
    inject_error: tuple[float, float] | float | None = None
    notif_delay: tuple[float, float] | float | None = None
    notif_reorder: tuple[float, float] | float | None = None
    notif_after_error: tuple[float, float] | float | None = None
    multishot_end: tuple[float, float] | float | None = None
    enter_busy: tuple[float, float] | float | None = None
    errors: Mapping[str | int, Sequence[str | int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SITES:
            object.__setattr__(self, name, _site(getattr(self, name), name))
        errs = {opcode_of(k): tuple(_errno_of(e) for e in v) for k, v in dict(self.errors).items()}
        for op, lst in errs.items():
            if not 1 <= len(lst) <= 4:
                raise ValueError(f"errors for {_OPNAMES.get(op, op)}: give 1 to 4 errnos")
        object.__setattr__(self, "errors", errs)
        if errs and self.inject_error is None:
            object.__setattr__(self, "inject_error", (1.0, 0.1))

    @classmethod
    def chaos(cls, fire: float = 0.2) -> FaultProfile:
        """Every site may be on (each with probability 1/2 per run)."""
        site = (0.5, fire)
        return cls(
            **{name: site for name in SITES if name != "enter_busy"},
            enter_busy=site,
            errors={
                "recv": ["ECONNRESET"],
                "send": ["EPIPE", "ECONNRESET"],
                "send_zc": ["ENOBUFS"],
                "read": ["EIO"],
                "write": ["EIO", "ENOSPC"],
            },
        )

    @classmethod
    def parse(cls, spec: str) -> FaultProfile:
        """The inverse of ``str(profile)``: ``"short_read=1:0.3,errors.recv=ECONNRESET|EPIPE"``;
        ``"chaos"`` is :meth:`chaos`."""
        spec = spec.strip()
        if spec in ("", "none", "faithful"):
            return cls()
        if spec == "chaos":
            return cls.chaos()
        kw: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for item in spec.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise ValueError(f"fault profile item {item!r} is not key=value")
            if key.startswith("errors."):
                errors[key[len("errors.") :]] = value.split("|")
            elif key in SITES:
                parts = value.split(":")
                kw[key] = (float(parts[0]), float(parts[1])) if len(parts) == 2 else float(parts[0])
            else:
                raise ValueError(f"unknown fault site {key!r}; sites: {', '.join(SITES)}")
        return cls(**kw, errors=errors)

    def __str__(self) -> str:
        out = []
        for name in SITES:
            v = getattr(self, name)
            if v is not None:
                out.append(f"{name}={v[0]:g}:{v[1]:g}")
        for op, errs in sorted(self.errors.items()):
            names = "|".join(_errno.errorcode.get(e, str(e)) for e in errs)
            out.append(f"errors.{_OPNAMES.get(op, op)}={names}")
        return ",".join(out) or "faithful"

    def _c_spec(self) -> tuple[tuple[tuple[int, int], ...], dict[int, tuple[int, ...]]]:
        sites = []
        for name in SITES:
            v = getattr(self, name)
            sites.append((0, 0) if v is None else (round(v[0] * 1000), round(v[1] * 1000)))
        return tuple(sites), dict(self.errors)


def _profile(obj: Any) -> FaultProfile:
    if isinstance(obj, FaultProfile):
        return obj
    if isinstance(obj, str):
        return FaultProfile.parse(obj)
    raise TypeError(f"faults must be a ringio.sim.FaultProfile or its string form, not {type(obj).__name__}")


def _load_replay(obj: Any) -> tuple[bytes, FaultProfile | None, int]:
    """(raw trace, profile, seed) from a trace file's path or its bytes."""
    if isinstance(obj, (str, os.PathLike)):
        with open(obj, "rb") as f:
            data = f.read()
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    else:
        raise TypeError(f"replay must be a path or bytes, not {type(obj).__name__}")
    if data.startswith(_TRACE_MAGIC):
        header, sep, raw = data[len(_TRACE_MAGIC) :].partition(b"\n")
        if not sep:
            raise ValueError("replay: truncated ringio trace file")
        meta = json.loads(header)
        faults = meta.get("faults")
        return raw, (FaultProfile.parse(faults) if faults else None), int(meta["seed"])
    if data.startswith(_RAW_MAGIC) and len(data) >= 13:
        return data, None, int.from_bytes(data[5:13], "little")
    raise ValueError("replay: not a ringio simulation trace")


class SimControl:
    """Scripting and introspection of a simulated ring: ``ring.sim``.

    Rules are keyed on user_data (an int itself, anything else by its hash) and
    apply to operations submitted before or after the rule.
    """

    def __init__(self, ring: Any, seed: int, faults: FaultProfile | None) -> None:
        self._ring = ring
        self.seed = seed
        self.faults = faults

    def hold(self, user_data: Any, *, notif_only: bool = False) -> None:
        """Hold back the completions of operations with this user_data (only their
        zero-copy notifications with ``notif_only``) until :meth:`release`."""
        self._ring._sim_hold(user_data, notif_only)

    def release(self, user_data: Any) -> int:
        """Post what is held for user_data, in order, and drop the hold; returns how many."""
        return self._ring._sim_release(user_data)

    def force(self, user_data: Any, res: int) -> None:
        """The next operation with this user_data completes with ``res`` (a byte count
        or ``-errno``) without doing its I/O."""
        self._ring._sim_force(user_data, int(res))

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward; due timeouts complete at the next wait."""
        if seconds < 0:
            raise ValueError("cannot move the virtual clock backwards")
        self._ring._sim_advance(int(seconds * 1e9))

    def info(self) -> dict:
        """seed, now_ns, decisions, decision_hash, cqe_hash, cqes_posted, pending, held,
        overflowed, faults_enabled, replay_diverged."""
        return self._ring._sim_info()

    @property
    def now(self) -> float:
        """The virtual clock, in seconds (CLOCK_MONOTONIC when the ring was made, then
        moved by waits and advance())."""
        return self.info()["now_ns"] / 1e9

    @property
    def decision_hash(self) -> int:
        return self.info()["decision_hash"]

    @property
    def cqe_hash(self) -> int:
        return self.info()["cqe_hash"]

    def trace(self) -> bytes:
        """This run's trace file contents (the ring must be made with record=True)."""
        meta = {"seed": self.seed, "faults": str(self.faults) if self.faults else None}
        return _TRACE_MAGIC + json.dumps(meta).encode() + b"\n" + self._ring._sim_trace()

    def save_trace(self, path: str | os.PathLike) -> None:
        """Write :meth:`trace` to path; ``Ring(backend="sim", replay=path)`` repeats the run."""
        data = self.trace()
        with open(path, "wb") as f:
            f.write(data)

    @property
    def reproduction(self) -> str:
        """One line of environment that repeats this ring's decisions."""
        line = f"RINGIO_BACKEND=sim RINGIO_SIM_SEED={self.seed:#x}"
        if self.faults is not None:
            line += f" RINGIO_SIM_FAULTS='{self.faults}'"
        return line

    def __repr__(self) -> str:
        return f"<ringio.sim.SimControl seed={self.seed:#x} faults={self.faults or 'faithful'}>"


def _field_names() -> list[str]:  # for docs and tests: the profile's keyword names
    return [f.name for f in fields(FaultProfile)]
