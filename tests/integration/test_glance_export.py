"""The policy exported as Glance's own settings holds for the plain CLI too.

Glance is restarted with the export and, whatever happens, restarted without it again,
since the other tests share the cloud.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEVCLOUD = REPO / 'tests' / 'devcloud' / 'devcloud'


def _openstack(clouds: Path, cloud: str, *args: str) -> subprocess.CompletedProcess:
    cli = clouds.parent / 'venv' / 'bin' / 'openstack'
    return subprocess.run(
        [str(cli), '--os-cloud', cloud, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds)),
        check=False,
    )


@pytest.fixture()
def exported_settings(devcloud: Path, ansible_env: dict[str, str], tmp_path: Path):
    # The collection as Ansible sees it: the engine's import path needs no Ansible.
    if ansible_env['ANSIBLE_COLLECTIONS_PATH'] not in sys.path:
        sys.path.insert(0, ansible_env['ANSIBLE_COLLECTIONS_PATH'])
    from ansible_collections.imagegov.openstack.plugins.module_utils.policy import glance_settings, load_default_policy

    settings = glance_settings(load_default_policy())
    (tmp_path / 'policy.yaml').write_text(settings['policy_yaml'])
    (tmp_path / 'glance-api.conf').write_text(settings['glance_api_conf'])
    env = dict(os.environ, IMAGEGOV_DEVCLOUD_DIR=str(devcloud.parent))
    subprocess.run([str(DEVCLOUD), 'glance-settings', str(tmp_path)], env=env, check=True)
    try:
        yield settings
    finally:
        subprocess.run([str(DEVCLOUD), 'glance-settings', '--reset'], env=env, check=True)


@pytest.mark.restarts_cloud
def test_member_cli_is_held_to_the_exported_policy(exported_settings, devcloud: Path, tmp_path: Path) -> None:
    assert exported_settings['policy_rules'] == {'publicize_image': 'role:admin', 'communitize_image': 'role:admin'}
    data = tmp_path / 'disk.raw'
    data.write_bytes(b'\0' * 65536)
    common = ['image', 'create', '--container-format', 'bare', '--file', str(data)]
    public = _openstack(devcloud, 'devcloud-alpha', *common, '--disk-format', 'raw', '--public', 'cli-public')
    community = _openstack(devcloud, 'devcloud-alpha', *common, '--disk-format', 'raw', '--community', 'cli-community')
    vmdk = _openstack(devcloud, 'devcloud-alpha', *common, '--disk-format', 'vmdk', 'cli-vmdk')
    admin = _openstack(devcloud, 'devcloud-admin', *common, '--disk-format', 'raw', '--public', 'cli-admin-public')
    try:
        assert public.returncode != 0 and 'publicize_image' in public.stderr, public.stderr
        assert community.returncode != 0 and 'communitize_image' in community.stderr, community.stderr
        assert vmdk.returncode != 0 and 'vmdk' in vmdk.stderr, vmdk.stderr
        assert admin.returncode == 0, admin.stderr
    finally:
        if admin.returncode == 0:
            _openstack(devcloud, 'devcloud-admin', 'image', 'delete', 'cli-admin-public')
    listed = _openstack(devcloud, 'devcloud-admin', 'image', 'list', '-f', 'value', '-c', 'Name')
    assert not {'cli-public', 'cli-community', 'cli-vmdk'} & set(listed.stdout.split())
