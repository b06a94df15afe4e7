"""image_capture's logic over an in-memory Glance and scripted Nova and Cinder (the
integration target image_capture runs it against the real ones)."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils import _capture
from ansible_collections.imagegov.openstack.plugins.module_utils._capture import (
    CAPTURED_FROM_PROPERTY,
    PENDING_PROPERTY,
    Capture,
    CaptureError,
    CaptureRequest,
    CloudCallError,
    user_properties,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate, PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

CALLER = {'user': 'alice', 'project': 'alpha', 'project_id': 'p-alpha', 'roles': ['member']}
SERVER_ID = '11111111-2222-3333-4444-555555555555'
ALLOW_ALL = 'version: 1\nrules: []\n'
STOPPED_ONLY = """
version: 1
rules:
  - id: stopped-only
    type: expression
    actions: [capture]
    params: {assert: "server.status == 'SHUTOFF'"}
"""
SMALL_DISKS = """
version: 1
rules:
  - id: small-disks
    type: max_size
    params: {max_gib: 0.01, which: [virtual_size]}
"""


@pytest.fixture(scope='module')
def qcow2(tmp_path_factory):
    path = tmp_path_factory.mktemp('capture') / 'snap.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '64M'], check=True)
    return path.read_bytes()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_capture.time, 'sleep', lambda seconds: None)


class FakeNova:
    """Nova's calls that capture makes; a snapshot completes on the next server read unless
    ``behaviour`` is 'fail' (Nova deletes the image) or 'hang' (never done)."""

    def __init__(self, glance, data, status='ACTIVE', volume_backed=False, behaviour='ok'):
        self.glance = glance
        self.data = data
        self.behaviour = behaviour
        self.calls = []
        self.request_count = 0
        self.conflict = False
        self.running = None
        self.record = {
            'id': SERVER_ID,
            'name': 'web',
            'status': status,
            'tenant_id': 'p-alpha',
            'user_id': 'u-alice',
            'image': '' if volume_backed else {'id': 'base-image'},
            'OS-EXT-STS:task_state': None,
            'os-extended-volumes:volumes_attached': [{'id': 'vol-root'}] if volume_backed else [],
        }

    def find_server(self, name_or_id):
        self.calls.append(('find', name_or_id))
        if name_or_id not in ('web', SERVER_ID):
            raise CaptureError(f'No server {name_or_id!r}')
        return dict(self.record)

    def server(self, server_id):
        self.calls.append(('server', server_id))
        if self.running and self.behaviour == 'ok':
            self.glance._store(self.running, self.data)
            self.glance.images[self.running]['disk_format'] = 'qcow2'
            self.running = None
        elif self.running and self.behaviour == 'fail':
            self.glance.images[self.running]['status'] = 'deleted'
            self.running = None
        record = dict(self.record)
        record['OS-EXT-STS:task_state'] = 'image_uploading' if self.running else None
        return record

    def create_image(self, server_id, name, metadata):
        self.calls.append(('createImage', server_id, name))
        if self.conflict:
            raise CloudCallError('Nova createImage failed: HTTP 409: busy', 409)
        image = self.glance.add(
            name,
            visibility='private',
            disk_format='raw',
            **{'owner_specified.openstack.sha256': 'f' * 64, 'imagegov_shared_since': '2026-01-01'},
            **metadata,
        )
        self.running = image['id']
        return image['id']

    def last_failure(self, server_id):
        return ''


class FakeCinder:
    def __init__(self, glance, data, fail_upload=False):
        self.glance = glance
        self.data = data
        self.fail_upload = fail_upload
        self.busy_upload = False  # Cinder still uploading from the clone
        self.request_count = 0
        self.calls = []
        self.volumes = {
            'vol-root': {
                'id': 'vol-root',
                'status': 'in-use',
                'size': 1,
                'bootable': 'true',
                'attachments': [{'server_id': SERVER_ID, 'device': '/dev/vda'}],
                'volume_image_metadata': {'disk_format': 'qcow2'},
            }
        }
        self.snapshots = {}

    def volume(self, volume_id):
        volume = self.volumes.get(volume_id)
        if volume and volume['status'] == 'uploading' and not self.busy_upload:
            volume['status'] = 'available'
        return dict(volume) if volume else None

    def snapshot(self, snapshot_id):
        return dict(self.snapshots[snapshot_id]) if snapshot_id in self.snapshots else None

    def create_snapshot(self, volume_id, name):
        self.calls.append(('snapshot', volume_id))
        snapshot = {'id': f'snap-{uuid.uuid4().hex[:6]}', 'status': 'available', 'volume_id': volume_id, 'name': name}
        self.snapshots[snapshot['id']] = snapshot
        return dict(snapshot)

    def create_volume(self, snapshot_id, size, name):
        self.calls.append(('volume', snapshot_id))
        volume = {
            'id': f'vol-{uuid.uuid4().hex[:6]}',
            'status': 'available',
            'size': size,
            'attachments': [],
            'name': name,
            'snapshot_id': snapshot_id,
        }
        self.volumes[volume['id']] = volume
        return dict(volume)

    def upload_to_image(self, volume_id, name, disk_format):
        self.calls.append(('upload', volume_id, disk_format))
        if self.fail_upload:
            raise CloudCallError('Uploading failed: HTTP 500', 500)
        self.volumes[volume_id]['status'] = 'uploading'
        image = self.glance.add(name, visibility='private', disk_format=disk_format)
        self.glance._store(image['id'], self.data)
        return image['id']

    def volumes_named(self, name):
        return [dict(v) for v in self.volumes.values() if v.get('name') == name]

    def snapshots_named(self, name):
        return [dict(s) for s in self.snapshots.values() if s.get('name') == name]

    def delete_volume(self, volume_id):
        self.calls.append(('delete_volume', volume_id))
        self.volumes.pop(volume_id, None)

    def delete_snapshot(self, snapshot_id):
        self.calls.append(('delete_snapshot', snapshot_id))
        self.snapshots.pop(snapshot_id, None)


def make(glance, nova, policy=ALLOW_ALL, cinder=None, check_mode=False, wait=True, timeout=60):
    gate = PolicyGate(load_policy_texts([('<test>', policy)]), lambda: CALLER, lambda message: None)
    return Capture(glance, nova, lambda: cinder, gate, CALLER, check_mode, wait, timeout)


def request(**overrides):
    fields = dict(server='web', name='web-golden', visibility='private', properties={'os_distro': 'cirros'})
    fields.update(overrides)
    return CaptureRequest(**fields)


def live(glance):
    return [image for image in glance.images.values() if image['status'] != 'deleted']


def test_a_capture_is_hidden_until_judged_then_published(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    capture = make(glance, nova)
    outcome = capture.run(request())
    image = outcome.image
    assert outcome.changed and image['status'] == 'active'
    assert image['name'] == 'web-golden' and image['visibility'] == 'private' and image['os_hidden'] is False
    assert image[CAPTURED_FROM_PROPERTY] == SERVER_ID and image['os_distro'] == 'cirros'
    assert PENDING_PROPERTY not in image and 'imagegov_capture_name' not in image
    # inherited from the server's image: another file's checksum, another image's history
    assert 'owner_specified.openstack.sha256' not in image and 'imagegov_shared_since' not in image
    patches = [call for call in glance.calls if call[0] == 'patch']
    assert patches[0][2] == ('/os_hidden', '/visibility')  # hidden right after createImage
    assert '/name' in patches[-1][2] and '/os_hidden' in patches[-1][2]  # shown only after the verdict
    assert [d.action for d in capture.gate.decisions] == ['capture', 'upload']
    assert outcome.content['detected_format'] == 'qcow2' and outcome.content['virtual_size'] == 64 * 1024**2


def test_the_same_name_from_the_same_server_is_not_captured_again(qcow2):
    glance = GlanceDouble()
    make(glance, FakeNova(glance, qcow2)).run(request())
    nova = FakeNova(glance, qcow2)
    outcome = make(glance, nova).run(request())
    assert not outcome.changed and outcome.image['name'] == 'web-golden'
    assert not [call for call in nova.calls if call[0] == 'createImage']


def test_check_mode_asks_the_policy_and_makes_nothing(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    capture = make(glance, nova, check_mode=True)
    outcome = capture.run(request())
    assert outcome.changed and outcome.image['name'] == 'web-golden'
    assert glance.mutations() == [] and not [call for call in nova.calls if call[0] == 'createImage']
    assert [d.action for d in capture.gate.decisions] == ['capture']


def test_a_refusal_before_makes_no_request_that_changes_anything(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    with pytest.raises(PolicyRefusal, match='stopped-only'):
        make(glance, nova, STOPPED_ONLY).run(request())
    assert glance.mutations() == [] and not [call for call in nova.calls if call[0] == 'createImage']


def test_a_refusal_of_the_result_deletes_it_before_it_is_visible(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    capture = make(glance, nova, SMALL_DISKS)
    with pytest.raises(PolicyRefusal, match='small-disks'):
        capture.run(request())
    assert live(glance) == []
    (created,) = glance.images.values()
    assert created['os_hidden'] is True and created['name'].startswith('web-golden.capturing-')
    assert any(op.startswith('rolled back: delete') for op in capture.outcome.operations)


def test_a_failed_snapshot_is_a_clear_error_and_leaves_nothing(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, behaviour='fail')
    with pytest.raises(CaptureError, match='went deleted'):
        make(glance, nova).run(request())
    assert live(glance) == []


def test_past_timeout_the_image_is_removed(qcow2, monkeypatch):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, behaviour='hang')
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(_capture.time, 'monotonic', lambda: next(clock))
    with pytest.raises(CaptureError, match=r'after 12 s \(option timeout'):
        make(glance, nova, timeout=12).run(request())
    assert live(glance) == []


def test_a_server_in_error_is_refused_before_any_capture(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, status='ERROR')
    with pytest.raises(CaptureError, match='status ERROR'):
        make(glance, nova).run(request())
    assert glance.mutations() == []


def test_a_name_taken_by_another_image_is_an_error(qcow2):
    glance = GlanceDouble()
    glance.add('web-golden', qcow2)
    nova = FakeNova(glance, qcow2)
    with pytest.raises(CaptureError, match='not captured from server'):
        make(glance, nova).run(request())
    assert not [call for call in nova.calls if call[0] == 'createImage']


def test_a_pending_capture_is_finished_instead_of_captured_again(qcow2):
    glance = GlanceDouble()
    first = make(glance, FakeNova(glance, qcow2), wait=False).run(request())
    assert first.pending and first.image['os_hidden'] is True
    nova = FakeNova(glance, qcow2)
    nova.running = first.image['id']  # Nova's upload, still under way
    outcome = make(glance, nova).run(request())
    assert outcome.image['id'] == first.image['id'] and outcome.image['name'] == 'web-golden'
    assert not [call for call in nova.calls if call[0] == 'createImage']


def test_a_concurrent_capture_is_waited_for(qcow2, monkeypatch):
    """Nova refuses a second createImage (409) while another run's capture is under way; the
    other run's pending image shows up a moment later and is waited for."""
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    nova.conflict = True
    capture = make(glance, nova)
    lookups = []
    real = capture._captures_of

    def captures_of(server_id, name):
        lookups.append(name)
        if len(lookups) == 2:  # the other run's createImage answered meanwhile
            other = glance.add('web-golden.capturing-x', visibility='private', os_hidden=True)
            glance.images[other['id']].update(
                {CAPTURED_FROM_PROPERTY: SERVER_ID, PENDING_PROPERTY: 'true', 'imagegov_capture_name': name}
            )
            nova.running = other['id']
        return real(server_id, name)

    monkeypatch.setattr(capture, '_captures_of', captures_of)
    outcome = capture.run(request())
    assert outcome.image['name'] == 'web-golden' and outcome.image['status'] == 'active'
    assert len(live(glance)) == 1


