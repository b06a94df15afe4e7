"""ImageReconciler against the in-memory Glance: every create, upload, replace, retire,
settle and rollback path, and the policy action each change is asked as."""

from __future__ import annotations

import hashlib

import pytest
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils._content import Source
from ansible_collections.imagegov.openstack.plugins.module_utils._glance import GlanceError
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache, derived_id
from ansible_collections.imagegov.openstack.plugins.module_utils._image import (
    ContentRequest,
    ImageReconciler,
    ImageRequestError,
    desired_image,
    retired_name,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate, PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils._state import SHA256_PROPERTY, DesiredImage
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

OWNER = 'p-alpha'
ACTOR = {'user': 'alice', 'project': 'alpha', 'project_id': OWNER, 'roles': ['member']}
NOTHING = 'version: 1\nrules: []\n'


class Gate(PolicyGate):
    """The real gate, remembering which actions were asked."""

    def __init__(self, text: str = NOTHING, usage=None) -> None:
        super().__init__(load_policy_texts([('test.yml', text)]), lambda: ACTOR, lambda msg: None)
        self.usage_provider = usage or (lambda image: {'servers': [], 'images': [], 'not_checked': []})

    @property
    def actions(self):
        return [decision.action for decision in self.decisions]


def refusing(action: str) -> str:
    return (
        'version: 1\nrules:\n  - id: no-'
        + action
        + '\n    type: expression\n    actions: ['
        + action
        + ']\n    params: {assert: "`false`"}\n'
    )


@pytest.fixture
def files(tmp_path):
    paths = {}
    for label in ('a', 'b'):
        path = tmp_path / f'{label}.raw'
        path.write_bytes(label.encode() * 4096)
        paths[label] = path
    return paths


@pytest.fixture
def digests(tmp_path):
    return DigestCache(str(tmp_path / 'cache'))


def reconciler(glance, gate=None, digests=None, check_mode=False):
    return ImageReconciler(glance, OWNER, check_mode, True, 5, gate or Gate(), digests)


def desired(name='img', **attributes):
    return DesiredImage(attributes=dict(name=name, disk_format='raw', container_format='bare', **attributes))


def content(path, checksum=None, method='put'):
    data = path.read_bytes()
    expected = {'sha256': checksum or hashlib.sha256(data).hexdigest()}
    return ContentRequest(Source(filename=str(path)), method, expected, 'replace')


def sha512(path):
    return hashlib.sha512(path.read_bytes()).hexdigest()


def test_create_uses_the_derived_id_and_records_the_verified_sha256(files, digests):
    glance, gate = GlanceDouble(), Gate()
    outcome = reconciler(glance, gate, digests).present([], desired(), content(files['a']), False)
    image = outcome.after
    assert image['id'] == derived_id(OWNER, 'img', 0)
    assert image[SHA256_PROPERTY] == hashlib.sha256(files['a'].read_bytes()).hexdigest()
    assert image['os_hash_value'] == sha512(files['a'])
    assert gate.actions == ['create', 'upload']
    assert digests.digest(image[SHA256_PROPERTY], 'sha512') == sha512(files['a'])


def test_an_unchanged_image_is_proven_by_glances_hash_without_reading(files, digests):
    glance = GlanceDouble()
    first = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    files['a'].unlink()  # not even readable: the digest cache and os_hash_value suffice
    request = ContentRequest(Source(filename=str(files['a'])), 'put', {'sha256': first[SHA256_PROPERTY]}, 'replace')
    outcome = reconciler(glance, digests=digests).present([first], desired(), request, False)
    assert not outcome.changed and outcome.content['identity'] == 'verified'


def test_a_sha512_checksum_proves_an_image_unchanged_on_any_host(files, tmp_path):
    glance = GlanceDouble()
    first = (
        reconciler(glance, digests=DigestCache(str(tmp_path / 'one')))
        .present([], desired(), content(files['a']), False)
        .after
    )
    files['a'].unlink()
    request = ContentRequest(Source(filename=str(files['a'])), 'put', {'sha512': first['os_hash_value']}, 'replace')
    outcome = reconciler(glance, digests=DigestCache(str(tmp_path / 'two'))).present([first], desired(), request, False)
    assert not outcome.changed


def test_a_concurrent_run_that_created_the_image_first_is_joined(files, digests):
    glance = GlanceDouble()
    winner = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    calls_before = len(glance.mutations())
    # The loser listed before the winner created it: it saw nothing.
    outcome = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False)
    assert outcome.after['id'] == winner['id']
    assert not outcome.changed
    assert [call[0] for call in glance.mutations()[calls_before:]] == ['create']  # the 409, nothing else
    assert len(glance.images_named('img')) == 1


