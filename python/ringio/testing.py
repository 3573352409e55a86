"""pytest plugin for code built on ringio: simulated rings with fixed seeds.

Installed with ringio and registered as the ``ringio`` pytest plugin (entry
point ``pytest11``), so it is active in every pytest run once ringio is
installed.  It adds:

Fixtures
    ``ringio_seed``: the seed of this test (an int); ``sim_ring``: a
    ``ringio.Ring(backend="sim", seed=ringio_seed, faults=...)`` closed after the
    test; ``sim_ring_factory``: ``make(**kwargs)`` for more of them.

Options
    ``--ringio-seed=N`` fixes the base seed (default: ``RINGIO_SIM_SEED`` or a
    random one, shown in the header); ``--ringio-seeds=N`` runs every test that
    uses ``ringio_seed``/``sim_ring`` once per seed (base, base+1, ...);
    ``--ringio-faults=SPEC`` gives the fault profile (a
    ``ringio.sim.FaultProfile`` string, e.g. ``chaos``).

Each test's seed is derived from the base seed and the test's node id, so a
test fails the same way whatever else runs.  While a test runs, plain
``ringio.Ring()`` calls that end up on the simulated backend (for example under
``RINGIO_BACKEND=sim``) use that seed and profile too.  A failing test's
report carries a section with the seed, the profile and the command that
repeats it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ringio

from .sim import FaultProfile

_STATE: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ringio", "ringio simulated kernel")
    group.addoption("--ringio-seed", action="store", default=None, help="base seed of simulated rings (int)")
    group.addoption(
        "--ringio-seeds", action="store", type=int, default=1, help="run each simulated-ring test over N seeds"
    )
    group.addoption(
        "--ringio-faults", action="store", default=None, help="fault profile of simulated rings, e.g. 'chaos'"
    )


def _parse_seed(text: str) -> int:
    try:
        return int(text, 0) & (2**64 - 1)
    except ValueError:
        raise pytest.UsageError(f"--ringio-seed: not an integer: {text!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ringio_sim: the test uses simulated rings (set by the ringio plugin)")
    text = config.getoption("--ringio-seed") or os.environ.get("RINGIO_SIM_SEED")
    _STATE["base"] = _parse_seed(text) if text else secrets.randbits(64)
    spec = config.getoption("--ringio-faults") or os.environ.get("RINGIO_SIM_FAULTS")
    try:
        _STATE["faults"] = FaultProfile.parse(spec) if spec else None
    except ValueError as e:
        raise pytest.UsageError(f"--ringio-faults: {e}") from None
    if config.getoption("--ringio-seeds") < 1:
        raise pytest.UsageError("--ringio-seeds must be >= 1")


def pytest_report_header(config: pytest.Config) -> str:
    faults = _STATE.get("faults")
    return f"ringio: sim base seed {_STATE['base']:#x}, faults {faults or 'faithful'} (--ringio-seed to repeat)"


def derive_seed(base: int, nodeid: str, index: int = 0) -> int:
    """The seed of one test: stable for a base seed, a node id and a repetition index."""
    h = hashlib.blake2b(f"{base}:{nodeid}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    n = metafunc.config.getoption("--ringio-seeds")
    if "ringio_seed" in metafunc.fixturenames and n > 1:
        metafunc.parametrize("ringio_seed", range(n), indirect=True, ids=[f"seed{i}" for i in range(n)])


@pytest.fixture
def ringio_seed(request: pytest.FixtureRequest) -> int:
    """This test's simulation seed (derived from --ringio-seed and the node id)."""
    index = getattr(request, "param", 0)
    seed = derive_seed(_STATE["base"], request.node.nodeid.split("[seed")[0], index)
    request.node._ringio_seed = seed
    return seed


@pytest.fixture
def sim_ring_factory(request: pytest.FixtureRequest, ringio_seed: int) -> Iterator[Callable[..., ringio.Ring]]:
    """make(**kwargs) -> a simulated Ring with this test's seed and profile, closed after the test."""
    made: list[ringio.Ring] = []

    def make(**kwargs: Any) -> ringio.Ring:
        kwargs.setdefault("seed", ringio_seed)
        kwargs.setdefault("faults", _STATE.get("faults"))
        ring = ringio.Ring(backend="sim", **kwargs)
        made.append(ring)
        return ring

    request.node._ringio_rings = made
    yield make
    for ring in made:
        if ring.running:
            ring.stop_serving()
        ring.close()


@pytest.fixture
def sim_ring(sim_ring_factory: Callable[..., ringio.Ring]) -> ringio.Ring:
    """A ringio.Ring(backend="sim") with this test's seed and fault profile."""
    return sim_ring_factory()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Plain Ring() calls that land on the sim during this test take its seed too.
    seed = derive_seed(_STATE["base"], item.nodeid.split("[seed")[0])
    item._ringio_env_seed = seed
    _STATE["saved_env"] = (os.environ.get("RINGIO_SIM_SEED"), os.environ.get("RINGIO_SIM_FAULTS"))
    os.environ["RINGIO_SIM_SEED"] = str(seed)
    if _STATE.get("faults") is not None:
        os.environ["RINGIO_SIM_FAULTS"] = str(_STATE["faults"])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    saved = _STATE.pop("saved_env", None)
    if saved is None:
        return
    for key, value in zip(("RINGIO_SIM_SEED", "RINGIO_SIM_FAULTS"), saved, strict=True):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _uses_sim(item: pytest.Item) -> bool:
    return hasattr(item, "_ringio_seed") or os.environ.get("RINGIO_BACKEND") == "sim"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not _uses_sim(item):
        return
    seed = getattr(item, "_ringio_seed", None) or getattr(item, "_ringio_env_seed", None)
    faults = _STATE.get("faults")
    cmd = f"pytest '{item.nodeid}' --ringio-seed={_STATE['base']:#x}"
    if faults is not None:
        cmd += f" --ringio-faults='{faults}'"
    if os.environ.get("RINGIO_BACKEND") == "sim":
        cmd = "RINGIO_BACKEND=sim " + cmd
    lines = [f"seed {seed:#x} (base {_STATE['base']:#x}), faults {faults or 'faithful'}", f"reproduce: {cmd}"]
    report.sections.append(("ringio sim", "\n".join(lines)))
