"""The Python examples of the README and docs/sim.md run as written (each block in a fresh
namespace).  The simulated kernel's examples need no io_uring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import ringio

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
SIM_DOC = README.parent / "docs" / "sim.md"
SIM_BLOCKS = re.findall(r"```python\n(.*?)```", SIM_DOC.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    if not ringio.is_available():
        pytest.skip(f"io_uring unavailable: {ringio.unavailable_reason()}")
    code = BLOCKS[index]
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})


def test_sim_doc_has_examples():
    assert len(SIM_BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(SIM_BLOCKS)))
def test_sim_doc_example_runs(index):
    code = SIM_BLOCKS[index]
    exec(compile(code, f"docs/sim.md[python block {index}]", "exec"), {"__name__": "__sim_doc__"})
