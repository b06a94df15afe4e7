"""BundleReconciler against the in-memory Glance: three linked images, in order, asked of the
policy before the first request; idempotent; check mode writes nothing; a failing machine
image takes the kernel and ramdisk this run made with it; deletion goes machine first and is
refused up front when anything else uses the kernel."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from glance_double import GlanceDouble
from test_convert import Runner
from test_image_reconciler import OWNER, Gate
from test_uec import UBUNTU, ext_disk, initrd, tarball, ubuntu_members, x86_kernel

from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache
from ansible_collections.imagegov.openstack.plugins.module_utils._image_bundle import (
    BundleReconciler,
    BundleRequestError,
    open_bundle,
    usage_once_deleted,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils._state import SHA256_PROPERTY
from ansible_collections.imagegov.openstack.plugins.module_utils._uec import UecError

NAME = 'focal'
NAMES = ('focal-kernel', 'focal-ramdisk', 'focal')
needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')

REFUSE_MACHINE_UPLOAD = """
version: 1
rules:
  - id: no-machine-upload
    type: expression
    actions: [upload]
    match: {names: [focal]}
    params: {assert: "content.sha256 == 'never'"}
"""
NO_DELETE_IN_USE = """
version: 1
rules:
  - id: no-delete-in-use
    type: delete_protection
    actions: [delete]
    params: {check: [servers, images], on_unknown: deny}
