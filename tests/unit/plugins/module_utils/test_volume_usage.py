"""Volumes made from an image count wherever usage is judged, through the real UsageLookup:
the default policy's delete protection, protect_in_use and a protected delete, the
catalog's prune and its series rotation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from glance_double import GlanceDouble, Response
from test_catalog_reconciler import OWNER, SINGLES, Run, catalog
from test_catalog_series import named, series
from test_image_reconciler import Gate, reconciler

from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import MANAGED_BY_PROPERTY
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache
from ansible_collections.imagegov.openstack.plugins.module_utils._image import ImageRequestError
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import PlanAction
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import UsageLookup

DEFAULT_POLICY = Path(__file__).resolve().parents[4] / 'policies' / 'default.yml'


class Cloud:
    """Nova with no servers, Glance with no kernel/ramdisk users, and Cinder answering its
    image filter from ``volumes`` (image id -> volume bodies); admin account."""

    def __init__(self, volumes):
        self.volumes = volumes
        self.cinder_calls = []
        access = SimpleNamespace(username='admin', project_name='admin', project_id='p-admin', role_names=['admin'])
        self.session = SimpleNamespace(auth=SimpleNamespace(get_access=lambda session: access))
        self.image = SimpleNamespace(request=lambda path, method, **kwargs: Response(200, {'images': []}))
        self.compute = SimpleNamespace(get=lambda url, params=None: Response(200, {'servers': []}))
        self.block_storage = SimpleNamespace(get=self._volumes)

    def _volumes(self, url, params=None, headers=None):
        self.cinder_calls.append(params)
        image_id = json.loads(params['glance_metadata'])['image_id']
        return Response(200, {'volumes': self.volumes.get(image_id, [])})

    @staticmethod
    def has_service(name):
        return True


def volume(image_id, name='data', status='available'):
    return {
        'id': f'vol-{name}',
        'name': name,
        'status': status,
        'os-vol-tenant-attr:tenant_id': 'p-beta',
        'volume_image_metadata': {'image_id': image_id},
        'attachments': [],
    }


@pytest.fixture
def digests(tmp_path):
    return DigestCache(str(tmp_path / 'cache'))


@pytest.fixture
def files(tmp_path):
    # As test_catalog_reconciler's: the SINGLES catalog names a.raw and b.raw.
    paths = {}
    for label in 'abcd':
        path = tmp_path / f'{label}.raw'
        path.write_bytes(label.encode() * 8192)
        paths[label] = (path, hashlib.sha256(path.read_bytes()).hexdigest())
    return paths


@pytest.fixture
def builds(tmp_path):
    # As test_catalog_series's: three builds of the series.
    found = {}
    for version in ('1', '2', '3'):
        path = tmp_path / f'build-{version}.raw'
        path.write_bytes(version.encode() * 4096)
        found[version] = (path, hashlib.sha512(path.read_bytes()).hexdigest())
    return found


def test_the_default_policy_refuses_to_delete_an_image_a_detached_volume_uses(digests):
    glance = GlanceDouble()
    image = glance.add('img', b'a')
    lookup = UsageLookup(Cloud({image['id']: [volume(image['id'])]}))
    gate = Gate(DEFAULT_POLICY.read_text(), usage=lookup)
    with pytest.raises(PolicyRefusal) as refused:
        reconciler(glance, gate, digests).absent([image], lookup)
    assert 'no-delete-in-use' in str(refused.value) and 'data (vol-data)' in str(refused.value)
    assert glance.images[image['id']]['status'] == 'active'
    # Once the volume is gone the same delete goes through.
    unused = UsageLookup(Cloud({}))
    reconciler(glance, Gate(DEFAULT_POLICY.read_text(), usage=unused), digests).absent([image], unused)
    assert glance.images[image['id']]['status'] == 'deleted'


def test_protect_in_use_protects_for_a_volume_and_a_protected_delete_names_it(digests):
    glance = GlanceDouble()
    image = glance.add('img', b'a')
    lookup = UsageLookup(Cloud({image['id']: [volume(image['id'], status='in-use')]}))
    protected = reconciler(glance, Gate(), digests).protect_while_used(image, lookup).after
    assert protected['protected'] and protected['imagegov_protected_while_used'] == 'true'
    with pytest.raises(ImageRequestError, match=r'volume data \(vol-data, project p-beta, status in-use\)'):
        reconciler(glance, Gate(), digests).absent([protected], lookup)


def test_prune_keeps_a_managed_image_a_volume_uses(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    left = glance.add('left', b'x', **{MANAGED_BY_PROPERTY: 'gold'})
    used = glance.add('used', b'y', **{MANAGED_BY_PROPERTY: 'gold'})
    run = Run(glance, tmp_path)
    run.reconciler.usage = UsageLookup(Cloud({used['id']: [volume(used['id'])]}))
    wanted = catalog(tmp_path, files, SINGLES)
    plan = run.reconciler.plan(wanted, prune=True)
    by_name = {item.name: item for item in plan}
    assert by_name['left'].action is PlanAction.PRUNE
    assert by_name['used'].action is PlanAction.KEPT
    assert 'volume data (vol-data' in by_name['used'].reason
    run.reconciler.apply(wanted, plan)
    assert glance.images[left['id']]['status'] == 'deleted'
    assert glance.images[used['id']]['status'] == 'active'


def test_series_rotation_keeps_a_build_a_volume_uses(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    for versions in (['1'], ['2', '1'], ['3']):
        run = Run(glance, tmp_path)
        run.reconciler.apply(
            series(tmp_path, builds, versions), run.reconciler.plan(series(tmp_path, builds, versions), prune=True)
        )
    old = named(glance, 'Ubuntu 24.04 (1)')[0]
    run = Run(glance, tmp_path)
    cloud = Cloud({old['id']: [volume(old['id'], name='boot')]})
    run.reconciler.usage = UsageLookup(cloud)
    wanted = series(tmp_path, builds, ['3'], keep_last=2)
    done = run.reconciler.apply(wanted, run.reconciler.plan(wanted, prune=True))
    item = next(item for item in done if item.name == 'Ubuntu 24.04 (1)')
    assert item.action is PlanAction.KEPT and 'volume boot (vol-boot' in item.reason
    assert named(glance, 'Ubuntu 24.04 (1)')
    assert all(call['all_tenants'] == 1 for call in cloud.cinder_calls)
