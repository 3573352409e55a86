"""The ringio._ringio._C_API capsule and its installed header.

Two clients drive the table:

* a ctypes mirror of the struct (PYFUNCTYPE keeps the GIL and turns a set
  exception into a Python exception), checked field by field against
  ringio_capi.h, calls every member directly: argument conversion, results,
  error paths;
* tests/python/capi_client/ringio_capi_client.c, a real extension module
  compiled here with the system C compiler against ``ringio.get_include()``
  and using nothing but the capsule: the table's layout as the compiler sees
  the installed header, socket round trips, and the C serving callback.
"""

from __future__ import annotations

import array
import ctypes
import errno
import gc
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
import ringio
from ringio import _ringio

F = ctypes.PYFUNCTYPE
O = ctypes.py_object  # noqa: E741 (ctypes shorthand)
I = ctypes.c_int  # noqa: E741
U = ctypes.c_uint
D = ctypes.c_double
VP = ctypes.c_void_p
PU = ctypes.POINTER(ctypes.c_uint)
PI = ctypes.POINTER(ctypes.c_int)


class CAPI(ctypes.Structure):
    """RingioCAPI, member by member, in order."""

    _fields_ = [
        ("abi_version", ctypes.c_uint32),
        ("struct_size", ctypes.c_uint32),
        ("feature_flags", ctypes.c_uint64),
        # ---- revision 1
        ("ring_new", F(O, U, U)),
        ("ring_check", F(I, O)),
        ("ring_close", F(I, O)),
        ("ring_fd", F(I, O)),
        ("ring_submit_nop", F(O, O, O)),
        ("ring_wait", F(O, O, D)),
        ("ring_break_wait", F(I, O)),
        ("completion_check", F(I, O)),
        ("completion_user_data", F(O, O)),
        ("completion_result", F(O, O)),
        ("completion_res", F(I, O, ctypes.POINTER(ctypes.c_int32))),
        ("completion_flags", F(I, O, ctypes.POINTER(ctypes.c_uint32))),
        ("completion_sequence", F(I, O, ctypes.POINTER(ctypes.c_uint32))),
        ("completion_kind", F(I, O)),
        ("completion_more", F(I, O)),
        ("completion_done", F(I, O)),
        # ---- revision 2
        ("probe", F(O, U, U)),
        ("ring_new_ex", F(O, U, U, O)),
        ("ring_closed", F(I, O)),
        ("ring_sq_entries", F(I, O, PU)),
        ("ring_cq_entries", F(I, O, PU)),
        ("ring_features", F(I, O, PU)),
        ("ring_setup_flags", F(I, O, PU)),
        ("ring_submit", F(I, O)),
        ("ring_wait_many", F(O, O, U, D)),
        ("ring_submit_timeout", F(O, O, D, O)),
        ("ring_submit_cancel", F(O, O, O, O, U)),
        ("ring_submit_poll", F(O, O, I, U, O, I)),
        ("ring_submit_recv", F(O, O, I, O, O, I)),
        ("ring_submit_recv_multishot", F(O, O, I, ctypes.c_size_t, U, O, I, ctypes.c_uint32)),
        ("ring_submit_send", F(O, O, I, O, O, I)),
        ("ring_submit_send_zc", F(O, O, I, O, O, I, U)),
        ("ring_submit_recvmsg", F(O, O, I, O, O, I, ctypes.c_size_t)),
        ("ring_submit_sendto", F(O, O, I, O, O, O, I)),
        ("ring_submit_sendmsg", F(O, O, I, O, O, O, I, O)),
        ("ring_submit_sendmsg_zc", F(O, O, I, O, O, O, I, U, O)),
        ("ring_submit_accept", F(O, O, I, O, I)),
        ("ring_submit_accept_multishot", F(O, O, I, O, I, ctypes.c_uint32)),
        ("ring_submit_connect", F(O, O, I, O, O)),
        ("ring_submit_shutdown", F(O, O, I, I, O)),
        ("ring_submit_close", F(O, O, I, O)),
        ("ring_submit_socket", F(O, O, I, I, I, I, O)),
        ("ring_set_callback", F(I, O, O)),
        ("ring_set_c_callback", F(I, O, VP, VP)),
        ("ring_serve_completions", F(I, O)),
        ("ring_stop_serving", F(I, O)),
        ("ring_reset_serving", F(I, O)),
        ("completion_zc_copied", F(I, O, PI)),
        ("completion_ancdata", F(O, O)),
        ("completion_msg_flags", F(I, O, PI)),
        ("sockaddr_to_address", F(O, VP, ctypes.c_uint32)),
        ("address_to_sockaddr", F(I, O, I, VP, ctypes.POINTER(ctypes.c_uint32))),
    ]


