"""Every developer workflow of ringio is a nox session.

    bash ci/bootstrap.sh          # system packages + .venv with nox, meson, ...
    .venv/bin/nox -s tests        # what CI runs (.ci/run): C tests with -Werror and under ASan+UBSan,
                                  # fuzz corpora + 60 s of fuzzing per target, pip install ., pytest (and again
                                  # against an ASan+UBSan build of the extension), ruff, doc links
    .venv/bin/nox -s conformance  # pip install . and pytest on both backends (io_uring, then the sim)
    .venv/bin/nox -s asan         # C tests and pytest under AddressSanitizer + UBSan (clang)
    .venv/bin/nox -s fuzz -- 120  # every libFuzzer target for 120 s each (default 60)
    .venv/bin/nox -s fuzz-regress # every libFuzzer target over its seed corpus, no mutation
    .venv/bin/nox -s coverage     # llvm-cov line coverage of core/ and backends/sim/ reached by the fuzz corpora
    .venv/bin/nox -s bench        # python -m ringio bench: ringio vs asyncio, uvloop, liburing, uring-api, C
    .venv/bin/nox -s demo         # python -m ringio probe
    .venv/bin/nox -s lint         # ruff
    .venv/bin/nox -s docs         # README.md and docs/architecture.md: every relative link resolves

Build directories live under build/ (build/ci, build/asan, build/fuzz); fuzzing output
(working corpora, crash artifacts) under build/fuzz/, never in the source tree.
"""

from __future__ import annotations

import platform
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"

MESON = "meson>=1.1"
NINJA = "ninja>=1.10"
PYTEST = "pytest>=7.4"
# `pip install .` builds with meson-python in an isolated environment; -Werror there too.
PIP_INSTALL_WERROR = ["--config-settings=setup-args=-Dwerror=true"]

# The meson option that builds the C tests. Options named c_* are reserved by meson
# ("ERROR: Option name c_tests is reserved"), hence ctests.
C_TESTS_OPTION = "ctests"

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


# --------------------------------------------------------------------------- helpers


def _meson_setup(session: nox.Session, builddir: Path, *options: str, env: dict | None = None) -> None:
    """Configure builddir, reconfiguring (not wiping) an existing one; wipe only if that fails."""
    args = ["meson", "setup", str(builddir.relative_to(ROOT)), *options]
    if (builddir / "meson-private" / "coredata.dat").exists():
        try:
            session.run(*args, "--reconfigure", env=env)
            return
        except CommandFailed:
            session.warn(f"reconfiguring {builddir} failed; wiping it and configuring afresh")
            session.run(*args, "--wipe", env=env)
            return
    if builddir.exists():
        shutil.rmtree(builddir)  # a half-made or foreign directory: start clean
    session.run(*args, env=env)


def _install_build_tools(session: nox.Session) -> None:
    session.install(MESON, NINJA)


def _c_tests_option(session: nox.Session, value: bool) -> str:
    options = (ROOT / "meson.options").read_text(encoding="utf-8")
    if not re.search(rf"""option\(\s*['"]{C_TESTS_OPTION}['"]""", options):
        session.error(f"meson.options declares no option {C_TESTS_OPTION!r}; noxfile.py and meson.options disagree")
    return f"-D{C_TESTS_OPTION}={'true' if value else 'false'}"


def _install_ringio(session: nox.Session, *extra: str) -> None:
    """pip install . (non-editable, so tests see what users get), with -Werror."""
    session.install(".", *PIP_INSTALL_WERROR, *extra)


def _require_clang(session: nox.Session) -> dict:
    if shutil.which("clang") is None:
        session.error("clang not found: run `bash ci/bootstrap.sh` (installs clang, llvm, libclang-rt-14-dev)")
    return {"CC": "clang"}


# --------------------------------------------------------------------------- tests


