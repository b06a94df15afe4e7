"""The catalog role's Molecule scenario (roles/catalog/molecule/default) against the local cloud.

``molecule test`` runs from roles/catalog with the delegated (default) driver: prepare writes
image files and a catalog, converge applies it with the role, idempotence converges again
(nothing may change), check converges in check mode, verify reads the images back, and
cleanup / destroy delete them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from devcloud_state import REPO

ROLE = REPO / 'roles' / 'catalog'
MOLECULE = Path(sys.executable).parent / 'molecule'


@pytest.mark.skipif(not MOLECULE.is_file(), reason='molecule is not installed (pip install -r tests/requirements.txt)')
def test_catalog_role_scenario(ansible_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(ansible_env)
    env.update(
        IMAGEGOV_MOLECULE_PREFIX=f'mol-{uuid.uuid4().hex[:6]}',
        # Molecule's working files (inventory, ansible.cfg, catalog, reports) and
        # ansible-compat's cache stay out of the tree and out of ~/.ansible.
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / 'ephemeral'),
        ANSIBLE_HOME=str(tmp_path / 'ansible-home'),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'),
        NO_COLOR='1',
    )
    result = subprocess.run(
        [str(MOLECULE), 'test', '--scenario-name', 'default'],
        cwd=ROLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'molecule test failed (rc={result.returncode}):\n{output[-20000:]}'
    for step in ('converge', 'idempotence', 'check', 'verify'):
        assert re.search(rf'default > {step}: Executed: Successful', output), f'{step} did not pass:\n{output[-20000:]}'
