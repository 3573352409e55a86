"""``python -m ringio``: every subcommand answers --help, and a missing one is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ringio", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_top_level_help_lists_every_command(subprocess_env):
    p = _run("--help", env=subprocess_env)
    assert p.returncode == 0, p.stderr
    for cmd in ("probe", "serve", "bench"):
        assert cmd in p.stdout


@pytest.mark.parametrize("cmd, options", [
    ("probe", ["--json", "--require"]),
    ("serve", ["--host", "--port", "--backend", "--app", "--idle-timeout", "--max-header-bytes",
               "--max-body-bytes"]),
    ("bench", ["--quick", "--json", "--png", "--scenario", "--repeat"]),
])
def test_subcommand_help(subprocess_env, cmd, options):
    p = _run(cmd, "--help", env=subprocess_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: python -m ringio {cmd}")
    for opt in options:
        assert opt in p.stdout, opt


def test_no_command_is_an_error(subprocess_env):
    p = _run(env=subprocess_env)
    assert p.returncode == 2
    assert "required" in p.stderr


def test_serve_backend_choices(subprocess_env):
    p = _run("serve", "--backend", "nope", env=subprocess_env)
    assert p.returncode == 2
    assert "invalid choice" in p.stderr
