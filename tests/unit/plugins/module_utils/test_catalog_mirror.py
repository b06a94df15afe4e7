"""A catalog entry whose source is another cloud's image: planned from the Glance hashes at
both ends (create / replace / noop), applied through the image_transfer reconciler."""

from __future__ import annotations

import hashlib

import pytest
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import CatalogReconciler, summarize
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import PlanAction
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate
from ansible_collections.imagegov.openstack.plugins.module_utils._transfer import (
    SOURCE_CLOUD_PROPERTY,
    SOURCE_HASH_PROPERTY,
)
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import load_catalog_texts
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

OWNER = 'p-dest'
CALLER = {'user': 'bob', 'project': 'dest', 'project_id': OWNER, 'roles': ['member']}
NOTHING = 'version: 1\nrules: []\n'
QCOW2_ONLY = 'version: 1\nrules:\n  - id: qcow2-only\n    type: allowed_formats\n    params: {disk_formats: [qcow2]}\n'
MIRROR = """
version: 1
images:
  - name: gold
    source: {cloud: primary, image: gold-src}
    disk_format: raw
    properties: {os_distro: cirros}
"""


class Run:
    def __init__(self, dest, source, tmp_path, policy=NOTHING, text=MIRROR):
        self.connects = []
        self.policy = load_policy_texts([('policy.yml', policy)])
        self.catalog = load_catalog_texts([(str(tmp_path / 'catalog.yml'), text)])
        self.reconciler = CatalogReconciler(
            dest, CALLER, self.gate, lambda image: {}, 'mirror', 5, str, DigestCache(str(tmp_path / 'digests'))
        )
        self.reconciler.connect_source = self.connect
        self.source = source
        self.reconciler.inventory()

    def connect(self, cloud):
        self.connects.append(cloud)
        return self.source, cloud, 'RegionOne'

    def gate(self):
        return PolicyGate(self.policy, lambda: CALLER, lambda message: None)

    def plan(self):
        return self.reconciler.plan(self.catalog, prune=False)

    def apply(self):
        return self.reconciler.apply(self.catalog, self.plan())


@pytest.fixture
def clouds():
    source = GlanceDouble(owner='p-src')
    source.add('gold-src', b'gold bytes ' * 4096, disk_format='raw')
    return source, GlanceDouble(owner=OWNER)


def test_check_apply_check_and_a_changed_source_is_replaced(clouds, tmp_path):
    source, dest = clouds
    plan = Run(dest, source, tmp_path).plan()
    assert [(item.name, item.action) for item in plan] == [('gold', PlanAction.CREATE)]
    assert dest.mutations() == []  # the plan writes nothing, and reads no data of the source
    assert [call[0] for call in source.calls if call[0] == 'download'] == ['download']  # the header only
    run = Run(dest, source, tmp_path)
    assert summarize(run.apply()) == {'create': 1}
    assert run.connects == ['primary']  # once per run
    copy = dest.images_named('gold')[0]
    original = source.images_named('gold-src')[0]
    assert dest.data[copy['id']] == source.data[original['id']]
    assert copy['os_hash_value'] == original['os_hash_value']
    assert copy['os_distro'] == 'cirros'
    assert copy[SOURCE_CLOUD_PROPERTY] == 'primary'
    assert copy[SOURCE_HASH_PROPERTY] == f'sha512:{original["os_hash_value"]}'
    before = len(source.calls)
    assert summarize(Run(dest, source, tmp_path).plan()) == {'noop': 1}
    assert 'download' not in [call[0] for call in source.calls[before:]]  # no byte read when unchanged

    # New bytes at the source: the copy is replaced, verified again.
    source.images[original['id']]['status'] = 'queued'
    source._store(original['id'], b'new gold ' * 4096)
    assert [item.action for item in Run(dest, source, tmp_path).plan()] == [PlanAction.REPLACE]
    assert summarize(Run(dest, source, tmp_path).apply()) == {'replace': 1}
    (copy,) = dest.images_named('gold')
    assert copy['os_hash_value'] == hashlib.sha512(b'new gold ' * 4096).hexdigest()
    assert summarize(Run(dest, source, tmp_path).plan()) == {'noop': 1}


def test_the_policy_is_asked_about_the_source_before_the_destination_changes(clouds, tmp_path):
    source, dest = clouds
    plan = Run(dest, source, tmp_path, policy=QCOW2_ONLY).plan()
    assert plan[0].action is PlanAction.REFUSED
    assert 'qcow2-only' in plan[0].reason
    assert dest.mutations() == []


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'status': 'deactivated'}, 'only an active image has data to transfer'),
        ({'os_hash_value': None}, 'has no os_hash_value'),
        ({'disk_format': 'qcow2'}, "has disk_format 'qcow2', the catalog says 'raw'"),
    ],
)
def test_a_source_that_cannot_be_mirrored_is_an_error_item(clouds, tmp_path, change, message):
    source, dest = clouds
    source.images[source.images_named('gold-src')[0]['id']].update(change)
    (item,) = Run(dest, source, tmp_path).plan()
    assert item.action is PlanAction.ERROR
    assert message in item.reason
    assert dest.mutations() == []


def test_a_missing_source_image_is_an_error_item_naming_the_cloud(clouds, tmp_path):
    source, dest = clouds
    text = MIRROR.replace('gold-src', 'no-such')
    (item,) = Run(dest, source, tmp_path, text=text).plan()
    assert item.action is PlanAction.ERROR
    assert "no image 'no-such' (by id or name) is visible in cloud primary" in item.reason