FEATURE_CORE, FEATURE_SOCKETS, FEATURE_SERVING = 1, 2, 4
HEADER = os.path.join(ringio.get_include(), "ringio_capi.h")
CLIENT_SRC = Path(__file__).parent / "capi_client" / "ringio_capi_client.c"
WAIT = 10.0


def _api() -> CAPI:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = get(_ringio._C_API, b"ringio._ringio._C_API")
    return CAPI.from_address(ptr)


def _header_text() -> str:
    with open(HEADER) as f:
        return f.read()


def _header_members() -> list[str]:
    body = re.search(r"typedef struct RingioCAPI \{(.*?)\} RingioCAPI;", _header_text(), re.DOTALL)
    text = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.DOTALL)
    return [a or b for a, b in re.findall(r"\(\*(\w+)\)|\b(\w+);", text)]


def _out(ctype=ctypes.c_uint):
    v = ctype(0xDEAD)
    return v, ctypes.byref(v)


def _until_done(api: CAPI, ring, *ops) -> list:
    """Reap until every op is done (a multishot handle: after its final leg)."""
    got = []
    deadline = time.monotonic() + WAIT
    while not all(op.done for op in ops):
        assert time.monotonic() < deadline, f"not done within {WAIT}s: {ops!r}"
        c = api.ring_wait(ring, 0.5)
        if c is not None:
            got.append(c)
    return got


def _wait(api: CAPI, ring, op=None):
    got = api.ring_wait(ring, WAIT)
    assert got is not None, f"no completion within {WAIT}s"
    if op is not None:
        assert got is op
    return got


# --------------------------------------------------------------------------- the header


def test_header_is_installed():
    assert os.path.isfile(HEADER)


def test_mirror_matches_header():
    assert _header_members() == [name for name, _ in CAPI._fields_]
    abi = int(re.search(r"#define RINGIO_CAPI_ABI_VERSION (\d+)u", _header_text()).group(1))
    assert _api().abi_version == abi


def test_header_kind_numbers_are_the_python_constants():
    kinds = dict(re.findall(r"#define RINGIO_CAPI_KIND_(\w+) (\d+)", _header_text()))
    expected = {
        name[len("COMPLETION_KIND_"):]: getattr(ringio, name)
        for name in dir(ringio)
        if name.startswith("COMPLETION_KIND_")
    }
    assert {k: int(v) for k, v in kinds.items()} == expected


def test_header_includes_only_python_socket_and_standard_headers():
    includes = re.findall(r"^#include\s*([<\"][^>\"]+[>\"])", _header_text(), re.MULTILINE)
    assert includes == ["<Python.h>", "<stddef.h>", "<stdint.h>", "<sys/socket.h>"]


def test_every_member_is_documented():
    """Every function pointer has a comment above it: its own, or the comment of the
    group of consecutive members it belongs to (section rulers do not count)."""
    body = re.search(r"typedef struct RingioCAPI \{(.*?)\} RingioCAPI;", _header_text(), re.DOTALL)
    lines = [line.strip() for line in body.group(1).splitlines()]
    undocumented = []
    for i, line in enumerate(lines):
        m = re.search(r"\(\*(\w+)\)", line)
        if not m:
            continue
        documented = False
        for above in reversed(lines[:i]):
            if not above:
                break
            if above.endswith("*/") and not re.match(r"/\* (-{4}|={8})", above):
                documented = True
                break
        if not documented:
            undocumented.append(m.group(1))
    assert not undocumented