def test_ids_of_deleted_images_are_skipped(files, digests):
    glance = GlanceDouble()
    glance.used_ids.update({derived_id(OWNER, 'img', 0), derived_id(OWNER, 'img', 1)})
    image = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    assert image['id'] == derived_id(OWNER, 'img', 2)


def test_an_id_taken_by_another_projects_image_is_skipped(files, digests):
    glance = GlanceDouble()
    glance.add('img', b'x', image_id=derived_id(OWNER, 'img', 0), owner='p-beta')
    image = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    assert image['id'] == derived_id(OWNER, 'img', 1) and image['owner'] == OWNER


def test_new_bytes_replace_and_retire_the_original_as_asked(files, digests):
    glance, gate = GlanceDouble(), Gate()
    old = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    outcome = reconciler(glance, gate, digests).present([old], desired(), content(files['b']), False)
    new = outcome.after
    assert new['id'] == derived_id(OWNER, 'img', 1)
    retired = glance.images[old['id']]
    assert retired['name'].startswith('img.replaced-') and retired['os_hidden']
    assert retired['imagegov_replaced_by'] == new['id']
    assert gate.actions == ['create', 'upload', 'retire']


def test_a_failed_upload_of_the_replacement_leaves_the_original_as_it_was(files, digests):
    glance = GlanceDouble()
    old = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    glance.fail_on('upload')
    with pytest.raises(Exception, match='upload failed'):
        reconciler(glance, digests=digests).present([old], desired(), content(files['b']), False)
    assert glance.images[old['id']]['name'] == 'img'
    assert [image['id'] for image in glance.images_named('img')] == [old['id']]


def test_a_failed_retire_removes_the_replacement(files, digests):
    glance = GlanceDouble()
    old = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    rec = reconciler(glance, digests=digests)

    def failing_retire(*args, **kwargs):
        raise RuntimeError('retire failed')

    rec._retire = failing_retire
    with pytest.raises(RuntimeError, match='retire failed'):
        rec.present([old], desired(), content(files['b']), False)
    assert [image['id'] for image in glance.images_named('img')] == [old['id']]
    assert any(op.startswith('rolled back: delete') for op in rec.outcome.operations)


def test_data_stored_differently_from_what_was_sent_is_rolled_back(files, digests):
    glance = GlanceDouble()
    glance.corrupt_upload = True
    with pytest.raises(ImageRequestError, match='changed on the way'):
        reconciler(glance, digests=digests).present([], desired(), content(files['a']), False)
    assert glance.images_named('img') == []


def test_a_forged_sha256_property_does_not_make_an_image_unchanged(files, digests):
    glance = GlanceDouble()
    forged = glance.add(
        'img', files['b'].read_bytes(), **{SHA256_PROPERTY: hashlib.sha256(files['a'].read_bytes()).hexdigest()}
    )
    outcome = reconciler(glance, digests=digests).present([forged], desired(), content(files['a']), False)
    assert outcome.changed and outcome.after['id'] != forged['id']
    assert outcome.operations[0].startswith(f'replace {forged["id"]}: content changed')
    assert glance.images[forged['id']]['os_hidden']