def test_force_captures_anew_and_retires_the_earlier_capture(qcow2):
    glance = GlanceDouble()
    first = make(glance, FakeNova(glance, qcow2)).run(request())
    capture = make(glance, FakeNova(glance, qcow2))
    outcome = capture.run(request(force=True))
    assert outcome.image['id'] != first.image['id'] and outcome.image['name'] == 'web-golden'
    old = glance.images[first.image['id']]
    assert old['os_hidden'] is True and old['name'].startswith('web-golden.replaced-')
    assert 'retire' in [d.action for d in capture.gate.decisions]


def test_bookkeeping_properties_are_refused():
    with pytest.raises(CaptureError, match='imagegov_captured_from'):
        user_properties({CAPTURED_FROM_PROPERTY: 'x'})
    assert user_properties({'n': 1, 'b': True}) == {'n': '1', 'b': 'true'}


def test_a_volume_backed_server_is_uploaded_from_a_clone_of_its_root_volume(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, volume_backed=True)
    cinder = FakeCinder(glance, qcow2)
    capture = make(glance, nova, cinder=cinder)
    outcome = capture.run(request())
    assert outcome.image['status'] == 'active' and outcome.image['size'] == len(qcow2)
    assert outcome.image[CAPTURED_FROM_PROPERTY] == SERVER_ID and outcome.image['os_hidden'] is False
    assert not [call for call in nova.calls if call[0] == 'createImage']  # no zero-byte Nova image
    kinds = [call[0] for call in cinder.calls]
    assert kinds[:3] == ['snapshot', 'volume', 'upload'] and cinder.calls[2][2] == 'qcow2'
    assert cinder.calls[2][1] != 'vol-root'  # the clone, not the attached volume
    assert cinder.snapshots == {} and list(cinder.volumes) == ['vol-root']
    assert outcome.server['volume_backed'] and outcome.server['root_volume'] == 'vol-root'


