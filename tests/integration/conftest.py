"""Integration tests: real ansible-playbook runs against the local Keystone + Glance.

The cloud is started once per test run (a no-op when it already runs) and left as found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from devcloud_state import (
    DEVCLOUD,
    FLEET_REGIONS,
    REPO,
    SECOND_DIR,
    STATE_DIR,
    WITH_NOVA,
    nova_running,
    regions,
    second_cloud,
)
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


@pytest.fixture(scope='session')
def second_devcloud(devcloud: Path, tmp_path_factory: pytest.TempPathFactory):
    """The second local cloud (Keystone + Glance, ports +100, entries devcloud2-*), started
    only when a test asks for it, stopped at the end if this run started it. Yields the
    extra environment and variables for a target: one clouds.yaml holding both clouds'
    entries, and the second cloud's Glance log and state directory."""
    started = second_cloud('status', check=False).returncode != 0
    if started:
        result = second_cloud('start', check=False)
        assert result.returncode == 0, f'second devcloud did not start:\n{result.stderr[-5000:]}'
    try:
        merged: dict = {'clouds': {}}
        for clouds in (devcloud, SECOND_DIR / 'clouds.yaml'):
            merged['clouds'].update(yaml.safe_load(clouds.read_text())['clouds'])
        path = tmp_path_factory.mktemp('two-clouds') / 'clouds.yaml'
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(merged))
        yield {
            'env': {'OS_CLIENT_CONFIG_FILE': str(path)},
            'vars': {
                'glance2_log': str(SECOND_DIR / 'state' / 'logs' / 'glance.log'),
                'devcloud_dir': str(STATE_DIR),
                'devcloud2_dir': str(SECOND_DIR),
            },
        }
    finally:
        if started:
            second_cloud('stop', check=False)


@pytest.fixture(scope='session')
def fleet_regions(devcloud: Path):
    """RegionTwo and RegionThree beside RegionOne: each its own Glance in the one Keystone's
    catalog, started only when a test asks for them, stopped at the end if this run started them."""
    started = regions('status', *FLEET_REGIONS, check=False).returncode != 0
    if started:
        result = regions('start', *FLEET_REGIONS, check=False)
        assert result.returncode == 0, f'regions did not start:\n{result.stderr[-5000:]}'
    try:
        yield ('RegionOne', *FLEET_REGIONS)
    finally:
        if started:
            regions('stop', *FLEET_REGIONS, check=False)
