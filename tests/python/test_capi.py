"""The ringio._ringio._C_API capsule and its installed header.

The table is driven through ctypes (PYFUNCTYPE keeps the GIL and turns a
set exception into a Python exception), with a mirror of the struct that is
checked field by field against ringio_capi.h.  A C compiler, when present,
also compiles the header.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sysconfig

import pytest
import ringio
from ringio import _ringio

F = ctypes.PYFUNCTYPE
O = ctypes.py_object


class CAPI(ctypes.Structure):
    _fields_ = [
        ("abi_version", ctypes.c_uint32),
        ("struct_size", ctypes.c_uint32),
        ("feature_flags", ctypes.c_uint64),
        ("ring_new", F(O, ctypes.c_uint, ctypes.c_uint)),
        ("ring_check", F(ctypes.c_int, O)),
        ("ring_close", F(ctypes.c_int, O)),
        ("ring_fd", F(ctypes.c_int, O)),
        ("ring_submit_nop", F(O, O, O)),
        ("ring_wait", F(O, O, ctypes.c_double)),
        ("ring_break_wait", F(ctypes.c_int, O)),
        ("completion_check", F(ctypes.c_int, O)),
        ("completion_user_data", F(O, O)),
        ("completion_result", F(O, O)),
        ("completion_res", F(ctypes.c_int, O, ctypes.POINTER(ctypes.c_int32))),
        ("completion_flags", F(ctypes.c_int, O, ctypes.POINTER(ctypes.c_uint32))),
        ("completion_sequence", F(ctypes.c_int, O, ctypes.POINTER(ctypes.c_uint32))),
        ("completion_kind", F(ctypes.c_int, O)),
        ("completion_more", F(ctypes.c_int, O)),
        ("completion_done", F(ctypes.c_int, O)),
    ]


HEADER = os.path.join(ringio.get_include(), "ringio_capi.h")


def _api() -> CAPI:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = get(_ringio._C_API, b"ringio._ringio._C_API")
    return CAPI.from_address(ptr)


def test_header_is_installed():
    assert os.path.isfile(HEADER)


def test_mirror_matches_header():
    with open(HEADER) as f:
        text = f.read()
    body = re.search(r"typedef struct RingioCAPI \{(.*?)\} RingioCAPI;", text, re.DOTALL).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.DOTALL)
    names = re.findall(r"\(\*(\w+)\)|\b(\w+);", body)
    fields = [a or b for a, b in names]
    assert fields == [name for name, _ in CAPI._fields_]
    abi = int(re.search(r"#define RINGIO_CAPI_ABI_VERSION (\d+)u", text).group(1))
    assert _api().abi_version == abi


def test_capsule_header_fields():
    api = _api()
    assert api.abi_version == 1
    assert api.struct_size == ctypes.sizeof(CAPI)
    assert api.feature_flags & 1  # RINGIO_CAPI_FEATURE_CORE


def test_capsule_ring_round_trip(uring):
    api = _api()
    ring = api.ring_new(8, 0)
    assert isinstance(ring, ringio.Ring)
    assert api.ring_check(ring) == 1
    assert api.ring_check(42) == 0
    assert api.ring_fd(ring) == ring.fd
    token = object()
    op = api.ring_submit_nop(ring, token)
    assert api.completion_check(op) == 1
    assert api.completion_check(ring) == 0
    assert api.completion_done(op) == 0
    got = api.ring_wait(ring, 5.0)
    assert got is op
    assert api.completion_user_data(op) is token
    assert api.completion_result(op) == 0
    res, flags, seq = ctypes.c_int32(-1), ctypes.c_uint32(7), ctypes.c_uint32(7)
    assert api.completion_res(op, ctypes.byref(res)) == 0 and res.value == 0
    assert api.completion_flags(op, ctypes.byref(flags)) == 0 and flags.value == 0
    assert api.completion_sequence(op, ctypes.byref(seq)) == 0 and seq.value == 0
    assert api.completion_kind(op) == ringio.COMPLETION_KIND_NOP
    assert api.completion_more(op) == 0
    assert api.completion_done(op) == 1
    assert api.ring_wait(ring, 0.05) is None
    assert api.ring_break_wait(ring) == 0
    assert api.ring_wait(ring, -1.0) is None  # no limit, woken by the break
    assert api.ring_close(ring) == 0
    assert ring.closed
    with pytest.raises(ringio.RingClosed):
        api.ring_fd(ring)
    with pytest.raises(TypeError):
        api.ring_close("not a ring")
    with pytest.raises(TypeError):
        api.completion_user_data(ring)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_header_compiles(tmp_path):
    src = tmp_path / "use_capi.c"
    src.write_text(
        '#include "ringio_capi.h"\n'
        "int check(void) {\n"
        "    const RingioCAPI *api = RingioCAPI_Import();\n"
        "    return api != NULL && (api->feature_flags & RINGIO_CAPI_FEATURE_CORE) != 0;\n"
        "}\n"
    )
    cmd = ["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
           "-I", ringio.get_include(), "-I", sysconfig.get_paths()["include"], str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