def test_an_image_another_tool_uploaded_is_adopted_by_recording_its_sha256(files, digests):
    glance = GlanceDouble()
    other = glance.add('img', files['a'].read_bytes())
    outcome = reconciler(glance, digests=digests).present([other], desired(), content(files['a']), False)
    assert outcome.after['id'] == other['id']
    assert outcome.after[SHA256_PROPERTY] == hashlib.sha256(files['a'].read_bytes()).hexdigest()


def test_identical_duplicates_made_by_this_collection_keep_the_oldest_and_delete_the_rest(files, digests):
    glance, gate = GlanceDouble(), Gate()
    data = files['a'].read_bytes()
    first = glance.add('img', data, image_id=derived_id(OWNER, 'img', 0))
    second = glance.add('img', data, image_id=derived_id(OWNER, 'img', 1))
    outcome = reconciler(glance, gate, digests).present([second, first], desired(), content(files['a']), False)
    assert outcome.after['id'] == first['id']
    assert glance.images[second['id']]['status'] == 'deleted'
    assert 'delete' in gate.actions


def test_duplicates_not_provably_ours_are_retired_not_deleted(files, digests):
    glance = GlanceDouble()
    data = files['a'].read_bytes()
    first, second = glance.add('img', data), glance.add('img', data)
    outcome = reconciler(glance, digests=digests).present([first, second], desired(), content(files['a']), False)
    assert outcome.after['id'] == first['id']
    assert glance.images[second['id']]['name'].startswith('img.duplicate-')


def test_duplicates_with_different_data_keep_the_wanted_bytes(files, digests):
    glance = GlanceDouble()
    old = glance.add('img', files['a'].read_bytes())
    new = glance.add('img', files['b'].read_bytes())
    outcome = reconciler(glance, digests=digests).present([old, new], desired(), content(files['b']), False)
    assert outcome.after['id'] == new['id']
    assert glance.images[old['id']]['name'].startswith('img.replaced-')


def test_duplicates_with_different_data_and_no_source_are_an_error_naming_both(files):
    glance = GlanceDouble()
    old, new = glance.add('img', b'a'), glance.add('img', b'b')
    request = ContentRequest(None, 'put', {}, 'replace')
    with pytest.raises(ImageRequestError, match=f'{old["id"]}.*{new["id"]}.*give the id option'):
        reconciler(glance).present([old, new], desired(), request, False)


def test_a_patch_refused_because_the_image_changed_meanwhile_is_planned_again(files, digests):
    glance = GlanceDouble()
    image = glance.add('img', b'a', foo='1')
    stale = dict(image)
    glance.images[image['id']].pop('foo')  # a concurrent run removed it first
    want = desired()
    want.purge_properties = True
    outcome = reconciler(glance, digests=digests).present(
        [stale], want, ContentRequest(None, 'put', {}, 'replace'), False
    )
    assert 'foo' not in outcome.after


def test_reactivation_is_asked_and_a_refusal_sends_nothing(files):
    glance = GlanceDouble()
    image = glance.add('img', b'a', status='deactivated')
    with pytest.raises(PolicyRefusal):
        reconciler(glance, Gate(refusing('reactivate'))).present(
            [image], desired(), ContentRequest(None, 'put', {}, 'replace'), False
        )
    assert glance.mutations() == []


def test_narrowing_asks_with_the_members_who_lose_access():
    glance, gate = GlanceDouble(), Gate()
    image = glance.add('img', b'a', visibility='shared')
    glance.members[image['id']] = {'p-beta': 'accepted'}
    reconciler(glance, gate).present(
        [image], desired(visibility='private'), ContentRequest(None, 'put', {}, 'replace'), False
    )
    narrow = next(d for d in gate.decisions if d.action == 'narrow')
    assert narrow.action == 'narrow' and gate.actions == ['update', 'narrow']


def test_an_owner_change_that_takes_the_image_from_its_project_is_a_narrowing():
    glance, gate = GlanceDouble(), Gate()
    image = glance.add('img', b'a', visibility='private')
    reconciler(glance, gate).present(
        [image], desired(owner='p-beta'), ContentRequest(None, 'put', {}, 'replace'), False
    )
    assert gate.actions == ['update', 'narrow']


