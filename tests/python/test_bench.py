"""Smoke test of ``python -m ringio bench``: it runs, its JSON has the documented
shape, and ringio's own numbers are there and positive.

Never a timing assertion: speed is only ever compared within one bench run,
as ratios against peers measured in the same run.  The C programs are
compiled from tests/bench/c into a temporary directory (never into the
checkout); without a C compiler or liburing headers their rows are simply
"unavailable".
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ringio

C_SRC = Path(__file__).resolve().parents[1] / "bench" / "c"
REPEATS = 2
ROW_KEYS = {"impl", "how", "group", "unit", "status", "reason", "runs", "median", "min", "max",
            "ratio_to_c", "ratio_to_asyncio", "ratios"}


def _env() -> dict:
    """Environment for a child interpreter that imports the same ringio."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(ringio.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def quick_nop(tmp_path_factory) -> dict:
    """One quick nop run, shared by the tests of this module (a second or so)."""
    if not ringio.probe():
        pytest.skip(f"io_uring unavailable: {ringio.unavailable_reason()}")
    build = tmp_path_factory.mktemp("bench-build")
    p = subprocess.run(
        [sys.executable, "-m", "ringio", "bench", "--quick", "--scenario", "nop", "--json",
         "--repeat", str(REPEATS), "--c-src", str(C_SRC), "--build-dir", str(build)],
        check=False, capture_output=True, text=True, timeout=120, cwd=build, env=_env(),
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_report_shape(quick_nop: dict) -> None:
    r = quick_nop
    assert r["quick"] is True
    assert r["repeats"] == REPEATS
    assert r["command"].startswith("python -m ringio bench")
    assert "--quick" in r["command"]
    for key in ("cpu", "kernel", "python", "ringio", "liburing_system", "peers"):
        assert r["machine"][key], key
    assert list(r["scenarios"]) == ["nop"]
    assert r["skipped"] == {}
    nop = r["scenarios"]["nop"]
    assert nop["unit"] == "ops/s"
    assert nop["title"] and nop["setup"]
    assert {row["group"] for row in nop["rows"]} == {"batch of 64", "one at a time"}
    for row in nop["rows"]:
        assert set(row) == ROW_KEYS
        assert row["status"] in {"ok", "unavailable", "failed"}
        if row["status"] == "ok":
            assert len(row["runs"]) == REPEATS
            assert row["min"] <= row["median"] <= row["max"]
        else:
            assert isinstance(row["reason"], str) and row["reason"]
            assert row["runs"] == [] and row["median"] is None


def test_ringio_numbers_are_positive(quick_nop: dict) -> None:
    rows = [row for row in quick_nop["scenarios"]["nop"]["rows"] if row["impl"] == "ringio"]
    assert {row["group"] for row in rows} == {"batch of 64", "one at a time"}
    for row in rows:
        assert row["status"] == "ok", row["reason"]
        assert all(x > 0 and math.isfinite(x) for x in row["runs"]), row["runs"]
        assert row["median"] > 0


def test_ratios_relate_to_the_c_row_of_the_same_group(quick_nop: dict) -> None:
    rows = quick_nop["scenarios"]["nop"]["rows"]
    for group in ("batch of 64", "one at a time"):
        c = [row for row in rows if row["group"] == group and row["impl"] == "C liburing"]
        assert len(c) == 1
        for row in rows:
            if row["group"] != group or row["status"] != "ok":
                continue
            if c[0]["status"] == "ok":
                assert row["ratio_to_c"] == pytest.approx(row["median"] / c[0]["median"])
            else:
                assert row["ratio_to_c"] is None


def test_markdown_table(quick_nop: dict) -> None:
    from ringio.bench import render_markdown

    md = render_markdown(quick_nop)
    assert "| implementation | how | ops/s median [min-max] | vs C liburing |" in md
    assert "### nop: NOP submit+complete round trips" in md
    assert f"`{quick_nop['command']}`" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("| batch of 64 | ringio |")]
    assert len(lines) == 1 and "**" in lines[0]


def test_unknown_scenario_is_refused() -> None:
    p = subprocess.run([sys.executable, "-m", "ringio", "bench", "--scenario", "nope"],
                       check=False, capture_output=True, text=True, timeout=60, env=_env())
    assert p.returncode == 2
    assert "invalid choice" in p.stderr


@pytest.fixture(scope="module")
def quick_new(tmp_path_factory) -> dict:
    """The pingpong, sends, echo and http scenarios at tiny sizes, one measured run each."""
    if not ringio.probe():
        pytest.skip(f"io_uring unavailable: {ringio.unavailable_reason()}")
    build = tmp_path_factory.mktemp("bench-build-new")
    out = build / "report.json"
    png = build / "chart.png"
    args = [sys.executable, "-m", "ringio", "bench", "--quick", "--repeat", "1", "--c-src", str(C_SRC),
            "--build-dir", str(build), "--json", str(out)]
    for name in ("pingpong", "sends", "echo", "http"):
        args += ["--scenario", name]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        png = None
    else:
        args += ["--png", str(png)]
    p = subprocess.run(args, check=False, capture_output=True, text=True, timeout=300, cwd=build,
                       env=_env())
    assert p.returncode == 0, p.stderr
    assert "### pingpong" in p.stdout  # the Markdown table still goes to stdout
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads(out.read_text())


