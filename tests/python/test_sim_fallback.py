"""Where io_uring is blocked: a child process under a seccomp filter that makes io_uring_setup
fail (EPERM, and separately ENOSYS) must still import ringio, say why in probe(), fall back to
the simulated kernel with a warning, and refuse backend="uring" with a clear OSError.  And the
pytest plugin (ringio.testing) in a child pytest run."""

from __future__ import annotations

import errno
import json
import platform
import re
import subprocess
import sys
import textwrap

import pytest

SECCOMP_CHILD = textwrap.dedent(
    """
    import ctypes, json, struct, sys, warnings

    NR_IO_URING_SETUP = 425  # the same on every architecture (asm-generic numbering)
    err = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    insns = [
        (0x20, 0, 0, 0),                          # ld [0]: the syscall number
        (0x15, 0, 1, NR_IO_URING_SETUP),          # jeq io_uring_setup ? next : skip one
        (0x06, 0, 0, 0x00050000 | err),           # ret SECCOMP_RET_ERRNO | err
        (0x06, 0, 0, 0x7FFF0000),                 # ret SECCOMP_RET_ALLOW
    ]
    code = b"".join(struct.pack("HBBI", *i) for i in insns)
    buf = ctypes.create_string_buffer(code)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(insns), ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0                                # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()  # SECCOMP_MODE_FILTER

    import ringio  # must import

    out = {"probe": ringio.probe(), "available": ringio.is_available(),
           "reason": ringio.unavailable_reason()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ringio.Ring() as ring:
            out["auto_backend"] = ring.backend
            op = ring.submit_nop("works")
            out["nop"] = ring.wait(5).res
    out["warnings"] = [(w.category.__name__, str(w.message)) for w in caught]
    try:
        ringio.Ring(backend="uring")
    except OSError as e:
        out["uring_error"] = [e.errno, str(e)]
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="seccomp filter written for 64-bit")
@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS], ids=["EPERM", "ENOSYS"])
def test_blocked_io_uring_falls_back_to_the_sim(err, subprocess_env):
    env = dict(subprocess_env)
    env.pop("RINGIO_BACKEND", None)  # the child must choose by itself
    proc = subprocess.run(
        [sys.executable, "-c", SECCOMP_CHILD, str(err)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["probe"] == {} and out["available"] is False
    assert ("seccomp" in out["reason"]) if err == errno.EPERM else ("CONFIG_IO_URING" in out["reason"])
    assert out["auto_backend"] == "sim" and out["nop"] == 0
    [(category, message)] = out["warnings"]
    assert category == "BackendFallbackWarning"
    assert "simulated backend" in message and ("seccomp" in message or "CONFIG_IO_URING" in message)
    code, text = out["uring_error"]
    assert code == err and ("seccomp" in text or "CONFIG_IO_URING" in text)


PLUGIN_TESTS = textwrap.dedent(
    """
    import ringio

    def test_uses_the_fixture(sim_ring, ringio_seed):
        assert sim_ring.backend == "sim" and sim_ring.sim.seed == ringio_seed
        op = sim_ring.submit_nop(1)
        assert sim_ring.wait(1) is op

    def test_fails(sim_ring):
        assert False, "boom"

    def test_plain_ring_gets_the_test_seed():
        with ringio.Ring(backend="sim") as r:
            print("SEED", r.sim.seed)
    """
)


def _run_pytest(tmp_path, *args, subprocess_env):
    (tmp_path / "test_inner.py").write_text(PLUGIN_TESTS)
    env = dict(subprocess_env)
    env.pop("RINGIO_SIM_SEED", None)
    env.pop("RINGIO_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", str(tmp_path), *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


def test_pytest_plugin_reports_the_seed_and_reruns_over_seeds(tmp_path, subprocess_env):
    proc = _run_pytest(tmp_path, "--ringio-seed=0x1234", "--ringio-seeds=3", subprocess_env=subprocess_env)
    out = proc.stdout
    assert "ringio: sim base seed 0x1234" in out
    assert "3 failed, 4 passed" in out  # two fixture tests over 3 seeds each, and the plain one
    assert "reproduce: pytest 'test_inner.py::test_fails" in out and "--ringio-seed=0x1234" in out
    # The same base seed gives the same per-test seeds.
    again = _run_pytest(tmp_path, "--ringio-seed=0x1234", subprocess_env=subprocess_env).stdout
    seeds = re.findall(r"SEED (\d+)", out)
    assert seeds and seeds == re.findall(r"SEED (\d+)", again)
    other = _run_pytest(tmp_path, "--ringio-seed=0x99", subprocess_env=subprocess_env).stdout
    assert seeds != re.findall(r"SEED (\d+)", other)


def test_pytest_plugin_rejects_a_bad_profile(tmp_path, subprocess_env):
    proc = _run_pytest(tmp_path, "--ringio-faults=bogus=1", subprocess_env=subprocess_env)
    assert proc.returncode != 0 and "--ringio-faults" in proc.stderr


def test_probe_cli_says_ring_falls_back_to_the_sim(subprocess_env):
    from pathlib import Path

    wrapper = Path(__file__).resolve().parents[2] / "ci" / "no_io_uring.py"
    env = dict(subprocess_env)
    env.pop("RINGIO_BACKEND", None)
    blocked = subprocess.run(
        [sys.executable, str(wrapper), sys.executable, "-m", "ringio", "probe", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    report = json.loads(blocked.stdout)
    assert report["available"] is False and report["ring_backend"] == "sim"
    env["RINGIO_BACKEND"] = "uring"
    forced = subprocess.run(
        [sys.executable, str(wrapper), sys.executable, "-m", "ringio", "probe", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert json.loads(forced.stdout)["ring_backend"] == "uring"  # a forced choice is reported as is