def test_capsule_header_fields():
    api = _api()
    assert api.abi_version == 1  # only appended since revision 1: ABI-1 clients still work
    assert api.struct_size == ctypes.sizeof(CAPI)
    assert api.feature_flags == FEATURE_CORE | FEATURE_SOCKETS | FEATURE_SERVING
    raw = (ctypes.c_void_p * (ctypes.sizeof(CAPI) // ctypes.sizeof(ctypes.c_void_p))).from_address(
        ctypes.addressof(api)
    )
    assert all(raw[i] for i in range(2, len(raw))), "a NULL function pointer in the table"


def _compilers() -> list:
    found = []
    for cc, flags in (("gcc", ["-std=c17"]), ("clang", ["-std=c17"]),
                      ("g++", ["-x", "c++", "-std=c++17"]), ("clang++", ["-x", "c++", "-std=c++17"])):
        if shutil.which(cc):
            found.append(pytest.param(cc, flags, id=cc))
    return found


def _include_flags() -> list[str]:
    paths = sysconfig.get_paths()
    flags = ["-I", ringio.get_include(), "-I", paths["include"]]
    if paths.get("platinclude") and paths["platinclude"] != paths["include"]:
        flags += ["-I", paths["platinclude"]]
    return flags


@pytest.mark.parametrize("cc,flags", _compilers() or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no C compiler (gcc, clang) on PATH"))])
def test_header_compiles(tmp_path, cc, flags):
    """The header alone, with -Wall -Wextra -Werror, as C17 and C++17."""
    src = tmp_path / "use_capi.c"
    src.write_text(
        '#include "ringio_capi.h"\n'
        "static int cb(PyObject *ring, PyObject *completion, void *user)\n"
        "{ (void)ring; (void)completion; (void)user; return 0; }\n"
        "int check(PyObject *ring);\n"
        "int check(PyObject *ring) {\n"
        "    const RingioCAPI *api = RingioCAPI_ImportAtLeast(RINGIO_CAPI_SIZE_1);\n"
        "    if (api == NULL || !(api->feature_flags & RINGIO_CAPI_FEATURE_CORE))\n"
        "        return -1;\n"
        "    if (!RINGIO_CAPI_HAS(api, ring_set_c_callback))\n"
        "        return -1;\n"
        "    RingioCCallback fn = cb;\n"
        "    return api->ring_set_c_callback(ring, fn, NULL) + (RingioCAPI_Import() != NULL);\n"
        "}\n"
    )
    cmd = [cc, *flags, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", *_include_flags(), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- the table via ctypes


def test_capsule_ring_round_trip(uring):
    """The revision-1 members, exactly as an ABI-1 client uses them."""
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


def test_capsule_probe(uring):
    api = _api()
    assert api.probe(2, 0) == ringio.probe(2, 0)
    with pytest.raises(ValueError):
        api.probe(0, 0)


@pytest.mark.kernel  # asks the C API for a backend="uring" ring
def test_capsule_ring_metadata_and_flush(uring):
    api = _api()
    ring = api.ring_new_ex(4, 0, {"cq_entries": 32, "backend": "uring"})
    try:
        assert api.ring_closed(ring) == 0
        for name in ("sq_entries", "cq_entries", "features", "setup_flags"):
            v, p = _out()
            assert getattr(api, f"ring_{name}")(ring, p) == 0
            assert v.value == getattr(ring, name), name
        assert ring.cq_entries == 32
        assert api.ring_new_ex(4, 0, None).close() is None  # NULL kwargs
        with pytest.raises(TypeError):
            api.ring_new_ex(4, 0, [("cq_entries", 32)])
        with pytest.raises(ValueError):
            api.ring_new_ex(4, 0, {"backend": "nonsense"})
        with ring.batch():
            ops = [api.ring_submit_nop(ring, i) for i in range(3)]
            assert ring.staged == 3
            assert api.ring_submit(ring) == 3
            assert ring.staged == 0
        got = []
        while len(got) < 3:
            got += api.ring_wait_many(ring, 8, WAIT)
        assert sorted(c.user_data for c in got) == [0, 1, 2] and set(got) == set(ops)
        assert api.ring_wait_many(ring, 8, 0.01) == []
        with pytest.raises(ValueError):
            api.ring_wait_many(ring, 0, 0.0)
    finally:
        assert api.ring_close(ring) == 0
    assert api.ring_closed(ring) == 1
    assert api.ring_close(ring) == 0  # idempotent
    v, p = _out()
    with pytest.raises(ringio.RingClosed):
        api.ring_sq_entries(ring, p)
    with pytest.raises(ringio.RingClosed):
        api.ring_submit_nop(ring, None)
    with pytest.raises(TypeError):
        api.ring_closed(object())


def test_capsule_timeout_cancel_poll(uring):
    api = _api()
    ring = api.ring_new(8, 0)
    a, b = socket.socketpair()
    try:
        t = api.ring_submit_timeout(ring, 0.01, "t")
        assert _wait(api, ring, t).res == -errno.ETIME
        assert api.completion_kind(t) == ringio.COMPLETION_KIND_TIMEOUT
        with pytest.raises(ValueError):
            api.ring_submit_timeout(ring, -1.0, None)
        with pytest.raises(ValueError):
            api.ring_submit_timeout(ring, float("nan"), None)

        long_t = api.ring_submit_timeout(ring, 60.0, None)
        cancel = api.ring_submit_cancel(ring, long_t, "c", 0)
        got = {_wait(api, ring), _wait(api, ring)}
        assert got == {long_t, cancel}
        assert long_t.res == -errno.ECANCELED and cancel.res == 0
        with pytest.raises(TypeError):
            api.ring_submit_cancel(ring, "not a completion", None, 0)
        with pytest.raises(ValueError):
            api.ring_submit_cancel(ring, long_t, None, 0x4000_0000)

        p = api.ring_submit_poll(ring, b.fileno(), 0x001, "poll", 0)  # POLLIN
        a.send(b"x")
        assert _wait(api, ring, p).result & 0x001
        assert api.completion_kind(p) == ringio.COMPLETION_KIND_POLL
        multi = api.ring_submit_poll(ring, a.fileno(), 0x004, None, 1)  # POLLOUT, multishot
        leg = _wait(api, ring)
        assert leg is not multi and leg.sequence == 0 and api.completion_more(leg) == 1
        _until_done(api, ring, multi, api.ring_submit_cancel(ring, multi, None, 0))
        with pytest.raises(ValueError):
            api.ring_submit_poll(ring, -1, 1, None, 0)
    finally:
        api.ring_close(ring)
        a.close()
        b.close()


def test_capsule_socket_submissions(uring):
    """Every socket member, through ctypes, on real sockets."""
    api = _api()
    ring = api.ring_new(16, 0)
    a, b = socket.socketpair()
    ls = socket.create_server(("127.0.0.1", 0))
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fds = []
    try:
        u1.bind(("127.0.0.1", 0))
        u2.bind(("127.0.0.1", 0))
        # send / recv
        buf = bytearray(5)
        s = api.ring_submit_send(ring, a.fileno(), b"hello", "s", 0)
        r = api.ring_submit_recv(ring, b.fileno(), buf, "r", 0)
        assert {_wait(api, ring), _wait(api, ring)} == {s, r}
        assert s.res == 5 and r.res == 5 and buf == b"hello"
        # sendmsg with SCM_RIGHTS / recvmsg with ancdata
        fds_arr = array.array("i", [u1.fileno()])
        sm = api.ring_submit_sendmsg(ring, a.fileno(), [b"ab", b"cd"], None, None, 0,
                                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds_arr)])
        rbuf = bytearray(4)
        rm = api.ring_submit_recvmsg(ring, b.fileno(), rbuf, None, 0, 64)
        assert {_wait(api, ring), _wait(api, ring)} == {sm, rm}
        assert sm.res == 4 and rm.res == 4 and rbuf == b"abcd"
        anc = api.completion_ancdata(rm)
        assert anc[0][:2] == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        fds.extend(array.array("i", anc[0][2]))
        v, p = _out(ctypes.c_int)
        assert api.completion_msg_flags(rm, p) == 1 and v.value == 0
        assert api.completion_msg_flags(sm, p) == 0
        assert api.completion_ancdata(sm) is None
        # sendto / sendmsg_zc (UDP)
        st = api.ring_submit_sendto(ring, u1.fileno(), b"dgram", u2.getsockname(), None, 0)
        assert _wait(api, ring, st).res == 5
        assert u2.recvfrom(16) == (b"dgram", u1.getsockname())
        smz = api.ring_submit_sendmsg_zc(ring, u1.fileno(), [b"z"], u2.getsockname(), None, 0,
                                         0, None)
        _wait(api, ring, smz)
        if smz.res != -errno.EINVAL:
            assert smz.res == 1 and u2.recv(16) == b"z"
        # recv_multishot
        rms = api.ring_submit_recv_multishot(ring, b.fileno(), 64, 4, "m", 0, 5)
        a.send(b"leg")
        leg = _wait(api, ring)
        if leg.res != -errno.EINVAL:
            assert leg.result == b"leg" and leg.sequence == 5 and leg.user_data == "m"
            _until_done(api, ring, rms, api.ring_submit_cancel(ring, rms, None, 0))
        with pytest.raises(ValueError):
            api.ring_submit_recv_multishot(ring, b.fileno(), 64, 3, None, 0, 0)
        with pytest.raises(ValueError):
            api.ring_submit_recv_multishot(ring, b.fileno(), 1 << 62, 4, None, 0, 0)
        # socket / connect / accept / accept_multishot / shutdown / close
        so = api.ring_submit_socket(ring, socket.AF_INET, socket.SOCK_STREAM, 0,
                                    socket.SOCK_CLOEXEC, None)
        cfd = _wait(api, ring, so).res
        assert cfd >= 0
        fds.append(cfd)
        acc = api.ring_submit_accept(ring, ls.fileno(), None, socket.SOCK_CLOEXEC)
        con = api.ring_submit_connect(ring, cfd, ls.getsockname(), None)
        assert {_wait(api, ring), _wait(api, ring)} == {acc, con}
        assert con.res == 0
        sfd, peer = acc.result
        fds.append(sfd)
        assert peer[0] == "127.0.0.1"
        # send_zc on TCP (loopback: the kernel copies, and REPORT_USAGE says so)
        z = api.ring_submit_send_zc(ring, cfd, b"zc", None, 0, ringio.IORING_SEND_ZC_REPORT_USAGE)
        _wait(api, ring, z)
        v, p = _out(ctypes.c_int)
        assert api.completion_zc_copied(z, p) == 0
        if z.res != -errno.EINVAL:  # kernels without SEND_ZC
            assert z.res == 2 and v.value == 1
            assert os.read(sfd, 2) == b"zc"
        else:
            assert v.value == -1
        am = api.ring_submit_accept_multishot(ring, ls.fileno(), None, 0, 0)
        extra = socket.create_connection(ls.getsockname())
        leg = _wait(api, ring)
        if leg.res != -errno.EINVAL:
            assert leg.sequence == 0 and leg.res >= 0
            fds.append(leg.res)
            _until_done(api, ring, am, api.ring_submit_cancel(ring, am, None, 0))
        extra.close()
        sh = api.ring_submit_shutdown(ring, cfd, socket.SHUT_WR, None)
        assert _wait(api, ring, sh).res == 0
        assert os.read(sfd, 10) == b""
        with pytest.raises(ValueError):
            api.ring_submit_shutdown(ring, cfd, 99, None)
        while fds:
            fd = fds.pop()
            assert _wait(api, ring, api.ring_submit_close(ring, fd, None)).res == 0
        # bad arguments
        with pytest.raises(ValueError):
            api.ring_submit_send(ring, a.fileno(), b"x", None, -1)
        with pytest.raises(ValueError):
            api.ring_submit_recv(ring, -1, bytearray(1), None, 0)
        with pytest.raises(TypeError):
            api.ring_submit_recv(ring, b.fileno(), b"read-only", None, 0)
        with pytest.raises(ValueError):
            api.ring_submit_accept(ring, ls.fileno(), None, -1)
        with pytest.raises(ValueError):
            api.ring_submit_socket(ring, socket.AF_INET, socket.SOCK_STREAM, 0, 0x7, None)
        with pytest.raises(ValueError):
            api.ring_submit_send_zc(ring, a.fileno(), b"x", None, 0, 0x8000)
        with pytest.raises(TypeError):
            api.ring_submit_send("not a ring", a.fileno(), b"x", None, 0)
        with pytest.raises(TypeError):
            api.ring_submit_connect(ring, a.fileno(), 12, None)
    finally:
        for fd in fds:
            os.close(fd)
        api.ring_close(ring)
        for s_ in (a, b, ls, u1, u2):
            s_.close()


def test_capsule_address_converters():
    api = _api()
    for family, address, expected in (
        (socket.AF_INET, ("127.0.0.1", 8080), ("127.0.0.1", 8080)),
        (socket.AF_INET6, ("::1", 80, 0, 0), ("::1", 80, 0, 0)),
        (socket.AF_UNIX, "/tmp/sock", "/tmp/sock"),
        (socket.AF_UNIX, b"\0abstract", b"\0abstract"),
    ):
        ss = ctypes.create_string_buffer(128)
        n = ctypes.c_uint32(0)
        assert api.address_to_sockaddr(address, family, ctypes.addressof(ss), ctypes.byref(n)) == 0
        assert int.from_bytes(ss.raw[:2], sys.byteorder) == family
        assert api.sockaddr_to_address(ctypes.addressof(ss), n.value) == expected
    ss = ctypes.create_string_buffer(128)
    n = ctypes.c_uint32(0)
    with pytest.raises(ValueError):
        api.address_to_sockaddr(("example.org", 80), socket.AF_INET, ctypes.addressof(ss),
                                ctypes.byref(n))
    with pytest.raises(TypeError):
        api.address_to_sockaddr("/path", socket.AF_INET, ctypes.addressof(ss), ctypes.byref(n))
    ss[0:2] = socket.AF_INET.to_bytes(2, sys.byteorder)
    with pytest.raises(ValueError):
        api.sockaddr_to_address(ctypes.addressof(ss), 8)  # shorter than sockaddr_in
    ss[0:2] = (12345).to_bytes(2, sys.byteorder)
    with pytest.raises(ValueError):
        api.sockaddr_to_address(ctypes.addressof(ss), 16)  # unknown family
    assert api.sockaddr_to_address(None, 0) is None


def test_capsule_python_callback_serving(uring):
    api = _api()
    ring = api.ring_new(8, 0)
    seen = []
    try:
        with pytest.raises(RuntimeError, match="callback"):
            api.ring_serve_completions(ring)
        with pytest.raises(TypeError):
            api.ring_set_callback(ring, 42)

        def callback(c):
            seen.append(c.user_data)
            if len(seen) == 3:
                api.ring_stop_serving(ring)

        assert api.ring_set_callback(ring, callback) == 0
        assert ring.callback is callback
        worker = threading.Thread(target=ring.serve_completions)
        worker.start()
        for i in range(3):
            api.ring_submit_nop(ring, i)
        worker.join(WAIT)
        assert not worker.is_alive()
        assert sorted(seen) == [0, 1, 2]
        assert api.ring_serve_completions(ring) == 0  # stopped: returns at once
        assert api.ring_reset_serving(ring) == 0
        assert api.ring_set_callback(ring, None) == 0
        assert ring.callback is None
        assert api.ring_set_c_callback(ring, None, None) == 0  # clearing always works
    finally:
        api.ring_close(ring)
    assert api.ring_set_c_callback(ring, None, None) == 0


# --------------------------------------------------------------------------- the compiled client


def _c_compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc.split()[0]):
            return cc
    return None