def test_a_refused_narrowing_sends_nothing():
    glance = GlanceDouble()
    image = glance.add('img', b'a', visibility='public')
    with pytest.raises(PolicyRefusal):
        reconciler(glance, Gate(refusing('narrow'))).present(
            [image], desired(visibility='private'), ContentRequest(None, 'put', {}, 'replace'), False
        )
    assert glance.mutations() == []


def test_deleting_a_protected_while_used_image_asks_unprotect_and_delete():
    glance, gate = GlanceDouble(), Gate()
    image = glance.add('img', b'a', protected=True, imagegov_protected_while_used='true')
    reconciler(glance, gate).absent([image], gate.usage_provider)
    assert gate.actions == ['delete', 'unprotect']
    assert glance.images[image['id']]['status'] == 'deleted'


def test_a_failed_delete_after_unprotecting_protects_again():
    glance = GlanceDouble()
    image = glance.add('img', b'a', protected=True, imagegov_protected_while_used='true')
    glance.fail_on('delete')
    with pytest.raises(GlanceError, match='delete failed'):
        reconciler(glance).absent([image], Gate().usage_provider)
    assert glance.images[image['id']]['protected'] is True


def test_web_download_with_a_wrong_checksum_is_removed_and_never_recorded(files, digests):
    glance = GlanceDouble()
    glance.web['http://x/a.raw'] = files['a'].read_bytes()
    request = ContentRequest(
        Source(url='http://x/a.raw'), 'web-download', {'sha256': hashlib.sha256(b'other').hexdigest()}, 'replace'
    )
    with pytest.raises(ImageRequestError, match='checksum expects'):
        reconciler(glance, digests=digests).present([], desired(), request, False)
    assert glance.images_named('img') == []


def test_web_download_with_a_sha512_is_verified_on_glances_hash(files, digests):
    glance, gate = GlanceDouble(), Gate()
    glance.web['http://x/a.raw'] = files['a'].read_bytes()
    request = ContentRequest(Source(url='http://x/a.raw'), 'web-download', {'sha512': sha512(files['a'])}, 'replace')
    image = reconciler(glance, gate, digests).present([], desired(), request, False).after
    assert image['status'] == 'active' and gate.actions == ['create', 'upload']
    assert [call[0] for call in glance.calls].count('download') == 1  # the header only


def test_bytes_rewritten_by_an_import_plugin_are_judged_as_stored(files, digests):
    glance = GlanceDouble()
    glance.rewrite = lambda data: b'Z' * (len(data) * 1000)
    big = 'version: 1\nrules:\n  - id: small\n    type: max_size\n    params: {max_gib: 0.001}\n'
    with pytest.raises(PolicyRefusal, match='small'):
        reconciler(glance, Gate(big), digests).present(
            [], desired(), content(files['a'], method='glance-direct'), False
        )
    assert glance.images_named('img') == []


def test_a_rewritten_import_is_recognised_later_through_this_hosts_record(files, digests):
    glance = GlanceDouble()
    glance.rewrite = lambda data: data[::-1]
    first = (
        reconciler(glance, digests=digests)
        .present([], desired(), content(files['a'], method='glance-direct'), False)
        .after
    )
    again = reconciler(glance, digests=digests).present(
        [first], desired(), content(files['a'], method='glance-direct'), False
    )
    assert not again.changed


def test_retired_names_stay_within_glances_limit():
    name = 'é' * 255
    retired = retired_name(name, '20261125T120000Z')
    assert len(retired) == 255 and retired.endswith('.replaced-20261125T120000Z')