# Seconds of mutation per libFuzzer target in the `tests` session (CI: every target, one
# after the other, so 5 targets take 5 minutes); `nox -s fuzz` is the place for long campaigns.
CI_FUZZ_SECONDS = 60


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """The whole suite: C build and C tests with -Werror, the C tests again under ASan+UBSan,
    the fuzz targets over their corpora plus a short fuzz run each, pip install . and pytest (then pytest again
    against an ASan+UBSan build of the extension), ruff, doc links."""
    _install_build_tools(session)

    builddir = BUILD / "ci"
    # -Dfuzz=true: with the default compiler this builds only the standalone replay driver,
    # and `meson test` replays every fuzz corpus and regression through it.
    _meson_setup(session, builddir, "-Dpython=false", _c_tests_option(session, True), "-Dwerror=true",
                 "-Dfuzz=true")
    session.run("meson", "compile", "-C", str(builddir.relative_to(ROOT)))
    # A C test exiting 77 is reported as skipped by meson (io_uring unavailable here).
    session.run("meson", "test", "-C", str(builddir.relative_to(ROOT)), "--print-errorlogs")

    _run_sanitized_c_tests(session)
    targets = _build_fuzz_targets(session)
    _run_fuzz_regress(session, targets, [])
    _run_fuzz_campaign(session, targets, CI_FUZZ_SECONDS, [])

    session.install(PYTEST)
    _install_ringio(session)
    _run_conformance(session, *session.posargs)
    _run_sanitized_pytest(session)

    _run_lint(session)
    _check_docs(session)


def _run_conformance(session: nox.Session, *args: str) -> None:
    """The pytest suite on io_uring, then with every plain Ring() on the simulated kernel
    (RINGIO_BACKEND=sim; tests marked `kernel` are skipped there, with the reason), then on the sim
    again with io_uring_setup blocked by seccomp (ci/no_io_uring.py)."""
    session.run("pytest", "tests/python", "-q", *args, env={"RINGIO_BACKEND": "uring"})
    session.run("pytest", "tests/python", "-q", *args, env={"RINGIO_BACKEND": "sim"})
    # And once where io_uring is blocked (a seccomp filter, as in containers): the import, the
    # fallback and the whole sim run must not need the kernel's io_uring at all.
    session.run(
        "python", str(ROOT / "ci" / "no_io_uring.py"), "python", "-m", "pytest", "tests/python", "-q",
        "-p", "no:cacheprovider", *args, env={"RINGIO_BACKEND": "sim"},
    )


@nox.session(reuse_venv=True)
def conformance(session: nox.Session) -> None:
    """pip install . and the pytest suite on both backends (uring, then sim)."""
    _install_build_tools(session)
    session.install(PYTEST)
    _install_ringio(session)
    _run_conformance(session, *session.posargs)


