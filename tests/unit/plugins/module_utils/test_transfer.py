"""image_transfer's logic against two in-memory Glances: what is carried, what is verified,
what the policy is asked before the destination sees a request, and what a failure leaves."""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace

import pytest
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils._content import SourceError
from ansible_collections.imagegov.openstack.plugins.module_utils._image import ImageRequestError
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate, PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils._transfer import (
    SOURCE_HASH_PROPERTY,
    SOURCE_ID_PROPERTY,
    SourceImage,
    Transfer,
    TransferError,
    VerifyingScanner,
    carried_properties,
)
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

DEST_PROJECT = 'p-dest'
ACTOR = {'user': 'bob', 'project': 'dest', 'project_id': DEST_PROJECT, 'roles': ['member']}
NOTHING = 'version: 1\nrules: []\n'
RAW_ONLY = 'version: 1\nrules:\n  - id: raw-only\n    type: allowed_formats\n    params: {disk_formats: [raw]}\n'


def params(**overrides):
    base = dict(
        source_cloud='src',
        image='gold',
        name=None,
        properties=None,
        tags=None,
        visibility=None,
        kernel=None,
        ramdisk=None,
        members=None,
        import_method='put',
        stores=None,
        all_stores=False,
        interface='public',
        on_content_change='replace',
        wait=True,
        timeout=60,
        api_timeout=None,
    )
    return dict(base, **overrides)


class Run:
    """One module run: a source and a destination Glance and the module's surface."""

    def __init__(self, source: GlanceDouble, dest: GlanceDouble, policy: str = NOTHING, check_mode=False, **p):
        gate = PolicyGate(load_policy_texts([('test.yml', policy)]), lambda: ACTOR, lambda msg: None)
        self.dest = dest
        self.module = SimpleNamespace(
            params=params(**p),
            gate=gate,
            glance=dest,
            caller=ACTOR,
            check_mode=check_mode,
            resolve_project=lambda name: f'p-{name}',
        )
        self.transfer = Transfer(self.module)
        self.transfer._connect_source = lambda: (source, 'src', 'RegionOne')

    def __call__(self):
        return self.transfer.run()


@pytest.fixture
def clouds():
    source = GlanceDouble(owner='p-src')
    dest = GlanceDouble(owner=DEST_PROJECT)
    data = os.urandom(3 * 1024 * 1024 + 5)
    source.add(
        'gold',
        data,
        disk_format='raw',
        min_disk=2,
        tags=['gold'],
        os_distro='debian',
        owner_project_name='src-project',
        os_glance_importing_to_stores='',
        imagegov_replaced_by='x',
        **{'owner_specified.openstack.sha256': hashlib.sha256(data).hexdigest()},
    )
    return source, dest, data


def test_carried_properties_leave_what_belongs_to_the_source_cloud():
    image = {
        'id': 'i',
        'name': 'n',
        'owner': 'o',
        'size': 1,
        'os_hash_value': 'h',
        'stores': 'fs',
        'os_glance_failed_import': '',
        'kernel_id': 'k',
        'instance_uuid': 'server',
        'imagegov_shared_since': 't',
        'imagegov_build_hash': 'b',
        'owner_specified.openstack.sha256': 's',
        'os_distro': 'debian',
        'hw_qemu_guest_agent': True,
    }
    assert carried_properties(image) == {
        'imagegov_build_hash': 'b',
        'os_distro': 'debian',
        'hw_qemu_guest_agent': 'true',
    }


def test_a_copy_carries_metadata_records_its_source_and_is_not_copied_again(clouds):
    source, dest, data = clouds
    first = Run(source, dest)()
    copy = dest.images[first['id']]
    assert first['changed'] and first['transfer']['bytes_sent'] == len(data)
    assert copy['os_hash_value'] == hashlib.sha512(data).hexdigest() == first['source']['os_hash_value']
    assert (copy['min_disk'], copy['tags'], copy['os_distro'], copy['visibility']) == (2, ['gold'], 'debian', 'private')
    assert 'owner_project_name' not in copy and 'imagegov_replaced_by' not in copy
    assert copy[SOURCE_HASH_PROPERTY] == f'sha512:{copy["os_hash_value"]}'
    calls = len(dest.calls)
    plan = Run(source, dest, check_mode=True)()
    again = Run(source, dest)()
    assert not plan['changed'] and not again['changed']
    assert again['transfer']['bytes_sent'] == 0
    assert [call[0] for call in dest.calls[calls:]] == ['list', 'list', 'list', 'list']


def test_check_mode_reads_the_header_only_and_asks_the_policy(clouds):
    source, dest, data = clouds
    run = Run(source, dest, check_mode=True)
    plan = run()
    assert plan['changed'] and dest.mutations() == []
    # Before the destination was asked anything, then as the reconciler creates and uploads.
    assert [d.action for d in run.module.gate.decisions] == ['create', 'create', 'upload']
    assert plan['transfer']['bytes_read'] == len(data)  # the header read: the whole 3 MiB image


