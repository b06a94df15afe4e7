"""Integration tests: real ansible-playbook runs against the local Keystone + Glance.

The cloud is started once per test run (a no-op when it already runs) and left as found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from devcloud_state import DEVCLOUD, REPO, STATE_DIR, WITH_NOVA, nova_running
from http_server import serve


def _collections_path(tmp_root: Path) -> str:
    link = tmp_root / 'ansible_collections' / 'imagegov' / 'openstack'
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO)
    return str(tmp_root)


@pytest.fixture(scope='session')
def devcloud() -> Path:
    status = subprocess.run([str(DEVCLOUD), 'status'], capture_output=True, text=True, check=False)
    if status.returncode != 0 or (WITH_NOVA and not nova_running()):
        tier = ['--nova'] if WITH_NOVA else []
        subprocess.run([str(DEVCLOUD), 'install', *tier], check=True)
        subprocess.run([str(DEVCLOUD), 'start', *tier], check=True)
    clouds = STATE_DIR / 'clouds.yaml'
    assert clouds.is_file(), f'{clouds} missing after devcloud start'
    return clouds


@pytest.fixture(scope='session')
def ansible_env(devcloud: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The policy each test means, whatever the developer's shell pins.
    env = {k: v for k, v in os.environ.items() if k not in ('IMAGEGOV_POLICY', 'IMAGEGOV_BASE_POLICY')}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f'{venv_bin}:{env.get("PATH", "")}',
        ANSIBLE_COLLECTIONS_PATH=_collections_path(tmp_path_factory.mktemp('collections')),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_ROLES_PATH=str(REPO / 'tests' / 'integration' / 'targets'),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        OS_CLIENT_CONFIG_FILE=str(devcloud),
        IMAGEGOV_DEVCLOUD_DIR=str(STATE_DIR),
        # The digest cache of this test run only: what a developer's runs remembered must
        # not make a test pass.
        IMAGEGOV_CACHE_DIR=str(tmp_path_factory.mktemp('digest-cache')),
    )
    return env


@pytest.fixture(scope='session')
def http_root(tmp_path_factory: pytest.TempPathFactory):
    """Directory served on loopback, and its base URL; each target works in a subdirectory."""
    root = tmp_path_factory.mktemp('served')
    server = serve(str(root))
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