def _build_and_import(tmp_path_factory, src: Path, name: str, include: str):
    """Compile src into the extension module `name` and import it (skip without a compiler)."""
    cc = _c_compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH to build the C API client")
    out = tmp_path_factory.mktemp(name) / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    paths = sysconfig.get_paths()
    cmd = [*cc.split(), "-std=c17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
           "-I", include, "-I", paths["include"], "-I", paths["platinclude"],
           str(src), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    spec = importlib.util.spec_from_file_location(name, out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """tests/python/capi_client built against the installed header and imported."""
    return _build_and_import(tmp_path_factory, CLIENT_SRC, "ringio_capi_client",
                             ringio.get_include())


def test_client_built_against_revision_1_still_works(tmp_path_factory, uring):
    """A client compiled against the frozen revision-1 header runs unchanged."""
    abi1 = _build_and_import(tmp_path_factory, CLIENT_SRC.parent / "abi1_client.c",
                             "ringio_capi_abi1_client", str(CLIENT_SRC.parent / "abi1"))
    assert abi1.roundtrip() == (1, 0, ctypes.sizeof(CAPI))


def test_client_layout_matches_the_module(client):
    """The header as a C compiler sees it == the table ringio built == the ctypes mirror."""
    lay = client.layout()
    assert lay["sizeof"] == lay["struct_size"] == ctypes.sizeof(CAPI) == lay["size_2"]
    assert lay["abi_version"] == lay["header_abi_version"] == 1
    assert lay["feature_flags"] == FEATURE_CORE | FEATURE_SOCKETS | FEATURE_SERVING
    assert lay["null_members"] == []
    assert lay["has_address_to_sockaddr"] == 1
    assert lay["kind_socket"] == ringio.COMPLETION_KIND_SOCKET
    mirror = [(name, getattr(CAPI, name).offset) for name, _ in CAPI._fields_]
    assert [tuple(x) for x in lay["offsets"]] == mirror
    # Revision 1 is a prefix of the table, unchanged.
    assert lay["size_1"] == CAPI.completion_done.offset + ctypes.sizeof(ctypes.c_void_p)


def test_client_import_checks(client):
    lay = client.layout()
    assert client.import_at_least(lay["size_1"]) is True
    assert client.import_at_least(lay["sizeof"]) is True
    with pytest.raises(ImportError, match="ringio C API mismatch"):
        client.import_at_least(lay["sizeof"] + 8)


def test_client_null_and_wrong_arguments(client, ring):
    results = dict(client.null_checks(ring))
    assert all(exc is not None for exc in results.values()), results
    assert results["ring_submit_recv(buf NULL)"] is TypeError
    assert results["ring_submit_nop(NULL ring)"] is TypeError
    assert results["ring_submit_nop(list)"] is TypeError
    assert results["ring_submit_connect(address NULL)"] is TypeError
    assert results["sockaddr_to_address(short)"] is ValueError


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_SEQPACKET],
                         ids=["stream", "seqpacket"])