"""


def params(**options):
    base = dict(
        name=NAME,
        state='present',
        uec=None,
        uec_kernel=None,
        uec_ramdisk=None,
        uec_disk=None,
        max_bytes=None,
        kernel_file=None,
        ramdisk_file=None,
        disk_file=None,
        legacy_formats=False,
        convert_to=None,
        scratch_dir=None,
        disk_format=None,
        os_command_line=None,
        properties=None,
        tags=None,
        visibility=None,
        min_disk=None,
        min_ram=None,
        owner=None,
        wait=True,
        timeout=5,
    )
    base.update(options)
    return base


class WatchingGate(Gate):
    """A gate that notes, for every question, how many changes Glance had seen by then."""

    def __init__(self, glance, text=None):
        super().__init__(*([text] if text else []))
        self.glance = glance
        self.asked = []

    def check(self, action, after, current, content=None, data_source=None):
        self.asked.append((action, after.get('name'), len(self.glance.mutations())))
        return super().check(action, after, current, content, data_source)


class GlanceUsage:
    """Usage as image_usage_info reports it: the images naming this one as kernel or ramdisk."""

    def __init__(self, glance):
        self.glance = glance

    def __call__(self, image):
        users = [
            {'id': other['id'], 'name': other['name'], 'as': key}
            for other in self.glance.images.values()
            if other['status'] != 'deleted'
            for key in ('kernel_id', 'ramdisk_id')
            if other.get(key) == image['id']
        ]
        return {'servers': [], 'images': users, 'not_checked': []}


@pytest.fixture
def scratch(tmp_path):
    path = tmp_path / 'scratch'
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], 'scratch space is left empty'


@pytest.fixture
def uec(tmp_path):
    return tarball(tmp_path / f'{UBUNTU}.tar.gz', ubuntu_members(), 'gz')


@pytest.fixture
def digests(tmp_path):
    return DigestCache(str(tmp_path / 'cache'))


def run_bundle(glance, options, gate=None, check_mode=False, digests=None, run=None):
    gate = gate or Gate()
    reconciler = BundleReconciler(options, glance, gate, OWNER, check_mode, digests, run)
    if options['state'] == 'absent':
        reconciler.absent(OWNER)
        return reconciler.result(), gate
    with open_bundle(options) as bundle:
        reconciler.present(bundle, None)
        return reconciler.result(bundle), gate


def live(glance):
    return {image['name']: image for image in glance.images.values() if image['status'] != 'deleted'}


def test_a_uec_tarball_becomes_three_linked_images(uec, scratch, digests):
    glance = GlanceDouble()
    gate = WatchingGate(glance)
    options = params(uec=str(uec), scratch_dir=str(scratch), os_command_line='console=ttyS0', tags=['gold'])
    result, gate = run_bundle(glance, options, gate=gate, digests=digests)
    images = live(glance)
    assert sorted(images) == sorted(NAMES)
    kernel, ramdisk, machine = (images[name] for name in NAMES)
    assert (kernel['disk_format'], kernel['container_format']) == ('aki', 'aki')
    assert (ramdisk['disk_format'], ramdisk['container_format']) == ('ari', 'ari')
    assert (machine['disk_format'], machine['container_format']) == ('raw', 'bare')
    assert machine['kernel_id'] == kernel['id'] and machine['ramdisk_id'] == ramdisk['id']
    assert machine['architecture'] == 'x86_64' and machine['os_command_line'] == 'console=ttyS0'
    assert machine['tags'] == ['gold'] and kernel['tags'] == []
    assert 'architecture' not in kernel and 'kernel_id' not in kernel
    assert result['changed']
    assert result['images']['machine']['id'] == machine['id']
    assert result['content']['kernel']['name'] == f'{UBUNTU}-vmlinuz-generic'
    assert result['content']['kernel']['what'] == 'an x86 Linux kernel (bzImage)'
    assert result['content']['kernel']['boot_file'] == 'kernel'
    assert result['bundle']['members'][-1] == 'README.files' and result['bundle']['source'] == str(uec)
    # All three asked before the first change, then each image's own steps, in order.
    assert gate.asked[:3] == [('create', name, 0) for name in NAMES]
    created = [op for op in result['operations'] if op.kind.value == 'create']
    assert [op.split("'")[1] for op in created] == list(NAMES)


def test_applying_again_changes_nothing_and_uploads_nothing(uec, scratch, digests):
    glance = GlanceDouble()
    options = params(uec=str(uec), scratch_dir=str(scratch))
    run_bundle(glance, options, digests=digests)
    before = len(glance.mutations())
    result, _gate = run_bundle(glance, options, digests=digests)
    assert not result['changed'] and len(glance.mutations()) == before
    assert {content['identity'] for content in result['content'].values()} == {'verified'}


def test_check_mode_predicts_and_writes_nothing(uec, scratch, digests):
    glance = GlanceDouble()
    options = params(uec=str(uec), scratch_dir=str(scratch))
    result, gate = run_bundle(glance, options, check_mode=True, digests=digests)
    assert result['changed'] and glance.mutations() == []
    machine = result['images']['machine']
    assert machine['kernel_id'] == "<id of the new image 'focal-kernel'>"
    assert machine['ramdisk_id'] == "<id of the new image 'focal-ramdisk'>"
    assert set(gate.actions) == {'create', 'upload'}
    run_bundle(glance, options, digests=digests)
    again, _gate = run_bundle(glance, options, check_mode=True, digests=digests)
    assert not again['changed']


def test_three_files_in_legacy_formats(tmp_path, digests):
    files = {'vmlinuz': x86_kernel(), 'initrd.img': initrd(), 'root.img': ext_disk()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    options = params(
        kernel_file=str(tmp_path / 'vmlinuz'),
        ramdisk_file=str(tmp_path / 'initrd.img'),
        disk_file=str(tmp_path / 'root.img'),
        legacy_formats=True,
        visibility='private',
        min_disk=1,
    )
    glance = GlanceDouble()
    result, _gate = run_bundle(glance, options, digests=digests)
    images = live(glance)
    assert [images[name]['disk_format'] for name in NAMES] == ['aki', 'ari', 'ami']
    assert [images[name]['container_format'] for name in NAMES] == ['aki', 'ari', 'ami']
    assert {images[name]['visibility'] for name in NAMES} == {'private'}
    assert images['focal']['min_disk'] == 1 and images['focal-kernel'].get('min_disk') is None
    assert images['focal'][SHA256_PROPERTY] == hashlib.sha256(files['root.img']).hexdigest()
    assert result['bundle'] == {
        'source': None,
        'sha256': None,
        'members': [str(tmp_path / name) for name in files],
    }


def test_legacy_formats_need_a_raw_disk(tmp_path):
    qcow2 = bytearray(ext_disk())
    qcow2[:4] = b'QFI\xfb'
    for name, data in {'vmlinuz': x86_kernel(), 'root.qcow2': bytes(qcow2)}.items():
        (tmp_path / name).write_bytes(data)
    options = params(kernel_file=str(tmp_path / 'vmlinuz'), disk_file=str(tmp_path / 'root.qcow2'))
    glance = GlanceDouble()
    with pytest.raises(BundleRequestError, match='set convert_to=raw, or leave legacy_formats off'):
        run_bundle(glance, dict(options, legacy_formats=True))
    assert glance.calls == []


def test_a_bundle_without_an_initrd_drops_the_old_ramdisk_link(uec, tmp_path, scratch, digests):
    glance = GlanceDouble()
    run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)), digests=digests)
    cirros = tarball(tmp_path / 'c.tar', [('vmlinuz', x86_kernel()), ('root.img', ext_disk())])
    result, _gate = run_bundle(glance, params(uec=str(cirros), scratch_dir=str(scratch)), digests=digests)
    machine = live(glance)['focal']
    assert 'ramdisk_id' not in machine and machine['kernel_id'] == live(glance)['focal-kernel']['id']
    assert result['images']['ramdisk'] == {} and 'ramdisk' not in result['content']


def test_a_refused_machine_image_creates_nothing(uec, scratch):
    refuse = 'version: 1\nrules:\n  - {id: no-focal, type: name_pattern, params: {pattern: "-"}}\n'
    glance = GlanceDouble()
    with pytest.raises(PolicyRefusal, match='no-focal'):
        run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)), gate=Gate(refuse))
    assert glance.mutations() == []


def test_a_machine_image_failing_late_takes_the_new_kernel_and_ramdisk_with_it(uec, scratch):
    """Its upload is refused only once the whole disk was read, after the record was created."""
    glance = GlanceDouble()
    options = params(uec=str(uec), scratch_dir=str(scratch))
    reconciler = BundleReconciler(options, glance, Gate(REFUSE_MACHINE_UPLOAD), OWNER, False)
    with open_bundle(options) as bundle, pytest.raises(PolicyRefusal, match='no-machine-upload'):
        reconciler.present(bundle, None)
    assert live(glance) == {}
    made = {image['name']: image['id'] for image in glance.images.values()}
    rolled_back = [op for op in reconciler.operations if op.kind.value == 'rollback']
    assert rolled_back == [f'rolled back: delete {made[name]}' for name in reversed(NAMES)]


def test_replaced_kernel_and_ramdisk_are_restored_when_the_machine_image_fails(uec, tmp_path, scratch, digests):
    glance = GlanceDouble()
    run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)), digests=digests)
    before = live(glance)
    newer = tarball(tmp_path / 'newer.tar.gz', ubuntu_members(), 'gz')  # new random bytes in each
    with pytest.raises(PolicyRefusal, match='no-machine-upload'):
        run_bundle(
            glance, params(uec=str(newer), scratch_dir=str(scratch)), gate=Gate(REFUSE_MACHINE_UPLOAD), digests=digests
        )
    after = live(glance)
    assert sorted(after) == sorted(NAMES)
    assert {name: image['id'] for name, image in after.items()} == {name: image['id'] for name, image in before.items()}
    assert not any(image['os_hidden'] for image in after.values())
    assert after['focal']['kernel_id'] == before['focal-kernel']['id']


def test_properties_the_bundle_sets_are_refused_in_properties(uec, scratch):
    glance = GlanceDouble()
    for given, message in (
        ({'kernel_id': 'x'}, 'properties.kernel_id: the bundle sets it'),
        ({'ramdisk_id': 'x'}, 'properties.ramdisk_id'),
        ({'os_command_line': 'x'}, 'give it as option os_command_line'),
        ({'architecture': 'aarch64'}, "contradicts the kernel's header, which says 'x86_64'"),
    ):
        with pytest.raises(BundleRequestError, match=message):
            run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch), properties=given))
    assert glance.mutations() == []
    result, _gate = run_bundle(
        glance, params(uec=str(uec), scratch_dir=str(scratch), properties={'architecture': 'x86_64', 'os_distro': 'u'})
    )
    assert result['images']['machine']['os_distro'] == 'u'


def test_a_bad_tarball_fails_before_any_request(tmp_path, scratch):
    two_kernels = tarball(
        tmp_path / 'two.tar', [('boot-a', x86_kernel()), ('boot-b', x86_kernel()), ('r.img', ext_disk())]
    )
    with pytest.raises(UecError, match='name one with uec_kernel'):
        open_bundle(params(uec=str(two_kernels), scratch_dir=str(scratch)))
    with pytest.raises(BundleRequestError, match='Option uec: .* is no file'):
        open_bundle(params(uec=str(tmp_path / 'missing.tar'), scratch_dir=str(scratch)))
    with pytest.raises(BundleRequestError, match='Option scratch_dir: .* is not a directory'):
        open_bundle(params(uec=str(two_kernels), scratch_dir=str(tmp_path / 'nowhere')))
    with open_bundle(params(uec=str(two_kernels), scratch_dir=str(scratch), uec_kernel='boot-b')) as bundle:
        assert bundle.kernel.name == 'boot-b'


def test_absent_deletes_machine_then_ramdisk_then_kernel(uec, scratch, digests):
    glance = GlanceDouble()
    run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)), digests=digests)
    ids = [live(glance)[name]['id'] for name in reversed(NAMES)]
    gate = Gate(NO_DELETE_IN_USE, usage=GlanceUsage(glance))
    planned, _gate = run_bundle(glance, params(state='absent'), gate=gate, check_mode=True)
    assert planned['changed'] and len(live(glance)) == 3
    gate = Gate(NO_DELETE_IN_USE, usage=GlanceUsage(glance))
    result, gate = run_bundle(glance, params(state='absent'), gate=gate)
    assert [call[1] for call in glance.mutations() if call[0] == 'delete'] == ids
    assert live(glance) == {} and result['changed'] and 'content' not in result
    assert gate.actions == ['delete'] * 6  # all three asked up front, then each as it goes
    again, _gate = run_bundle(glance, params(state='absent'))
    assert not again['changed']


def test_absent_is_refused_before_anything_is_deleted_while_another_image_uses_the_kernel(uec, scratch):
    glance = GlanceDouble()
    run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)))
    kernel = live(glance)['focal-kernel']
    glance.add('other-machine', b'disk', kernel_id=kernel['id'], status='active')
    gate = Gate(NO_DELETE_IN_USE, usage=GlanceUsage(glance))
    with pytest.raises(PolicyRefusal, match='no-delete-in-use'):
        run_bundle(glance, params(state='absent'), gate=gate)
    assert sorted(live(glance)) == sorted([*NAMES, 'other-machine'])
    assert not [call for call in glance.mutations() if call[0] == 'delete']


def test_absent_refuses_protected_and_duplicate_images_up_front(uec, scratch):
    glance = GlanceDouble()
    run_bundle(glance, params(uec=str(uec), scratch_dir=str(scratch)))
    kernel = live(glance)['focal-kernel']
    glance.images[kernel['id']]['protected'] = True
    with pytest.raises(BundleRequestError, match='is protected, so Glance refuses to delete it'):
        run_bundle(glance, params(state='absent'))
    glance.images[kernel['id']]['protected'] = False
    glance.add('focal-ramdisk', b'other', status='active')
    with pytest.raises(BundleRequestError, match="2 images are named 'focal-ramdisk'"):
        run_bundle(glance, params(state='absent'))
    assert not [call for call in glance.mutations() if call[0] == 'delete']


@needs_qemu_img
def test_the_machine_disk_is_converted_with_convert_to(uec, scratch, digests):
    glance = GlanceDouble()
    options = params(uec=str(uec), scratch_dir=str(scratch), convert_to='qcow2')
    result, _gate = run_bundle(glance, options, digests=digests, run=Runner())
    machine = live(glance)['focal']
    assert machine['disk_format'] == 'qcow2' and glance.data[machine['id']][:4] == b'QFI\xfb'
    assert machine['imagegov_source_format'] == 'raw'
    assert result['content']['machine']['source']['converted_to'] == 'qcow2'
    again, _gate = run_bundle(glance, options, digests=digests, run=Runner())
    assert not again['changed']


@needs_qemu_img
def test_a_disk_glance_has_no_format_for_is_refused_before_any_request(tmp_path):
    (tmp_path / 'vmlinuz').write_bytes(x86_kernel())
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qed', str(tmp_path / 'root.qed'), '16M'], check=True)
    glance = GlanceDouble()
    options = params(kernel_file=str(tmp_path / 'vmlinuz'), disk_file=str(tmp_path / 'root.qed'))
    with pytest.raises(BundleRequestError, match="the disk '.*root.qed' is qed, which Glance has no disk_format for"):
        run_bundle(glance, options)
    assert glance.calls == []


@needs_qemu_img
def test_a_conversion_the_policy_refuses_leaves_nothing_in_scratch_space(uec, scratch):
    only_raw = (
        'version: 1\nrules:\n  - {id: raw-only, type: allowed_formats, params: {disk_formats: [aki, ari, raw]}}\n'
    )
    glance = GlanceDouble()
    options = params(uec=str(uec), scratch_dir=str(scratch), convert_to='qcow2')
    with pytest.raises(PolicyRefusal, match='raw-only'):
        run_bundle(glance, options, gate=Gate(only_raw), run=Runner())
    assert glance.calls == []


def test_usage_once_deleted_without_a_provider_is_none():
    assert usage_once_deleted(None, {'x'}) is None
