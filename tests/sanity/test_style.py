"""One Python style across plugins/, tests/ and benchmarks/ (ruff.toml): pycodestyle,
pyflakes, isort, pyupgrade, flake8-bugbear and flake8-simplify rules, and ruff's formatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / 'ruff'


@pytest.mark.parametrize(
    'command',
    [['check', '--no-cache', '--output-format', 'concise', '.'], ['format', '--no-cache', '--check', '--diff', '.']],
    ids=['lint', 'format'],
)
def test_ruff(command: list[str]) -> None:
    result = subprocess.run([str(RUFF), *command], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f'ruff {" ".join(command)} (fix: ruff check --fix . && ruff format .):\n'
        + (result.stdout + result.stderr)[-8000:]
    )
