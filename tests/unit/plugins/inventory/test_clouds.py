"""The clouds inventory plugin as users run it: ansible-inventory on a configuration file.

Regions given by clouds.yaml need no cloud; regions from Keystone's catalog are tested against
the local cloud (tests/integration/targets/fleet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent

CLOUDS = {
    'clouds': {
        'prod': {
            'auth': {
                'auth_url': 'http://127.0.0.1:1/v3',
                'username': 'u',
                'password': 'sekret-pw',
                'project_name': 'p',
            },
            'regions': ['eu-1', 'eu-2'],
        },
        'lab': {'auth': {'auth_url': 'http://127.0.0.1:1/v3', 'token': 'sekret-token'}, 'region_name': 'lab-1'},
        'bare': {'auth': {'auth_url': 'http://127.0.0.1:1/v3'}},
    }
}


def _inventory(tmp_path: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    collections = tmp_path / 'collections'
    link = collections / 'ansible_collections' / 'imagegov' / 'openstack'
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO)
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text(yaml.safe_dump(CLOUDS))
    source = tmp_path / 'fleet.clouds.yml'
    source.write_text(yaml.safe_dump({'plugin': 'imagegov.openstack.clouds', **config}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'OS_'))}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_INVENTORY_ENABLED='imagegov.openstack.clouds',
        ANSIBLE_INVENTORY_UNPARSED_FAILED='true',
        OS_CLIENT_CONFIG_FILE=str(clouds),
        ANSIBLE_HOME=str(tmp_path / 'home'),
    )
    return subprocess.run(
        [str(BIN / 'ansible-inventory'), '-i', str(source), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def _plain(value):
    """ansible-inventory marks inventory strings as unsafe ({'__ansible_unsafe': ...}) on some versions."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _listing(tmp_path: Path, config: dict) -> dict:
    result = _inventory(tmp_path, config, '--list')
    assert result.returncode == 0, result.stderr
    return _plain(json.loads(result.stdout))


def _members(listing: dict, group: str) -> list[str]:
    return sorted(listing.get(group, {}).get('hosts', []))


def test_one_host_per_cloud_and_region_with_groups_and_labels(tmp_path: Path):
    listing = _listing(
        tmp_path,
        {
            'labels': {
                'prod': {'storage': 'ceph'},
                'prod/eu-2': {'stage': 'candidate'},
                '*/lab-1': {'storage': 'file'},
            },
            'keyed_groups': [{'key': "imagegov_labels.storage | default('none')", 'prefix': 'storage'}],
        },
    )
    assert _members(listing, 'imagegov_fleet') == ['bare', 'lab.lab-1', 'prod.eu-1', 'prod.eu-2']
    assert _members(listing, 'cloud_prod') == ['prod.eu-1', 'prod.eu-2']
    assert _members(listing, 'region_eu_2') == ['prod.eu-2']
    assert _members(listing, 'storage_ceph') == ['prod.eu-1', 'prod.eu-2']
    assert _members(listing, 'storage_file') == ['lab.lab-1']
    assert _members(listing, 'storage_none') == ['bare']
    hostvars = listing['_meta']['hostvars']
    assert hostvars['prod.eu-2']['cloud'] == 'prod' and hostvars['prod.eu-2']['region_name'] == 'eu-2'
    assert hostvars['prod.eu-2']['imagegov_labels'] == {'storage': 'ceph', 'stage': 'candidate'}
    assert hostvars['prod.eu-2']['imagegov_target'] == 'prod/eu-2'
    assert hostvars['bare']['region_name'] is None and hostvars['bare']['imagegov_target'] == 'bare'
    assert hostvars['lab.lab-1']['ansible_connection'] == 'local'
    # Nothing of a cloud's settings but its name and region becomes a variable.
    assert 'sekret' not in json.dumps(listing)


def test_clouds_and_regions_can_be_chosen(tmp_path: Path):
    listing = _listing(tmp_path, {'clouds': ['prod', 'lab'], 'only_regions': ['eu-1', 'lab-1']})
    assert _members(listing, 'imagegov_fleet') == ['lab.lab-1', 'prod.eu-1']


def _said(result: subprocess.CompletedProcess) -> str:
    """stderr as one line: older ansible-core wraps its warnings at 80 columns."""
    return ' '.join(result.stderr.split())


def test_an_unknown_cloud_is_an_error_naming_it(tmp_path: Path):
    result = _inventory(tmp_path, {'clouds': ['prod', 'prdo']}, '--list')
    assert result.returncode != 0
    assert 'clouds prdo are not in clouds.yaml (it has: bare, lab, prod)' in _said(result)
    assert 'fix option "clouds"' in _said(result)


def test_an_unreachable_keystone_keeps_the_cloud_in_its_own_group(tmp_path: Path):
    listing = _listing(tmp_path, {'clouds': ['lab'], 'regions': 'catalog'})
    assert _members(listing, 'imagegov_unreachable') == ['lab.lab-1']
    assert listing['_meta']['hostvars']['lab.lab-1']['imagegov_unreachable']


def test_strict_discovery_fails_the_inventory(tmp_path: Path):
    result = _inventory(tmp_path, {'clouds': ['lab'], 'regions': 'catalog', 'strict_discovery': True}, '--list')
    assert result.returncode != 0 and 'cannot read the service catalog of cloud lab' in _said(result)
    assert 'sekret' not in result.stderr


@pytest.mark.parametrize('name', ['fleet.yml', 'clouds.json'])
def test_other_files_are_not_taken(tmp_path: Path, name: str):
    (tmp_path / name).write_text('plugin: imagegov.openstack.clouds\n')
    from ansible_collections.imagegov.openstack.plugins.inventory.clouds import InventoryModule

    assert not InventoryModule().verify_file(str(tmp_path / name))


def test_two_targets_may_not_become_one_host(tmp_path: Path):
    result = _inventory(tmp_path, {'clouds': ['prod'], 'hostname_format': '{cloud}'}, '--list')
    assert result.returncode != 0
    assert 'targets prod/eu-1 and prod/eu-2 would both be host prod' in _said(result)


def test_the_clouds_yaml_read_is_the_one_the_modules_read(tmp_path: Path):
    listing = _listing(tmp_path, {'clouds': ['lab'], 'clouds_yaml_path': [str(tmp_path / 'clouds.yaml')]})
    assert listing['_meta']['hostvars']['lab.lab-1']['imagegov_clouds_yaml'] == str(tmp_path / 'clouds.yaml')