def test_a_failed_volume_upload_removes_the_snapshot_and_the_clone(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, volume_backed=True)
    cinder = FakeCinder(glance, qcow2, fail_upload=True)
    with pytest.raises(CloudCallError, match='Uploading failed'):
        make(glance, nova, cinder=cinder).run(request())
    assert cinder.snapshots == {} and list(cinder.volumes) == ['vol-root'] and live(glance) == []


def test_a_refused_volume_capture_leaves_no_image_and_no_scratch(qcow2):
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, volume_backed=True)
    cinder = FakeCinder(glance, qcow2)
    with pytest.raises(PolicyRefusal):
        make(glance, nova, SMALL_DISKS, cinder=cinder).run(request())
    assert live(glance) == [] and cinder.snapshots == {} and list(cinder.volumes) == ['vol-root']


BUILD_RECORD_FOR_PUBLIC = """
version: 1
rules:
  - id: built-by-the-pipeline
    type: required_properties
    actions: [upload]
    params: {properties: [imagegov_shared_since]}
"""


def test_the_verdict_is_on_the_image_as_published_not_on_properties_it_loses(qcow2):
    """Properties inherited from the server's image (or written on the hidden capture by a
    member) that publishing removes must not count for the policy: the server's image here
    carries the required property, the capture as published would not."""
    glance = GlanceDouble()
    capture = make(glance, FakeNova(glance, qcow2), BUILD_RECORD_FOR_PUBLIC)
    with pytest.raises(PolicyRefusal, match='built-by-the-pipeline'):
        capture.run(request())
    assert live(glance) == []
    judged = capture.gate.decisions[-1]
    assert judged.action == 'upload' and not judged.allowed


