"""The collection as Ansible tooling wants it: a copy under ansible_collections/imagegov/openstack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEFT_OUT = {'.git', '.venv', '.venv-matrix', '.devcloud', '.pytest_cache', '__pycache__', 'output', 'results'}


def collection_files() -> list[str]:
    """What git tracks (or would), else every file outside virtualenvs, state and caches."""
    listed = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO, capture_output=True, text=True, check=False
    )
    if listed.returncode == 0:
        return [f for f in listed.stdout.splitlines() if (REPO / f).is_file()]
    return [
        str(p.relative_to(REPO))
        for p in REPO.rglob('*')
        if p.is_file() and not LEFT_OUT & set(p.relative_to(REPO).parts)
    ]


def copy_collection(root: Path) -> Path:
    target = root / 'ansible_collections' / 'imagegov' / 'openstack'
    for name in collection_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    return target