def test_the_digest_cache_is_written_once_and_merged_with_other_runs(tmp_path):
    first, second = DigestCache(str(tmp_path)), DigestCache(str(tmp_path))
    first.remember({'sha256': 'a' * 64, 'size': 1, 'glance_hash': {'algo': 'sha512', 'value': 'x'}})
    second.remember({'sha256': 'b' * 64, 'size': 2, 'glance_hash': {'algo': 'sha512', 'value': 'y'}})
    assert not (tmp_path / 'digests.json').exists()  # nothing written per digest
    first.flush()
    second.flush()
    fresh = DigestCache(str(tmp_path))
    assert fresh.digest('a' * 64, 'sha512') == 'x' and fresh.digest('b' * 64, 'sha512') == 'y'


def test_check_mode_plans_create_and_upload_and_sends_nothing(files, digests):
    glance, gate = GlanceDouble(), Gate()
    outcome = reconciler(glance, gate, digests, check_mode=True).present([], desired(), content(files['a']), False)
    assert outcome.changed and outcome.after['status'] == 'active'
    assert [op.kind.value for op in outcome.operations] == ['create', 'upload']
    assert glance.mutations() == [] and gate.actions == ['create', 'upload']


def test_check_mode_of_a_web_download_asks_with_the_header_facts(files, digests):
    glance, gate = GlanceDouble(), Gate()
    request = ContentRequest(
        Source(url='http://x/a.raw'),
        'web-download',
        {'sha256': 'a' * 64},
        'replace',
        prescan={'detected_format': 'raw', 'size': 10, 'virtual_size': 10},
    )
    outcome = reconciler(glance, gate, digests, check_mode=True).present([], desired(), request, False)
    assert outcome.after['status'] == 'active' and glance.mutations() == []


def test_an_upload_by_another_run_is_waited_for_then_taken_as_it_is(files, digests):
    glance = GlanceDouble()
    first = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    glance.images[first['id']]['status'] = 'saving'
    glance.status_script[first['id']] = ['saving', 'active']
    outcome = reconciler(glance, digests=digests).present(
        [dict(first, status='saving')], desired(), content(files['a']), False
    )
    assert not outcome.changed and outcome.after['id'] == first['id']


def test_a_record_left_queued_is_filled_by_the_next_run(files, digests, monkeypatch):
    from ansible_collections.imagegov.openstack.plugins.module_utils import _image

    monkeypatch.setattr(_image, 'ABANDONED_AFTER', 0)
    glance = GlanceDouble()
    queued = glance.add('img')
    outcome = reconciler(glance, digests=digests).present([queued], desired(), content(files['a']), False)
    assert outcome.after['id'] == queued['id'] and outcome.after['status'] == 'active'
    assert [op.kind.value for op in outcome.operations] == ['upload']


def test_an_import_that_fails_in_glance_is_removed(files, digests):
    glance = GlanceDouble()
    glance.fail_on('import')
    with pytest.raises(GlanceError):
        reconciler(glance, digests=digests).present([], desired(), content(files['a'], method='glance-direct'), False)
    assert glance.images_named('img') == []


def test_an_image_that_never_becomes_active_is_removed_after_the_timeout(files, digests, monkeypatch):
    from ansible_collections.imagegov.openstack.plugins.module_utils import _image

    monkeypatch.setattr(_image.time, 'sleep', lambda seconds: None)
    glance = GlanceDouble()
    glance.web['http://x/a.raw'] = files['a'].read_bytes()
    original = glance.start_import

    def stuck(image_id, method, uri=None):
        original(image_id, method, uri)
        glance.images[image_id]['status'] = 'importing'

    glance.start_import = stuck
    rec = ImageReconciler(glance, OWNER, False, True, 0, Gate(), digests)
    request = ContentRequest(
        Source(url='http://x/a.raw'),
        'web-download',
        {'sha256': 'a' * 64},
        'replace',
        prescan={'detected_format': 'raw'},
    )
    with pytest.raises(ImageRequestError, match='still importing after 0 s'):
        rec.present([], desired(), request, False)
    assert glance.images_named('img') == []