def test_a_volume_capture_left_pending_has_its_scratch_removed_by_the_run_that_finishes_it(qcow2, monkeypatch):
    """wait=false: Cinder still uploads from the clone when the run ends, so its snapshot and
    clone cannot go yet; the run that finishes the capture removes them, and only them."""
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2, volume_backed=True)
    cinder = FakeCinder(glance, qcow2)
    cinder.busy_upload = True
    clock = iter(range(0, 10**6, 7))
    monkeypatch.setattr(_capture.time, 'monotonic', lambda: next(clock))
    first = make(glance, nova, cinder=cinder, wait=False, timeout=10**5).run(request())
    assert first.pending
    (clone,) = [v for v in cinder.volumes if v != 'vol-root']  # left: Cinder was not done with it
    assert cinder.volumes[clone]['status'] == 'uploading'
    # Look-alike names that are not that run's: a volume not cloned from a snapshot, and a
    # clone of another project volume's snapshot that still exists.
    cinder.snapshots['snap-data'] = {'id': 'snap-data', 'status': 'available', 'volume_id': 'vol-data'}
    for vid, snapshot_id in (('vol-other', None), ('vol-copy', 'snap-data')):
        cinder.volumes[vid] = {
            'id': vid,
            'status': 'available',
            'name': f'{first.image["name"]}.volume',
            'snapshot_id': snapshot_id,
            'attachments': [],
        }
    cinder.busy_upload = False
    outcome = make(glance, FakeNova(glance, qcow2, volume_backed=True), cinder=cinder, timeout=10**5).run(request())
    assert outcome.image['id'] == first.image['id'] and outcome.image['name'] == 'web-golden'
    assert sorted(cinder.volumes) == ['vol-copy', 'vol-other', 'vol-root'] and list(cinder.snapshots) == ['snap-data']