def test_a_tampered_source_never_completes_an_upload_and_leaves_nothing(clouds):
    source, dest, _data = clouds
    image_id = next(iter(source.images))
    stored = source.data[image_id]
    source.data[image_id] = stored[:-1] + bytes([stored[-1] ^ 0xFF])  # behind Glance's back
    with pytest.raises(SourceError, match='changed or damaged'):
        Run(source, dest)()
    assert [image for image in dest.images.values() if image['status'] != 'deleted'] == []
    assert dest.data == {}  # the upload never completed


def test_the_destination_policy_refuses_before_any_destination_request(clouds):
    source, dest, _data = clouds
    next(iter(source.images.values()))['disk_format'] = 'qcow2'
    with pytest.raises(PolicyRefusal, match='raw-only'):
        Run(source, dest, policy=RAW_ONLY)()
    assert dest.calls == []


def test_forged_source_records_do_not_stop_a_copy(clouds):
    source, dest, data = clouds
    src = next(iter(source.images.values()))
    forged = dest.add(
        'gold',
        b'other bytes',
        visibility='private',
        **{SOURCE_ID_PROPERTY: src['id'], SOURCE_HASH_PROPERTY: f'sha512:{src["os_hash_value"]}'},
    )
    result = Run(source, dest)()
    assert result['changed'] and result['id'] != forged['id']
    assert dest.images[result['id']]['os_hash_value'] == src['os_hash_value']
    assert dest.images[forged['id']]['name'].startswith('gold.replaced-')


def test_a_kernel_is_transferred_first_and_linked(clouds):
    source, dest, _data = clouds
    kernel = source.add('vmlinuz', b'kernel bytes', disk_format='aki', container_format='aki')
    next(iter(source.images.values()))['kernel_id'] = kernel['id']
    result = Run(source, dest)()
    copies = {image['name']: image for image in dest.images.values()}
    assert result['image']['kernel_id'] == copies['vmlinuz']['id'] != kernel['id']


def test_an_image_without_a_hash_cannot_be_verified(clouds):
    source, dest, _data = clouds
    next(iter(source.images.values()))['os_hash_value'] = None
    with pytest.raises(TransferError, match='no os_hash_value'):
        Run(source, dest)()
    assert dest.mutations() == []


def test_a_whole_read_holds_back_its_last_chunk_until_verified():
    glance = GlanceDouble()
    image = glance.add('x', b'abc' * 1000)
    assert b''.join(VerifyingScanner(SourceImage(glance, image, 'src'))) == b'abc' * 1000
    glance.data[image['id']] = b'abd' * 1000
    sent = []
    with pytest.raises(SourceError, match='changed or damaged'):
        sent.extend(VerifyingScanner(SourceImage(glance, image, 'src')))
    assert sent == []  # one chunk: held back, never handed out


@pytest.mark.parametrize('algo', ['sha256', 'sha3_256'])
def test_other_source_algorithms_are_verified_too(algo):
    glance = GlanceDouble()
    image = glance.add('x', b'abc')
    image.update(os_hash_algo=algo, os_hash_value=hashlib.new(algo, b'abc').hexdigest())
    assert b''.join(VerifyingScanner(SourceImage(glance, image, 'src'))) == b'abc'
    image['os_hash_value'] = hashlib.new(algo, b'abd').hexdigest()
    with pytest.raises(SourceError):
        list(VerifyingScanner(SourceImage(glance, image, 'src')))


def test_glance_download_is_checked_offered_then_judged_on_what_was_stored(clouds):
    source, dest, data = clouds
    dest.remote = source
    dest.methods = ['glance-direct']
    with pytest.raises(TransferError, match='does not offer glance-download'):
        Run(source, dest, import_method='glance-download')()
    assert dest.mutations() == []
    dest.methods.append('glance-download')
    result = Run(source, dest, import_method='glance-download')()
    src = next(iter(source.images.values()))
    imports = [call for call in dest.calls if call[0] == 'import']
    assert [call[2] for call in imports] == ['glance-download']
    assert dest.images[result['id']]['os_hash_value'] == src['os_hash_value']
    assert result['transfer']['bytes_sent'] == 0  # nothing went through this host
    assert not Run(source, dest, import_method='glance-download')()['changed']


def test_glance_download_of_other_bytes_is_removed(clouds):
    source, dest, _data = clouds
    dest.remote, dest.methods = source, ['glance-download']
    dest.rewrite = lambda data: data + b'!'
    with pytest.raises(SourceError, match='the copy was removed'):
        Run(source, dest, import_method='glance-download')()
    assert [image for image in dest.images.values() if image['status'] != 'deleted'] == []


def test_stores_are_checked_and_passed_on(clouds):
    source, dest, _data = clouds
    with pytest.raises(TransferError, match='no multiple stores'):
        Run(source, dest, stores=['fast'])()
    dest.stores = ['fs', 'fast']
    with pytest.raises(TransferError, match='no store slow'):
        Run(source, dest, stores=['slow'])()
    with pytest.raises(TransferError, match='reaches one store'):
        Run(source, dest, all_stores=True)()
    assert dest.mutations() == []
    Run(source, dest, stores=['fast'])()
    assert [call for call in dest.calls if call[0] == 'upload'][0][2] == 'fast'
    Run(source, dest, name='other', all_stores=True, import_method='glance-direct')()
    imports = [call for call in dest.calls if call[0] == 'import']
    assert imports[0][3] == {'all_stores': True, 'all_stores_must_succeed': True}