def _run_sanitized_pytest(session: nox.Session) -> None:
    """The pytest suite against the extension built by clang with ASan+UBSan (tests).

    The interpreter itself is not instrumented, so the ASan runtime is preloaded, PYTHONMALLOC=malloc
    routes every Python allocation through it, and leak detection is off (CPython keeps memory alive
    at exit; the pure-C tests and harnesses check leaks); use-after-free, overflows and undefined
    behaviour in the extension and the core are what this run catches.
    """
    env = _require_clang(session)
    session.install("meson-python>=0.15", MESON, NINJA, PYTEST)
    session.run(
        "python", "-m", "pip", "install", "-q", "--no-build-isolation", "--force-reinstall", "--no-deps", ".",
        "-Csetup-args=-Db_sanitize=address,undefined", "-Csetup-args=-Db_lundef=false",
        "-Csetup-args=-Db_lto=false",  # sanitizer reports map to the code as written
        f"-Cbuild-dir={BUILD / 'asan-python'}", env=env,
    )
    machine = platform.machine()
    runtime = subprocess.run(
        ["clang", f"-print-file-name=libclang_rt.asan-{machine}.so"], capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(runtime).is_file():
        session.error(f"clang's ASan runtime not found ({runtime}): run `bash ci/bootstrap.sh` (libclang-rt-14-dev)")
    for backend in ("uring", "sim"):
        session.run(
            "python", "-m", "pytest", "tests/python", "-q", "-p", "no:cacheprovider",
            env={"LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0",
                 # Every Python object from malloc, so ASan sees use-after-free and overflows
                 # of objects and buffers, not only of the extension's own allocations.
                 "PYTHONMALLOC": "malloc",
                 "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1", "RINGIO_BACKEND": backend},
        )


@nox.session(reuse_venv=True)
def asan(session: nox.Session) -> None:
    """C tests and the pytest suite, built by clang with AddressSanitizer + UndefinedBehaviorSanitizer."""
    _run_sanitized_c_tests(session, *session.posargs)
    _run_sanitized_pytest(session)


def _run_sanitized_c_tests(session: nox.Session, *meson_test_args: str) -> None:
    """Build the C tests with clang + ASan/UBSan in build/asan and run them (asan, tests)."""
    env = _require_clang(session)
    _install_build_tools(session)
    builddir = BUILD / "asan"
    # -Dfuzz=true: the replay of every fuzz corpus and regression is part of the C tests,
    # under ASan+UBSan with leak checking on (SANITIZER_ENV, and fuzz/meson.build's env).
    _meson_setup(
        session, builddir,
        "-Dpython=false", _c_tests_option(session, True), "-Dfuzz=true",
        "-Db_sanitize=address,undefined", "-Db_lundef=false",
        env=env,
    )
    session.run("meson", "compile", "-C", str(builddir.relative_to(ROOT)), env=env)
    session.run(
        "meson", "test", "-C", str(builddir.relative_to(ROOT)), "--print-errorlogs", *meson_test_args,
        env={**env, **SANITIZER_ENV},
    )


# --------------------------------------------------------------------------- fuzzing


def _is_libfuzzer_binary(path: Path) -> bool:
    """An executable linked with -fsanitize=fuzzer (not the standalone replay driver)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return data.startswith(b"\x7fELF") and b"LLVMFuzzerTestOneInput" in data and b"libFuzzer" in data


def _build_fuzz_targets(session: nox.Session) -> list[Path]:
    if not (ROOT / "fuzz" / "meson.build").exists():
        session.error("no fuzz targets yet: fuzz/meson.build does not exist, so -Dfuzz=true builds nothing")
    env = _require_clang(session)
    _install_build_tools(session)
    builddir = BUILD / "fuzz"
    _meson_setup(
        session, builddir,
        "-Dfuzz=true", "-Dpython=false", _c_tests_option(session, False),
        "-Db_sanitize=address,undefined", "-Db_lundef=false",
        env=env,
    )
    session.run("meson", "compile", "-C", str(builddir.relative_to(ROOT)), env=env)

    outdir = builddir / "fuzz"
    targets: list[Path] = []
    others: list[str] = []
    if outdir.is_dir():
        for p in sorted(outdir.iterdir()):
            if not p.is_file() or not (p.stat().st_mode & stat.S_IXUSR) or p.suffix in {".so", ".a"}:
                continue
            if _is_libfuzzer_binary(p):
                targets.append(p)
            else:
                others.append(p.name)
    if others:
        session.log(f"not libFuzzer targets (skipped): {', '.join(others)}")
    if not targets:
        session.error(f"no fuzz targets: no libFuzzer executable in {outdir.relative_to(ROOT)}/")
    session.log(f"fuzz targets: {', '.join(t.name for t in targets)}")
    return targets


def _dict_for(target: str) -> list[str]:
    for cand in (
        ROOT / "fuzz" / f"{target}.dict",
        ROOT / "fuzz" / "dict" / f"{target}.dict",
        ROOT / "fuzz" / "dicts" / f"{target}.dict",
        ROOT / "fuzz" / "corpus" / f"{target}.dict",
    ):
        if cand.is_file():
            return [f"-dict={cand}"]
    return []


def _split_fuzz_posargs(session: nox.Session) -> tuple[int, set[str], list[str], bool]:
    """posargs: [SECONDS] [TARGET ...] [--merge] [-libfuzzer_flag=value ...]"""
    seconds = 60
    names: set[str] = set()
    flags: list[str] = []
    merge = False
    for i, arg in enumerate(session.posargs):
        if arg == "--merge":
            merge = True
        elif arg.startswith("-"):
            flags.append(arg)
        elif i == 0 and re.fullmatch(r"\d+s?", arg):
            seconds = int(arg.rstrip("s"))
        else:
            names.add(arg)
    return seconds, names, flags, merge


def _select(session: nox.Session, targets: list[Path], names: set[str]) -> list[Path]:
    if not names:
        return targets
    unknown = names - {t.name for t in targets}
    if unknown:
        session.error(f"unknown fuzz target(s): {', '.join(sorted(unknown))}")
    return [t for t in targets if t.name in names]


def _run_targets(session: nox.Session, runs: list[tuple[str, list[str]]]) -> None:
    """Run every target even when one fails; fail at the end, naming the failures."""
    failed = []
    for name, cmd in runs:
        try:
            session.run(*cmd, env=SANITIZER_ENV, external=True)
        except CommandFailed:
            failed.append(name)
    if failed:
        session.error(
            f"fuzz target(s) failed: {', '.join(failed)} (reproducers in build/fuzz/artifacts/<target>/)"
        )


@nox.session(reuse_venv=True)
def fuzz(session: nox.Session) -> None:
    """Fuzz every libFuzzer target for SECONDS each (default 60): nox -s fuzz -- [SECONDS] [TARGET...] [--merge]."""
    seconds, names, flags, merge = _split_fuzz_posargs(session)
    targets = _select(session, _build_fuzz_targets(session), names)
    _run_fuzz_campaign(session, targets, seconds, flags)
    if merge:
        for t in targets:
            seeds = ROOT / "fuzz" / "corpus" / t.name
            seeds.mkdir(parents=True, exist_ok=True)
            session.run(str(t), "-merge=1", str(seeds), str(BUILD / "fuzz" / "corpus" / t.name),
                        env=SANITIZER_ENV, external=True)
    else:
        session.log("new inputs are in build/fuzz/corpus/<target>/; add --merge to fold them into fuzz/corpus/")


def _run_fuzz_campaign(session: nox.Session, targets: list[Path], seconds: int, flags: list[str]) -> None:
    """Mutate each target for `seconds` from its seeds; new inputs go to build/fuzz/corpus/ (fuzz, tests)."""
    runs = []
    for t in targets:
        seeds = ROOT / "fuzz" / "corpus" / t.name
        work = BUILD / "fuzz" / "corpus" / t.name  # new inputs land here, not in the source tree
        artifacts = BUILD / "fuzz" / "artifacts" / t.name
        work.mkdir(parents=True, exist_ok=True)
        artifacts.mkdir(parents=True, exist_ok=True)
        if not seeds.is_dir():
            session.warn(f"{t.name}: no seed corpus at {seeds.relative_to(ROOT)}/")
        runs.append((t.name, [
            str(t), f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1", *_dict_for(t.name), *flags,
            str(work), *([str(seeds)] if seeds.is_dir() else []),
        ]))
    _run_targets(session, runs)


@nox.session(name="fuzz-regress", reuse_venv=True)
def fuzz_regress(session: nox.Session) -> None:
    """Run every libFuzzer target over its seed corpus fuzz/corpus/<target>/ once (-runs=0)."""
    _, names, flags, _ = _split_fuzz_posargs(session)
    targets = _select(session, _build_fuzz_targets(session), names)
    _run_fuzz_regress(session, targets, flags)


def _run_fuzz_regress(session: nox.Session, targets: list[Path], flags: list[str]) -> None:
    """Run each target once over fuzz/corpus/<target>/ and fuzz/regressions/<target>/ (fuzz-regress, tests)."""
    missing = [t.name for t in targets if not (ROOT / "fuzz" / "corpus" / t.name).is_dir()]
    if missing:
        session.error(f"no seed corpus for: {', '.join(missing)} (expected fuzz/corpus/<target>/)")
    runs = []
    for t in targets:
        artifacts = BUILD / "fuzz" / "artifacts" / t.name
        artifacts.mkdir(parents=True, exist_ok=True)
        regressions = ROOT / "fuzz" / "regressions" / t.name  # saved crash reproducers, if any
        runs.append((t.name, [
            str(t), "-runs=0", f"-artifact_prefix={artifacts}/", *_dict_for(t.name), *flags,
            str(ROOT / "fuzz" / "corpus" / t.name), *([str(regressions)] if regressions.is_dir() else []),
        ]))
    _run_targets(session, runs)


@nox.session(reuse_venv=True)
def coverage(session: nox.Session) -> None:
    """Line coverage of core/ and backends/sim/ reached by the fuzz corpora (llvm-cov).

    Builds the standalone replay driver (every harness, no libFuzzer) with clang source-based
    coverage in build/coverage, replays fuzz/corpus/<target>/, fuzz/regressions/<target>/ and
    the working corpora of `nox -s fuzz` (build/fuzz/corpus/<target>/), merges the profiles and
    prints `llvm-cov report` for core/ and backends/sim/; text and HTML go to build/coverage/.
    """
    env = _require_clang(session)
    _install_build_tools(session)
    for tool in ("llvm-profdata", "llvm-cov"):
        if shutil.which(tool) is None:
            session.error(f"{tool} not found: run `bash ci/bootstrap.sh` (installs llvm)")
    builddir = BUILD / "coverage"
    flags = "-fprofile-instr-generate -fcoverage-mapping"
    _meson_setup(
        session, builddir,
        "-Dfuzz=true", "-Dpython=false", _c_tests_option(session, False), "-Db_lundef=false",
        f"-Dc_args={flags}", f"-Dc_link_args={flags}",
        env=env,
    )
    session.run("meson", "compile", "-C", str(builddir.relative_to(ROOT)), "fuzz/replay", env=env)
    replay = builddir / "fuzz" / "replay"
    profdir = builddir / "profiles"
    shutil.rmtree(profdir, ignore_errors=True)
    profdir.mkdir(parents=True)
    targets = sorted(p.name for p in (ROOT / "fuzz" / "corpus").iterdir() if p.is_dir())
    for name in targets:
        paths = [d for d in (ROOT / "fuzz" / "corpus" / name, ROOT / "fuzz" / "regressions" / name,
                             BUILD / "fuzz" / "corpus" / name) if d.is_dir()]
        session.run(str(replay), "-t", name, *map(str, paths), external=True, silent=True,
                    env={"LLVM_PROFILE_FILE": str(profdir / f"{name}-%p.profraw")})
    merged = builddir / "fuzz.profdata"
    session.run("llvm-profdata", "merge", "-sparse", "-o", str(merged),
                *map(str, sorted(profdir.glob("*.profraw"))), external=True)
    # Only core/ and backends/sim/: the harnesses, the fake backend and the uring backend are
    # left out (the coverage mapping names files relative to the build directory).
    common = [str(replay), f"-instr-profile={merged}",
              r"-ignore-filename-regex=(^|/)(fuzz|tests|backends/uring)/|/include/"]
    report = session.run("llvm-cov", "report", *common, external=True, silent=True) or ""
    (builddir / "report.txt").write_text(report + _coverage_summary(report), encoding="utf-8")
    print(report + _coverage_summary(report))
    session.run("llvm-cov", "show", *common, "-format=html", f"-output-dir={builddir / 'html'}",
                external=True, silent=True)
    session.log(f"coverage: {(builddir / 'report.txt').relative_to(ROOT)}, "
                f"{(builddir / 'html' / 'index.html').relative_to(ROOT)}")


def _coverage_summary(report: str) -> str:
    """Line coverage per directory (core/, backends/sim/) from an `llvm-cov report` table."""
    totals: dict[str, list[int]] = {"core/": [0, 0], "backends/sim/": [0, 0]}
    for line in report.splitlines():
        cols = line.split()
        if len(cols) < 13:
            continue
        name = re.sub(r"^(\.\./)+", "", cols[0])
        for prefix, t in totals.items():
            if name.startswith(prefix) and cols[7].isdigit() and cols[8].isdigit():
                t[0] += int(cols[7])
                t[1] += int(cols[8])
    out = []
    for prefix, (lines, missed) in totals.items():
        pct = 100.0 * (lines - missed) / lines if lines else 0.0
        out.append(f"line coverage {prefix:<14} {lines - missed}/{lines} = {pct:.1f}%")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- package sessions


# The peers `python -m ringio bench` measures ringio against, installed into the bench session
# only, as wheels (nothing fetched is compiled here).  A peer that does not install is reported
# by the bench as "unavailable: <reason>".  wrk (the HTTP load generator) is a Debian package:
# ci/bootstrap.sh installs it.
BENCH_PEERS = [
    "uvloop",
    "liburing",  # YoSTEALTH's Python binding (PyPI name `liburing`)
    # The release whose submit_*/wait API ringio follows (the seed); later release candidates
    # replaced it with prepare_*/construct_*, which the bench cannot drive.
    "uring-api==0.1.0rc0",
    "caio>=0.12",  # the file reads' peer (the files scenario); 0.12 brought its io_uring backend
    "matplotlib",  # --png
]
# Peers published only as source: pure Python, so nothing is compiled. python-libaio drives
# kernel AIO through ctypes and needs Debian's libaio1 (ci/bootstrap.sh installs it).
BENCH_PEERS_SDIST = ["libaio"]

# Where `nox -s bench` (without arguments) writes its report and chart; the README's table and
# docs/bench.png are copied from a run's output by hand, with the machine it ran on.
BENCH_OUT = BUILD / "bench"


@nox.session(reuse_venv=True)
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers: nox -s bench -- [--quick] [--json [PATH]] [--png PATH] [--scenario NAME]."""
    _install_ringio(session)
    wheels = [("--only-binary=:all:", p) for p in BENCH_PEERS]
    for *how, peer in wheels + [(p,) for p in BENCH_PEERS_SDIST]:
        try:
            session.install(*how, peer)
        except CommandFailed:
            session.warn(f"bench peer {peer!r} did not install: the bench reports it as unavailable")
    if shutil.which("wrk") is None:
        session.warn("wrk is not installed (bash ci/bootstrap.sh installs it): the http rows are unavailable")
    args = list(session.posargs) or ["--json", str(BENCH_OUT / "bench.json"), "--png", str(BENCH_OUT / "bench.png")]
    session.run("python", "-m", "ringio", "bench", *args)


@nox.session(reuse_venv=True)
def demo(session: nox.Session) -> None:
    """The main demo: python -m ringio probe, then python -m ringio serve and a few requests to it."""
    _install_ringio(session)
    session.run("python", "-m", "ringio", "probe", *session.posargs)
    _serve_demo(session)


def _serve_demo(session: nox.Session) -> None:
    """Start `python -m ringio serve --port 0`, ask it what curl would, stop it with SIGTERM."""
    import signal
    import time
    import urllib.request

    python = str(Path(session.virtualenv.bin) / "python")
    session.log("python -m ringio serve --port 0   (in the background)")
    server = subprocess.Popen([python, "-m", "ringio", "serve", "--port", "0"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()  # "ringio serve: listening on http://127.0.0.1:PORT ..."
        m = re.search(r"http://[\d.]+:\d+", line)
        if m is None:
            server.wait(10)
            session.error(f"ringio serve did not start: {line}{server.stderr.read()}")
        url = m.group(0)
        print(line.rstrip(), flush=True)
        for method, path in (("POST", "/15"), ("POST", "/17"), ("POST", "/90"), ("GET", "/"),
                             ("GET", "/health")):
            req = urllib.request.Request(url + path, method=method)
            with urllib.request.urlopen(req, timeout=10) as r:
                body = r.read().decode().rstrip()
            flag = "-X POST " if method == "POST" else ""
            print(f"$ curl {flag}{url}{path}\n{body}", flush=True)
        server.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = server.wait(10)
        print(server.stderr.read().rstrip(), flush=True)
        print(f"(SIGTERM: exit status {rc} after {time.monotonic() - t0:.2f} s)", flush=True)
        if rc != 0:
            session.error(f"ringio serve exited {rc}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff check python tests noxfile.py."""
    _run_lint(session, *session.posargs)


def _run_lint(session: nox.Session, *args: str) -> None:
    """ruff with the repository's configuration (lint, tests)."""
    session.install("ruff==0.17.6")  # pinned: a new ruff release must not change what CI checks
    session.run("ruff", "check", "python", "tests", "fuzz", "noxfile.py", *args)


# --------------------------------------------------------------------------- docs

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+).+?\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: keep its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _markdown_scan(path: Path) -> tuple[list[tuple[int, str]], set[str]]:
    """(line number, link target) for every link outside code, and the file's heading anchors."""
    links: list[tuple[int, str]] = []
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fence = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if m:
            marker = m.group(2)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        h = _HEADING.match(line)
        if h:
            base = _slug(h.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            anchors.add(base if n == 0 else f"{base}-{n}")
        code_free = _INLINE_CODE.sub("", line)
        for rx in (_INLINE_LINK, _HTML_LINK):
            links.extend((lineno, m.group(1)) for m in rx.finditer(code_free))
        r = _REF_DEF.match(code_free)
        if r:
            links.append((lineno, r.group(1)))
        for a in re.finditer(r"""<a\s[^>]*?(?:name|id)\s*=\s*["']([^"']+)["']""", code_free):
            anchors.add(a.group(1))
    return links, anchors


def check_doc_links(files: list[Path]) -> list[str]:
    """Problems with the relative links of the given Markdown files (empty when all resolve)."""
    problems = []
    anchor_cache: dict[Path, set[str]] = {}

    def anchors_of(p: Path) -> set[str]:
        if p not in anchor_cache:
            anchor_cache[p] = _markdown_scan(p)[1]
        return anchor_cache[p]

    for doc in files:
        links, _ = _markdown_scan(doc)
        for lineno, target in links:
            if not target or _SCHEME.match(target) or target.startswith("//"):
                continue  # absolute URL (http:, mailto:, ...): not checked, no network here
            where = f"{doc.relative_to(ROOT)}:{lineno}: {target}"
            path_part, _, fragment = target.partition("#")
            path_part = path_part.split("?", 1)[0]
            if path_part.startswith("/"):
                dest = ROOT / path_part.lstrip("/")  # GitHub resolves /x against the repo root
            elif path_part:
                dest = (doc.parent / path_part)
            else:
                dest = doc
            try:
                dest = dest.resolve()
                dest.relative_to(ROOT)
            except ValueError:
                problems.append(f"{where}: points outside the repository")
                continue
            if not dest.exists():
                problems.append(f"{where}: {dest.relative_to(ROOT)} does not exist")
                continue
            is_markdown = dest.is_file() and dest.suffix.lower() in {".md", ".markdown"}
            if fragment and is_markdown and fragment.lower() not in {a.lower() for a in anchors_of(dest)}:
                problems.append(f"{where}: no heading with anchor #{fragment} in {dest.relative_to(ROOT)}")
    return problems


@nox.session(python=False)
def docs(session: nox.Session) -> None:
    """README.md and docs/architecture.md exist and every relative link in them resolves."""
    _check_docs(session)


def _check_docs(session: nox.Session) -> None:
    """README.md and docs/architecture.md exist and their relative links resolve (docs, tests)."""
    required = [ROOT / "README.md", ROOT / "docs" / "architecture.md"]
    missing = [str(p.relative_to(ROOT)) for p in required if not p.is_file()]
    if missing:
        session.error(f"missing: {', '.join(missing)}")
    problems = check_doc_links(required)
    for p in problems:
        session.log(p)
    if problems:
        session.error(f"{len(problems)} broken relative link(s)")
    session.log(f"docs: {', '.join(str(p.relative_to(ROOT)) for p in required)}: all relative links resolve")


if __name__ == "__main__":  # allow `python noxfile.py FILE.md ...` as a quick standalone link check
    bad = check_doc_links([Path(a).resolve() for a in sys.argv[1:]])
    print("\n".join(bad) or "ok")
    sys.exit(1 if bad else 0)
