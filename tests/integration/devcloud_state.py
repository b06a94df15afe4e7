"""Where the local cloud lives and which tier of it runs, for the integration tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVCLOUD = REPO / 'tests' / 'devcloud' / 'devcloud'
STATE_DIR = Path(os.environ.get('IMAGEGOV_DEVCLOUD_DIR', REPO / '.devcloud'))

# The Nova tier (for which servers use an image) unless IMAGEGOV_TEST_NOVA=0.
WITH_NOVA = os.environ.get('IMAGEGOV_TEST_NOVA', '1') != '0'


def nova_running() -> bool:
    """The whole Nova tier answers, Cinder included (devcloud status --nova lists it)."""
    return (
        subprocess.run([str(DEVCLOUD), 'status', '--nova'], capture_output=True, text=True, check=False).returncode == 0
    )


# A second cloud (Keystone + Glance only) for cloud-to-cloud tests: its own state, every
# port moved by +100, clouds.yaml entries named devcloud2-*, and the first cloud's venv.
SECOND_DIR = Path(os.environ.get('IMAGEGOV_DEVCLOUD2_DIR', REPO / '.devcloud2'))
SECOND_PREFIX = 'devcloud2'
SECOND_ENV = {
    'IMAGEGOV_DEVCLOUD_DIR': str(SECOND_DIR),
    'DEVCLOUD_VENV': str(STATE_DIR / 'venv'),
    'DEVCLOUD_CLOUD_PREFIX': SECOND_PREFIX,
    'DEVCLOUD_NOVA': '0',
    'DEVCLOUD_KEYSTONE_PORT': '5100',
    'DEVCLOUD_GLANCE_PORT': '9392',
    'DEVCLOUD_PG_PORT': '5533',
    'DEVCLOUD_PLACEMENT_PORT': '8878',
    'DEVCLOUD_NOVA_PORT': '8874',
    'DEVCLOUD_NEUTRON_PORT': '9796',
    'DEVCLOUD_RABBIT_PORT': '5773',
    'DEVCLOUD_EPMD_PORT': '4470',
    'DEVCLOUD_RABBIT_DIST_PORT': '25773',
}


def second_cloud(command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a devcloud command (start, stop, status) for the second cloud."""
    env = dict(os.environ, **SECOND_ENV)
    return subprocess.run([str(DEVCLOUD), command], env=env, capture_output=True, text=True, check=check)


# More regions of the first cloud, for fleet tests: each its own Glance (devcloud region).
FLEET_REGIONS = ('RegionTwo', 'RegionThree')


def regions(command: str, *names: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `devcloud region COMMAND NAMES...` (start, stop, status) on the first cloud."""
    return subprocess.run(
        [str(DEVCLOUD), 'region', command, *names], capture_output=True, text=True, check=check, timeout=300
    )
