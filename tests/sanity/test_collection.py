"""The collection as Ansible tooling sees it: sanity, build, and rendered module docs.

ansible-test needs the collection under ``ansible_collections/imagegov/openstack`` and
runs each sanity test in a virtualenv of its own, so the tools venv stays as pinned.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from collection_tree import copy_collection

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (REPO / 'plugins' / 'modules').glob('*.py'))


@pytest.fixture(scope='module')
def collection_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_collection(tmp_path_factory.mktemp('sanity'))


def _install_get_pip_shim() -> None:
    # ansible-test downloads a pip bootstrap script from a host this network cannot reach;
    # it looks in its cache first, so the project's own stand-in goes there.
    import ansible_test

    source = Path(ansible_test.__file__).parent / '_internal' / 'python_requirements.py'
    version = re.search(r"pip='([0-9.]+)'", source.read_text()).group(1)
    cache = Path.home() / '.ansible' / 'test' / 'cache'
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / 'tests' / 'sanity' / 'get_pip.py', cache / f'get_pip_{version.replace(".", "_")}.py')


def test_ansible_test_sanity(collection_copy: Path) -> None:
    _install_get_pip_shim()
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    result = subprocess.run(
        [str(BIN / 'ansible-test'), 'sanity', '--requirements', '--python', python, '--color', 'no'],
        cwd=collection_copy,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PATH=f'{BIN}:{os.environ["PATH"]}'),
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(('ERROR', 'FATAL'))]
    assert result.returncode == 0, '\n'.join(problems) or result.stdout[-5000:] + result.stderr[-5000:]


def test_galaxy_build(collection_copy: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(tmp_path), str(collection_copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.glob('*.tar.gz')] == ['imagegov-openstack-0.1.0.tar.gz']


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders(module: str, collection_copy: Path) -> None:
    env = dict(
        os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_copy.parents[2]), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false'
    )
    result = subprocess.run(
        [str(BIN / 'ansible-doc'), f'imagegov.openstack.{module}'], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert 'OPTIONS' in result.stdout and 'EXAMPLES' in result.stdout and 'RETURN' in result.stdout