def test_a_name_taken_while_the_capture_ran_is_not_published_twice(qcow2):
    """Another server's capture (or any image) got the name after the check at the start:
    the capture is removed instead of published as a second image of that name."""
    glance = GlanceDouble()
    nova = FakeNova(glance, qcow2)
    real = nova.create_image

    def create_image(server_id, name, metadata):
        image_id = real(server_id, name, metadata)
        glance.add('web-golden', qcow2, **{CAPTURED_FROM_PROPERTY: 'another-server'})
        return image_id

    nova.create_image = create_image
    capture = make(glance, nova)
    with pytest.raises(CaptureError, match="'web-golden' that was not captured from server .* appeared"):
        capture.run(request())
    assert [image['name'] for image in live(glance)] == ['web-golden']
    assert glance.images[next(iter(glance.images))]['status'] == 'deleted'  # the capture


@pytest.mark.parametrize('joined', ['left by wait=false', 'another run, Nova busy'])
def test_a_pending_capture_of_another_run_is_left_pending_at_the_timeout_not_deleted(qcow2, monkeypatch, joined):
    # The run that started it may still be waiting for it: deleting it would fail that run.
    glance = GlanceDouble()
    if joined == 'left by wait=false':
        pending = make(glance, FakeNova(glance, qcow2), wait=False).run(request()).image
        nova = FakeNova(glance, qcow2, behaviour='hang')
        nova.running = pending['id']
    else:
        nova = FakeNova(glance, qcow2, behaviour='hang')
        pending = nova.glance.add('web-golden.capturing-x', visibility='private', os_hidden=True)
        glance.images[pending['id']].update(
            {CAPTURED_FROM_PROPERTY: SERVER_ID, PENDING_PROPERTY: 'true', 'imagegov_capture_name': 'web-golden'}
        )
        nova.running, nova.conflict = pending['id'], True
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(_capture.time, 'monotonic', lambda: next(clock))
    capture = make(glance, nova, timeout=12)
    if joined != 'left by wait=false':
        lookups = []

        def captures_of(server_id, name):  # none at the start; the other run's once Nova said busy
            lookups.append(name)
            return [], ([glance.images[pending['id']]] if len(lookups) > 1 else [])

        monkeypatch.setattr(capture, '_captures_of', captures_of)
    with pytest.raises(CaptureError, match='was left pending, hidden and private'):
        capture.run(request())
    if joined != 'left by wait=false':
        assert [call[0] for call in nova.calls].count('createImage') == 1  # refused: busy
    kept = glance.images[pending['id']]
    assert kept['status'] != 'deleted' and kept[PENDING_PROPERTY] == 'true' and kept['os_hidden'] is True


def test_a_pending_image_nobody_makes_is_removed_at_the_timeout_so_the_name_is_not_blocked(qcow2, monkeypatch):
    # A dead run's capture, or one a member planted with the marks: queued, no task on the server.
    glance = GlanceDouble()
    planted = glance.add('web-golden.capturing-x', visibility='private', os_hidden=True)
    glance.images[planted['id']].update(
        {CAPTURED_FROM_PROPERTY: SERVER_ID, PENDING_PROPERTY: 'true', 'imagegov_capture_name': 'web-golden'}
    )
    glance.images[planted['id']]['status'] = 'queued'
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(_capture.time, 'monotonic', lambda: next(clock))
    with pytest.raises(CaptureError, match='was removed; raise timeout'):
        make(glance, FakeNova(glance, qcow2), timeout=12).run(request())
    assert glance.images[planted['id']]['status'] == 'deleted'
    monkeypatch.setattr(_capture.time, 'monotonic', lambda: 0)
    outcome = make(glance, FakeNova(glance, qcow2)).run(request())
    assert outcome.image['name'] == 'web-golden' and outcome.image['status'] == 'active'