def test_bytes_changed_behind_the_source_glance_never_complete_a_copy(clouds, tmp_path):
    source, dest = clouds
    original = source.images_named('gold-src')[0]
    run = Run(dest, source, tmp_path)
    plan = run.plan()
    source.data[original['id']] = b'tampered!! ' * 4096  # same size; its recorded hash stays the old one
    (item,) = run.reconciler.apply(run.catalog, plan)
    assert item.action is PlanAction.ERROR
    assert 'changed or damaged' in item.reason
    assert dest.images_named('gold') == []


class _Unreachable:
    """A source cloud whose Keystone refuses the connection."""

    def __init__(self):
        self.calls = 0

    def find(self, *args, **kwargs):
        from keystoneauth1 import exceptions as ksa_exceptions

        self.calls += 1
        raise ksa_exceptions.ConnectFailure('Unable to establish connection to https://keystone.example:5000/v3')


def test_an_unreachable_source_cloud_fails_its_own_entries_once_and_the_others_go_on(clouds, tmp_path):
    source, dest = clouds
    text = MIRROR + (
        '  - name: gold-2\n    source: {cloud: primary, image: other-src}\n    disk_format: raw\n'
        '  - {name: local, state: unmanaged}\n'
    )
    run = Run(dest, _Unreachable(), tmp_path, text=text)
    plan = run.plan()
    assert [(item.name, item.action) for item in plan] == [
        ('gold', PlanAction.ERROR),
        ('gold-2', PlanAction.ERROR),
        ('local', PlanAction.NOOP),
    ]
    assert plan[0].reason == plan[1].reason
    assert "source.cloud 'primary' failed: ConnectFailure: Unable to establish connection" in plan[0].reason
    assert 'not tried again in this run' in plan[0].reason
    # One attempt for both entries: each would otherwise wait for the same timeout.
    assert run.source.calls == 1 and run.connects == ['primary']
    assert dest.mutations() == []


class _FailsLater:
    """The source cloud answers the look-up, then fails when its bytes are read: at the plan's
    header read, or in the middle of the copy."""

    def __init__(self, real, whole_only=False):
        self.real = real
        self.whole_only = whole_only

    def __getattr__(self, name):
        return getattr(self.real, name)

    def download(self, image_id, first_bytes=None, offset=0):
        from keystoneauth1 import exceptions as ksa_exceptions

        if first_bytes and self.whole_only:
            return self.real.download(image_id, first_bytes, offset)
        raise ksa_exceptions.ConnectFailure('Unable to establish connection to https://glance.primary:9292/v2/images')


LOCAL_TOO = MIRROR + '  - {name: local, state: unmanaged}\n'


@pytest.mark.parametrize('failure', ['glance 500', 'connection'])
def test_a_source_cloud_failing_as_the_plan_reads_its_header_is_that_entrys_error(clouds, tmp_path, failure):
    source, dest = clouds
    if failure == 'glance 500':
        source.fail_on('download')
    run = Run(dest, source if failure == 'glance 500' else _FailsLater(source), tmp_path, text=LOCAL_TOO)
    plan = run.plan()
    assert [(item.name, item.action) for item in plan] == [('gold', PlanAction.ERROR), ('local', PlanAction.NOOP)]
    assert "source.cloud 'primary' failed" in plan[0].reason
    assert dest.mutations() == []


def test_a_source_cloud_failing_in_the_middle_of_a_copy_rolls_it_back_and_the_others_are_applied(clouds, tmp_path):
    source, dest = clouds
    text = MIRROR + '  - {name: other, source: {cloud: secondary, image: gold-src}, disk_format: raw}\n'
    run = Run(dest, _FailsLater(source, whole_only=True), tmp_path, text=text)
    healthy = source

    def connect(cloud):
        run.connects.append(cloud)
        return (run.source if cloud == 'primary' else healthy), cloud, 'RegionOne'

    run.reconciler.connect_source = connect
    done = run.apply()
    assert [(item.name, item.action) for item in done] == [('gold', PlanAction.ERROR), ('other', PlanAction.CREATE)]
    assert "source.cloud 'primary' failed: ConnectFailure" in done[0].reason
    assert dest.images_named('gold') == [] and len(dest.images_named('other')) == 1


def test_one_entrys_bad_request_does_not_fail_the_other_entries_of_its_cloud(clouds, tmp_path):
    from ansible_collections.imagegov.openstack.plugins.module_utils._glance import GlanceError

    source, dest = clouds

    class RefusesOneName(_FailsLater):
        def find(self, wanted, *args, **kwargs):
            if wanted == 'odd name':
                raise GlanceError('Listing images', 400, 'Invalid filter value')
            return self.real.find(wanted, *args, **kwargs)

    text = '\nversion: 1\nimages:\n  - {name: first, source: {cloud: primary, image: odd name}, disk_format: raw}\n'
    text += '  - {name: gold, source: {cloud: primary, image: gold-src}, disk_format: raw}\n'
    plan = Run(dest, RefusesOneName(source, whole_only=True), tmp_path, text=text).plan()
    assert [(item.name, item.action) for item in plan] == [('first', PlanAction.ERROR), ('gold', PlanAction.CREATE)]
    assert 'not tried again' not in plan[0].reason


def test_a_source_clouds_failure_names_no_credential_of_its_url():
    from keystoneauth1 import exceptions as ksa_exceptions

    from ansible_collections.imagegov.openstack.plugins.module_utils._transfer import source_cloud_failure

    exc = ksa_exceptions.ConnectFailure(
        'Unable to establish connection to http://admin:S3cretPw@keystone:5000/v3?token=abc'
    )
    message, whole_cloud = source_cloud_failure(exc, 'primary')
    assert whole_cloud and 'S3cretPw' not in message and 'token=abc' not in message
    assert source_cloud_failure(ValueError('a programming error'), 'primary') is None