def test_protection_follows_usage_and_only_the_collections_own_is_lifted(digests):
    glance, gate = GlanceDouble(), Gate()
    image = glance.add('img', b'a')
    used = {'servers': [{'id': 's'}], 'images': [], 'not_checked': []}
    outcome = reconciler(glance, gate, digests).protect_while_used(image, lambda image: used)
    assert outcome.after['protected'] and outcome.after['imagegov_protected_while_used'] == 'true'
    unused = {'servers': [], 'images': [], 'not_checked': []}
    after = reconciler(glance, gate, digests).protect_while_used(outcome.after, lambda image: unused).after
    assert not after['protected'] and 'imagegov_protected_while_used' not in after
    manual = glance.add('manual', b'b', protected=True)
    kept = reconciler(glance, gate, digests).protect_while_used(manual, lambda image: unused).after
    assert kept['protected'] and gate.actions == ['protect', 'unprotect']


def test_deleting_a_protected_image_needs_the_collections_mark_and_no_users(digests):
    glance = GlanceDouble()
    manual = glance.add('img', b'a', protected=True)
    with pytest.raises(ImageRequestError, match='protected=false first'):
        reconciler(glance, digests=digests).absent([manual], Gate().usage_provider)
    marked = glance.add('img2', b'a', protected=True, imagegov_protected_while_used='true')
    used = {'servers': [{'id': 's', 'name': 'web', 'project_id': 'p'}], 'images': [], 'not_checked': []}
    with pytest.raises(ImageRequestError, match='server web'):
        reconciler(glance, digests=digests).absent([marked], lambda image: used)
    with pytest.raises(ImageRequestError, match='Give the id option'):
        reconciler(glance, digests=digests).absent([manual, marked], Gate().usage_provider)


def test_a_format_glance_has_no_name_for_is_refused_before_create(tmp_path, digests):
    import shutil
    import subprocess

    if shutil.which('qemu-img') is None:
        pytest.skip('needs qemu-img')
    path = tmp_path / 'disk.qed'
    subprocess.run(['qemu-img', 'create', '-f', 'qed', str(path), '1G'], check=True, capture_output=True)
    glance = GlanceDouble()
    request = ContentRequest(Source(filename=str(path)), 'put', {}, 'replace')
    with pytest.raises(ImageRequestError, match='qed, which Glance has no disk_format for'):
        reconciler(glance, digests=digests).present([], DesiredImage(attributes={'name': 'img'}), request, False)
    assert glance.mutations() == []


def test_new_data_with_on_content_change_fail_names_both(files, digests):
    glance = GlanceDouble()
    old = reconciler(glance, digests=digests).present([], desired(), content(files['a']), False).after
    request = content(files['b'])
    request.on_content_change = 'fail'
    with pytest.raises(ImageRequestError, match='needs new data: content changed'):
        reconciler(glance, digests=digests).present([old], desired(), request, False)


def test_deactivation_is_asked_first_and_a_queued_image_cannot_be_deactivated(files, digests):
    glance, gate = GlanceDouble(), Gate()
    image = reconciler(glance, gate, digests).present([], desired(), content(files['a']), True).after
    assert image['status'] == 'deactivated' and gate.actions[0] == 'deactivate'
    queued = glance.add('empty')
    with pytest.raises(ImageRequestError, match='only an active image can be deactivated'):
        reconciler(glance, digests=digests).present(
            [queued], desired('empty'), ContentRequest(None, 'put', {}, 'replace'), True
        )


def test_build_records_are_the_only_bookkeeping_the_properties_may_set():
    records = {'imagegov_base_sha256': 'a' * 64, 'imagegov_build_hash': 'b' * 64}
    desired = desired_image({'name': 'img', 'properties': dict(records, os_distro='debian')}, None, None, None)
    assert desired.properties == dict(records, os_distro='debian')
    for reserved in ('imagegov_shared_since', 'imagegov_catalog', 'imagegov_build_other'):
        with pytest.raises(ImageRequestError, match=f'{reserved}.*bookkeeping of this collection'):
            desired_image({'name': 'img', 'properties': {reserved: 'x'}}, None, None, None)
