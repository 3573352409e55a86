"""probe(), is_available(), unavailable_reason() and `python -m ringio probe`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import ringio


def test_probe_shape(probe_result):
    d = ringio.probe()
    assert isinstance(d, dict)
    if not d:
        assert ringio.is_available() is False
        assert isinstance(ringio.unavailable_reason(), str)
        return
    assert d["available"] is True
    assert all(isinstance(k, str) for k in d)
    assert all(isinstance(v, bool) for v in d.values())
    # Runtime capability names: the kernel's opcode probe and feature bits.
    for key in ("IORING_OP_NOP", "IORING_OP_TIMEOUT", "IORING_OP_ASYNC_CANCEL",
                "IORING_OP_POLL_ADD"):
        assert d[key] is True, key
    for key in ("IORING_OP_SEND_ZC", "IORING_OP_SENDMSG_ZC", "IORING_ACCEPT_MULTISHOT",
                "IORING_RECV_MULTISHOT", "IORING_FEAT_NODROP", "IORING_FEAT_SINGLE_MMAP"):
        assert key in d, key
    assert any(k.startswith("IORING_FEAT_") for k in d)
    assert d == probe_result


@pytest.mark.kernel  # the kernel's own probe
def test_probe_matches_a_real_ring(uring):
    d = ringio.probe()
    with ringio.Ring() as ring:
        features = ring.features
    # Every feature bit the probe reports as present is set on a ring.
    assert d["IORING_FEAT_NODROP"] == bool(features & ringio.IORING_FEAT_NODROP)
    assert d["IORING_FEAT_EXT_ARG"] == bool(features & ringio.IORING_FEAT_EXT_ARG)


def test_is_available_and_reason(probe_result):
    assert ringio.is_available() is bool(probe_result)
    reason = ringio.unavailable_reason()
    if probe_result:
        assert reason is None
    else:
        assert "Errno" in reason


@pytest.mark.kernel  # the kernel's own probe
def test_probe_with_rejected_flags_is_empty(uring):
    # No kernel accepts setup flag bit 31: the probe answers {} and says why.
    assert ringio.probe(flags=1 << 31) == {}
    reason = ringio.unavailable_reason(flags=1 << 31)
    assert "EINVAL" in reason or "Errno 22" in reason
    assert "IORING_SETUP" in reason


@pytest.mark.kernel  # the kernel's own probe
def test_probe_accepts_setup_flags(uring):
    d = ringio.probe(entries=4, flags=ringio.IORING_SETUP_CLAMP)
    assert d["available"] is True


def test_liburing_version_string():
    assert isinstance(ringio.__liburing_version__, str)
    assert ringio.__liburing_version__


def test_constants_exported():
    for name in ("IORING_SETUP_SQPOLL", "IORING_SETUP_CLAMP", "IORING_SETUP_CQSIZE",
                 "IORING_CQE_F_MORE", "IORING_CQE_F_NOTIF", "IORING_CQE_F_BUFFER",
                 "IORING_SEND_ZC_REPORT_USAGE", "IORING_NOTIF_USAGE_ZC_COPIED",
                 "IORING_ASYNC_CANCEL_ALL", "IORING_ASYNC_CANCEL_ANY",
                 "COMPLETION_KIND_NOP", "COMPLETION_KIND_TIMEOUT", "COMPLETION_KIND_CANCEL",
                 "COMPLETION_KIND_POLL"):
        assert isinstance(getattr(ringio, name), int), name
        assert name in ringio.__all__
    kinds = {getattr(ringio, n) for n in dir(ringio) if n.startswith("COMPLETION_KIND_")}
    assert len(kinds) == 29  # one per Completion kind (nop ... socket, openat ... mkdirat)


def _run_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "ringio", *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


def test_cli_probe_table(subprocess_env, probe_result):
    r = _run_cli(subprocess_env, "probe")
    assert r.returncode == 0, r.stderr
    assert "io_uring available" in r.stdout
    if probe_result:
        assert ": yes" in r.stdout.splitlines()[0]
        assert "IORING_OP_NOP" in r.stdout
        assert "IORING_FEAT_NODROP" in r.stdout
        # The runtime-probed keys are listed once, in their own section.
        runtime = r.stdout.split("runtime operation probes", 1)[1].split("\n\n", 1)[0]
        for key in ("IORING_ACCEPT_MULTISHOT", "IORING_RECV_MULTISHOT", "IORING_OP_SEND_ZC"):
            assert key in runtime
            assert r.stdout.count(f"  {key} ") == 1
    else:
        assert "reason" in r.stdout


def test_cli_probe_json(subprocess_env, probe_result):
    r = _run_cli(subprocess_env, "probe", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["available"] is bool(probe_result)
    assert report["liburing"] == ringio.__liburing_version__
    if probe_result:
        expected = {k: v for k, v in probe_result.items() if k != "available"}
        assert report["capabilities"] == expected
    else:
        assert isinstance(report["reason"], str)


def test_cli_probe_require(subprocess_env, probe_result):
    r = _run_cli(subprocess_env, "probe", "--require", "--flags", hex(1 << 31))
    assert r.returncode == 1  # no kernel accepts that flag
    assert "reason" in r.stdout
    r = _run_cli(subprocess_env, "probe", "--require")
    assert r.returncode == (0 if probe_result else 1)


def test_cli_requires_a_command(subprocess_env):
    r = _run_cli(subprocess_env)
    assert r.returncode == 2
    assert "probe" in r.stderr


def test_cli_main_in_process(capsys, probe_result):
    from ringio.__main__ import main

    assert main(["probe", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["available"] is bool(probe_result)