def test_client_echo_roundtrip(client, uring, kind):
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    try:
        payload = bytes(range(256)) * 16
        assert client.echo_roundtrip(a.fileno(), b.fileno(), payload) == payload
    finally:
        a.close()
        b.close()


def test_client_echo_roundtrip_reports_errors(client, uring):
    a, b = socket.socketpair()
    b.close()  # the send fails with EPIPE, the recv with EBADF
    try:
        with pytest.raises((OSError, AssertionError)):
            client.echo_roundtrip(a.fileno(), 999_999, b"x")
    finally:
        a.close()


def test_client_tcp_roundtrip(client, uring):
    with socket.create_server(("127.0.0.1", 0)) as ls:
        payload = os.urandom(100_000)
        data, peer = client.tcp_roundtrip(ls.fileno(), ls.getsockname(), payload)
    assert data == payload
    assert peer[0] == "127.0.0.1" and peer[1] > 0


# ---- the C serving callback


def _workers(target, ring, n):
    errors: list[BaseException] = []

    def run():
        try:
            target(ring)
        except BaseException as e:  # noqa: BLE001 - recorded for the test
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def _join(threads):
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "serving workers did not stop"


def _until(pred, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.mark.parametrize("serve", ["python", "c"])
def test_c_callback_serves_completions(client, ring, serve):
    """Workers (Ring.serve_completions or the C API's ring_serve_completions) call
    the C callback for every completion; Ring.callback need not be set."""
    n = 50
    counter = client.install_counter(ring, stop_after=n)
    target = ringio.Ring.serve_completions if serve == "python" else client.serve
    threads, errors = _workers(target, ring, 3)
    assert _until(lambda: ring.running)
    for i in range(n):
        ring.submit_nop(i)
    _join(threads)
    assert errors == []
    assert counter.count == n and counter.res_sum == 0
    assert sorted(counter.seen) == list(range(n))
    assert not ring.running
    counter.uninstall()


def test_c_callback_takes_precedence_over_python_callback(client, ring):
    python_seen = []
    ring.callback = lambda c: python_seen.append(c.user_data)
    counter = client.install_counter(ring, stop_after=1)
    threads, errors = _workers(ringio.Ring.serve_completions, ring, 1)
    ring.submit_nop("c")
    _join(threads)
    assert counter.seen == ["c"] and python_seen == []

    counter.uninstall()  # back to Ring.callback
    ring.reset_serving()
    threads, errors2 = _workers(ringio.Ring.serve_completions, ring, 1)
    ring.submit_nop("py")
    assert _until(lambda: python_seen == ["py"])
    ring.stop_serving()
    _join(threads)
    assert errors == errors2 == []
    assert counter.count == 1


@pytest.mark.parametrize("fail_with", [ValueError, None])
def test_c_callback_error_is_unraisable_and_stops_the_group(client, ring, monkeypatch, fail_with):
    reports = []
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    counter = client.install_counter(ring, fail_at=3, fail_with=fail_with)
    threads, errors = _workers(client.serve, ring, 2)
    assert _until(lambda: ring.running)
    for i in range(3):
        ring.submit_nop(i)
    _join(threads)
    assert errors == []  # an Exception is reported, not raised
    assert counter.count == 3
    assert not ring.running
    assert len(reports) == 1
    expected = ValueError if fail_with is ValueError else SystemError
    assert isinstance(reports[0].exc_value, expected)
    assert reports[0].object is ring
    # The group stopped; reset_serving() lets it serve again.
    ring.reset_serving()
    extra = ring.submit_nop("after")
    assert ring.wait(WAIT) is extra


def test_c_callback_base_exception_propagates(client, ring):
    counter = client.install_counter(ring, fail_at=1, fail_with=KeyboardInterrupt)
    threads, errors = _workers(client.serve, ring, 2)
    assert _until(lambda: ring.running)
    ring.submit_nop()
    _join(threads)
    assert len(errors) == 1 and isinstance(errors[0], KeyboardInterrupt)
    assert counter.count == 1 and not ring.running


def test_c_callback_lifetime(client, uring):
    """The ring never owns the user pointer: the Counter clears the callback when
    it dies, and close() forgets it."""
    ring = ringio.Ring()
    try:
        counter = client.install_counter(ring)
        del counter
        gc.collect()
        with pytest.raises(RuntimeError, match="callback"):
            ring.serve_completions()  # no callback of either kind any more

        counter = client.install_counter(ring)
        ring.close()  # clears the C callback
        counter.uninstall()  # clearing a closed ring's callback works
        with pytest.raises(ringio.RingClosed):
            client.install_counter(ring)
    finally:
        ring.close()