def test_new_scenarios_have_ringio_numbers(quick_new: dict) -> None:
    assert list(quick_new["scenarios"]) == ["pingpong", "sends", "echo", "http"]
    for name, sc in quick_new["scenarios"].items():
        for row in sc["rows"]:
            assert set(row) == ROW_KEYS
            if row["impl"] != "ringio":
                continue
            if name == "http" and row["status"] == "unavailable":
                assert "wrk" in row["reason"]  # no wrk on this machine
                continue
            assert row["status"] == "ok", (name, row["reason"])
            assert all(x > 0 and math.isfinite(x) for x in row["runs"]), row["runs"]


def test_new_scenarios_groups_and_baselines(quick_new: dict) -> None:
    sc = quick_new["scenarios"]
    assert {r["group"] for r in sc["echo"]["rows"]} == {"1 conn", "4 conn"}
    assert {r["impl"] for r in sc["http"]["rows"]} == {"ringio", "asyncio", "ThreadingHTTPServer"}
    assert sc["http"]["baselines"] == ["ThreadingHTTPServer"]
    for r in sc["http"]["rows"]:
        base = [b for b in sc["http"]["rows"] if b["impl"] == "ThreadingHTTPServer" and b["group"] == r["group"]]
        if r["status"] == "ok" and base and base[0]["status"] == "ok":
            assert r["ratios"]["ThreadingHTTPServer"] == pytest.approx(r["median"] / base[0]["median"])
    c = [r for r in sc["pingpong"]["rows"] if r["impl"] == "C liburing"]
    assert len(c) == 1 and c[0]["how"].startswith("prep_send")


def test_time_split_of_pingpong_and_sends(quick_new: dict) -> None:
    """The per-op split: C program + interpreter floor + ringio's own code = the ringio row."""
    for name, op in (("pingpong", "round trip"), ("sends", "send")):
        sc = quick_new["scenarios"][name]
        fl = sc["floor"]
        assert fl["op"] == op
        assert fl["row"] == next(r for r in sc["rows"] if r["impl"] == "ringio")["how"]
        assert 0 < fl["interpreter_us"] < 1e6
        ringio_row = next(r for r in sc["rows"] if r["impl"] == "ringio")
        c_row = next(r for r in sc["rows"] if r["impl"] == "C liburing")
        if ringio_row["status"] != "ok" or c_row["status"] != "ok":
            assert "ringio_us" not in fl
            continue
        assert fl["ringio_us"] == pytest.approx(1e6 / ringio_row["median"])
        assert fl["c_us"] == pytest.approx(1e6 / c_row["median"])
        assert fl["c_us"] + fl["interpreter_us"] + fl["ringio_code_us"] == pytest.approx(fl["ringio_us"])


def _quick_scenario(tmp_path, name: str) -> dict:
    """One scenario at quick sizes, one measured run; its JSON."""
    if not ringio.probe():
        pytest.skip(f"io_uring unavailable: {ringio.unavailable_reason()}")
    out = tmp_path / f"{name}.json"
    p = subprocess.run(
        [sys.executable, "-m", "ringio", "bench", "--quick", "--repeat", "1", "--scenario", name,
         "--c-src", str(C_SRC), "--build-dir", str(tmp_path), "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env(),
    )
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text())["scenarios"][name]


def test_sim_scenario_compares_the_backends(tmp_path) -> None:
    """`--scenario sim`: the same loops on a uring ring and a sim ring, with sim/uring ratios."""
    sc = _quick_scenario(tmp_path, "sim")
    groups = {}
    for row in sc["rows"]:
        assert row["status"] == "ok", row
        assert row["median"] > 0
        groups.setdefault(row["group"], {})[row["impl"]] = row
    assert len(groups) == 3
    for rows in groups.values():
        assert set(rows) == {"ringio on io_uring", "ringio on the sim"}
        real, sim = rows["ringio on io_uring"], rows["ringio on the sim"]
        assert sim["ratios"]["ringio on io_uring"] == pytest.approx(sim["median"] / real["median"])


def test_files_scenario_rows_and_targets(tmp_path) -> None:
    """The files scenario at quick sizes: ringio's rows measure, every peer row (caio's
    backends, python-libaio) is measured or says why not, and the targets are computed."""
    sc = _quick_scenario(tmp_path, "files")
    groups = {r["group"] for r in sc["rows"]}
    assert groups == {"random 4 KiB, 64 in flight", "sequential 1 MiB, 4 in flight"}
    for row in sc["rows"]:
        assert set(row) == ROW_KEYS
        if row["impl"].startswith("ringio"):
            assert row["status"] == "ok", row["reason"]
            assert all(x > 0 and math.isfinite(x) for x in row["runs"])
        else:
            assert row["status"] in ("ok", "unavailable"), row["reason"]
            assert row["status"] == "ok" or row["reason"]
    impls = {r["impl"].split(" ")[0] for r in sc["rows"]}
    assert {"ringio", "ringio.asyncio", "caio", "python-libaio", "os.pread", "C"} <= impls
    assert [t["what"].split(":")[0] for t in sc["targets"]] == ["random"] * 3 + ["sequential"] * 2
    for t in sc["targets"]:
        assert t["met"] is None or t["met"] == (t["ratio"] >= t["target"])