def test_a_failed_glance_download_is_reported_at_once_and_removed(clouds):
    source, dest, _data = clouds
    dest.methods = ['glance-download']  # dest.remote unset: Glance cannot fetch the source
    with pytest.raises(ImageRequestError, match='URI does not pass filtering'):
        Run(source, dest, import_method='glance-download')()
    assert [image for image in dest.images.values() if image['status'] != 'deleted'] == []


def test_members_are_shared_by_project_at_the_destination(clouds):
    source, dest, _data = clouds
    plan = Run(source, dest, check_mode=True, members=['beta'])()
    assert plan['members'] == ['p-beta'] and 'add member p-beta' in plan['operations']
    shared = Run(source, dest, members=['beta'])()
    assert shared['image']['visibility'] == 'shared' and shared['members'] == ['p-beta']
    assert dest.members[shared['id']] == {'p-beta': 'pending'}
    again = Run(source, dest, members=['beta'])()
    assert not again['changed'] and again['members'] == ['p-beta']


def test_kernel_option_maps_to_a_destination_image(clouds):
    source, dest, _data = clouds
    kernel = source.add('vmlinuz', b'kernel bytes', disk_format='aki', container_format='aki')
    next(iter(source.images.values()))['kernel_id'] = kernel['id']
    with pytest.raises(TransferError, match="Option kernel: no image 'dest-kernel'"):
        Run(source, dest, kernel='dest-kernel')()
    mapped = dest.add('dest-kernel', b'k', disk_format='aki', container_format='aki')
    result = Run(source, dest, kernel='dest-kernel')()
    assert result['image']['kernel_id'] == mapped['id']
    assert len(dest.images) == 2  # the source's kernel was not transferred


def test_a_kernel_the_source_does_not_show_is_an_error(clouds):
    source, dest, _data = clouds
    next(iter(source.images.values()))['ramdisk_id'] = 'gone'
    with pytest.raises(TransferError, match='ramdisk_id gone, which is not visible'):
        Run(source, dest)()


def test_the_source_connection_and_its_label(monkeypatch):
    import openstack
    from openstack import exceptions as sdk_exceptions

    from ansible_collections.imagegov.openstack.plugins.module_utils import _transfer

    made = []

    def connect(**options):
        if options.get('cloud') == 'broken':
            raise sdk_exceptions.ConfigException('no such cloud')
        made.append(options)
        config = SimpleNamespace(
            config={'auth': {'auth_url': 'https://user:secret@keystone.example/v3'}},
            get_region_name=lambda: options.get('region_name'),
        )
        return SimpleNamespace(config=config, image=None)

    monkeypatch.setattr(openstack, 'connect', connect)
    kept = []
    module = SimpleNamespace(params=params(api_timeout=30), gate=None, _keep_connection_secrets=kept.append)
    for cloud, label in (
        ('prod', 'prod'),
        ({'cloud': 'prod', 'region_name': 'RegionTwo'}, 'prod RegionTwo'),
        ({'auth': {'auth_url': 'x'}, 'region_name': 'R1'}, 'https://***@keystone.example/v3 R1'),
    ):
        module.params['source_cloud'] = cloud
        _glance, got, _region = _transfer.Transfer(module)._connect_source()
        assert got == label
    assert made[0] == {'cloud': 'prod', 'api_timeout': 30} and len(kept) == 3
    module.params['source_cloud'] = 'broken'
    with pytest.raises(TransferError, match='no such cloud'):
        _transfer.Transfer(module)._connect_source()
    module.params['source_cloud'] = 42
    with pytest.raises(TransferError, match='clouds.yaml name or a dict'):
        _transfer.Transfer(module)._connect_source()


def test_a_download_of_another_length_is_refused():
    glance = GlanceDouble()
    image = glance.add('x', b'abc')
    image['size'] = 4
    with pytest.raises(SourceError, match='announces 3 bytes'):
        SourceImage(glance, image, 'src').stream()


def test_a_refused_upload_of_the_image_removes_its_kernel_copied_first(clouds):
    source, dest, _data = clouds
    kernel = source.add('vmlinuz', b'kernel bytes', disk_format='aki', container_format='aki')
    next(iter(source.images.values()))['kernel_id'] = kernel['id']
    refuse_gold = (
        'version: 1\nrules:\n  - id: no-gold-data\n    type: expression\n    actions: [upload]\n'
        '    params: {assert: "image.name != \'gold\'", path: image.name}\n'
    )
    with pytest.raises(PolicyRefusal, match='no-gold-data'):
        Run(source, dest, policy=refuse_gold)()
    assert [image['name'] for image in dest.images.values() if image['status'] != 'deleted'] == []
    assert {image['name'] for image in dest.images.values()} == {'vmlinuz', 'gold'}  # both were made
