"""Attacks on catalog series (alias, keep_last, remembered builds, immutability, checksum
files, unmanaged/deactivated entries, fixed ids) against the in-memory Glance."""

from __future__ import annotations

import hashlib

import pytest
from glance_double import GlanceDouble
from test_catalog_reconciler import OWNER, Run, catalog

from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import MANAGED_BY_PROPERTY
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import PlanAction
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import CatalogError

ALIAS = 'Ubuntu 24.04'


@pytest.fixture
def builds(tmp_path):
    found = {}
    for version in ('1', '2', '3', '9', '10'):
        path = tmp_path / f'build-{version}.raw'
        path.write_bytes(version.encode() * 4096)
        found[version] = (path, hashlib.sha512(path.read_bytes()).hexdigest())
    return found


def version_line(builds, v, extra=''):
    path, sha = builds[v]
    return f'      - {{version: "{v}", source: {{file: {path}}}, checksum: "sha512:{sha}"{extra}}}\n'


def series(tmp_path, builds, versions, keep=1, keep_last=3, extra='', series_extra='', tail=''):
    """versions: list of version strings or (version, extra-yaml) pairs."""
    lines = ''
    for v in versions:
        v, more = (v, '') if isinstance(v, str) else v
        lines += version_line(builds, v, more)
    text = f"""
version: 1
images:
  - series: ubuntu
    name: "Ubuntu 24.04 ({{version}})"
    alias: {ALIAS}
    keep: {keep}
    keep_last: {keep_last}
    disk_format: raw
    properties: {{os_distro: ubuntu}}
{series_extra}    versions:
{lines}{tail}"""
    return catalog(tmp_path, {}, text.replace('{', '{{').replace('}', '}}'))


def reconcile(glance, tmp_path, wanted, prune=False, usage=None, policy=None):
    kwargs = {}
    if policy:
        kwargs['policy'] = policy
    run = Run(glance, tmp_path, usage=usage, **kwargs)
    plan = run.reconciler.plan(wanted, prune=prune)
    return plan, run.reconciler.apply(wanted, plan)


def plan_only(glance, tmp_path, wanted, prune=False):
    return Run(glance, tmp_path).reconciler.plan(wanted, prune=prune)


def live(glance):
    return [i for i in glance.images.values() if i['status'] != 'deleted']


def named(glance, name):
    return [i for i in live(glance) if i.get('name') == name]


def by_version(glance, version):
    return [i for i in live(glance) if i.get('imagegov_version') == version]


def not_noop(items):
    return {item.name: item.action.value for item in items if item.action is not PlanAction.NOOP}


# -- A: keep_last deletes the old alias holder before the name moves --------------------------


def test_a_failing_upload_of_the_new_build_does_not_leave_the_plain_name_missing(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1'], keep_last=1))
    assert named(glance, ALIAS)
    glance.corrupt_upload = True  # the new build's upload fails its checksum
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1'], keep_last=1))
    assert named(glance, ALIAS), 'the plain name went missing: its holder was deleted before the new build was active'


# -- B: newest build deactivated -----------------------------------------------------------------


def test_deactivating_the_newest_build_moves_the_plain_name_back_and_converges(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1']))
    assert named(glance, ALIAS)[0]['imagegov_version'] == '2'
    wanted = series(tmp_path, builds, [('2', ', state: deactivated'), '1'])
    plan, done = reconcile(glance, tmp_path, wanted)
    again = plan_only(glance, tmp_path, wanted)
    holder = named(glance, ALIAS)
    assert [i['status'] for i in holder] == ['active'], f'the plain name is on {holder}'
    assert not not_noop(again), 'a second plan after the apply is not all noop'


IN_USE = {'servers': [{'id': 's1', 'name': 'web'}], 'images': []}


# -- C: a forged imagegov_released on a remembered build outranks the file's newest build --------


def test_a_forged_release_date_on_a_remembered_build_does_not_delete_the_newest_build(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    first = series(tmp_path, builds, [('1', ', released: "2026-11-01"')], keep_last=1)
    reconcile(glance, tmp_path, first)
    [old] = by_version(glance, '1')
    usage = {old['id']: IN_USE}  # the old build is kept for a server that still uses it
    second = series(tmp_path, builds, [('2', ', released: "2026-11-02"')], keep_last=1)
    reconcile(glance, tmp_path, second, usage=usage)
    assert named(glance, ALIAS)[0]['imagegov_version'] == '2'
    # a project member edits a property anyone in the project can edit
    glance.images[old['id']]['imagegov_released'] = '2099-01-01'
    plan, done = reconcile(glance, tmp_path, second, usage=usage)
    assert by_version(glance, '2'), 'the newest, active build of the file was deleted'
    assert named(glance, ALIAS), 'the plain name went missing'


# -- D: versions compare as text: a remembered "9" outranks the file's "10" ---------------------


def test_bumping_version_9_to_10_in_place_keeps_the_new_build(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['9'], keep_last=1))
    [old] = by_version(glance, '9')
    usage = {old['id']: IN_USE}
    wanted = series(tmp_path, builds, ['10'], keep_last=1)
    plan, done = reconcile(glance, tmp_path, wanted, usage=usage)
    assert by_version(glance, '10'), 'the only version in the file was never uploaded'
    assert named(glance, ALIAS)[0]['imagegov_version'] == '10'


# -- E: the build's records copied onto an older image of the project -------------------------


def test_build_records_copied_onto_an_older_image_do_not_hijack_the_build(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    bystander = glance.add('team-scratch', b'scratch' * 100, status='active')
    wanted = series(tmp_path, builds, ['1'])
    reconcile(glance, tmp_path, wanted)
    [real] = named(glance, ALIAS)
    # a member copies the bookkeeping onto their own (older) image
    glance.images[bystander['id']].update(
        {MANAGED_BY_PROPERTY: 'gold', 'imagegov_series': 'ubuntu', 'imagegov_version': '1'}
    )
    plan, done = reconcile(glance, tmp_path, wanted)
    assert glance.images[real['id']]['name'] == ALIAS, 'the real build lost the plain name'
    assert glance.images[bystander['id']]['name'] == 'team-scratch', 'the bystander image was renamed'
    assert len([i for i in live(glance) if i.get('imagegov_version') == '1']) <= 2, 'a duplicate build was uploaded'


# -- F: a crash between the two rename requests -------------------------------------------------
def test_a_run_killed_between_the_two_renames_is_finished_by_the_next_run(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    wanted = series(tmp_path, builds, ['2', '1'])
    reconcile(glance, tmp_path, wanted)
    [new] = by_version(glance, '2')
    [old] = by_version(glance, '1')
    # roll back to the moment after the first request: both carry the name, old still visible
    glance.images[old['id']].update(name=ALIAS, os_hidden=False)
    assert len(named(glance, ALIAS)) == 2
    plan = plan_only(glance, tmp_path, wanted)
    assert not_noop(plan), 'the plan does not show the repair'
    reconcile(glance, tmp_path, wanted)
    assert [i['id'] for i in named(glance, ALIAS)] == [new['id']]
    assert glance.images[old['id']]['os_hidden'] is True
    assert not not_noop(plan_only(glance, tmp_path, wanted))


def test_a_run_killed_before_the_first_rename_is_finished_by_the_next_run(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    wanted = series(tmp_path, builds, ['2', '1'])
    glance.fail_on('patch', 2)  # the first rename fails twice (the retry too)
    plan, done = reconcile(glance, tmp_path, wanted)
    assert named(glance, ALIAS)[0]['imagegov_version'] == '1'
    reconcile(glance, tmp_path, wanted)
    assert [i['imagegov_version'] for i in named(glance, ALIAS)] == ['2']
    assert not not_noop(plan_only(glance, tmp_path, wanted))


# -- G: new bytes for a published build (a re-spun version) ---------------------------------------


def test_a_published_build_replaced_for_new_bytes_keeps_the_series_metadata(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    wanted = series(tmp_path, builds, ['1'])
    reconcile(glance, tmp_path, wanted)
    builds['1'][0].write_bytes(b'respin' * 1000)  # the vendor re-spun the build; checksum updated
    builds['1'] = (builds['1'][0], hashlib.sha512(builds['1'][0].read_bytes()).hexdigest())
    wanted = series(tmp_path, builds, ['1'])
    plan, done = reconcile(glance, tmp_path, wanted)
    [holder] = named(glance, ALIAS)
    assert holder['os_hash_value'] == builds['1'][1]
    assert holder.get('os_distro') == 'ubuntu', 'the replacement lost the series properties'
    assert holder.get('imagegov_series') == 'ubuntu' and holder.get(MANAGED_BY_PROPERTY) == 'gold'
    assert not not_noop(plan_only(glance, tmp_path, wanted))


# -- H: a checksum file that vanished upstream for an old, published build ----------------------


def test_an_old_builds_vanished_checksum_file_does_not_block_its_retirement(tmp_path, builds, monkeypatch):
    import dataclasses

    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import checksums

    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    wanted = series(tmp_path, builds, ['2', '1'])
    # build 1 was published from a url with a checksum file; upstream has since removed it
    old = next(i for i in wanted.images if i.version == '1')
    index = wanted.images.index(old)
    wanted.images[index] = dataclasses.replace(
        old, expected={}, sha256=None, checksum_url='https://x/1/SHA256SUMS', source={'url': 'https://x/1/build-1.raw'}
    )

    def gone(url, *args, **kwargs):
        raise checksums.ChecksumFileError(f'checksum URL {url}: the server answered HTTP 404 Not Found')

    monkeypatch.setattr(checksums, 'fetch_text', gone)
    [first] = by_version(glance, '1')
    glance.images[first['id']]['os_distro'] = 'edited'  # drift on the old build, besides
    glance.images[first['id']]['visibility'] = 'public'
    plan, done = reconcile(glance, tmp_path, wanted)
    item = next(i for i in done if i.name == 'Ubuntu 24.04 (1)')
    assert item.action is not PlanAction.ERROR, item.reason
    assert glance.images[first['id']]['visibility'] == 'private'


# -- I: access drift on a published build is put back; series edits are not ---------------------
def test_access_drift_on_a_published_build_is_put_back_but_series_metadata_is_not(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    wanted = series(tmp_path, builds, ['2', '1'])
    reconcile(glance, tmp_path, wanted)
    [old] = by_version(glance, '1')
    glance.images[old['id']].update(visibility='public', protected=True, os_hidden=False)
    plan, done = reconcile(glance, tmp_path, wanted)
    assert not_noop(plan) == {'Ubuntu 24.04 (1)': 'update'}
    image = glance.images[old['id']]
    assert (image['visibility'], image['protected'], image['os_hidden']) == ('private', False, True)
    assert not not_noop(plan_only(glance, tmp_path, wanted))


# -- J: the loader refuses ambiguous plain names ----------------------------------------------
def test_two_series_with_the_same_alias_or_an_image_named_like_an_alias_are_refused(tmp_path, builds):
    two = series(tmp_path, builds, ['1'], tail='')  # sanity: one series loads
    assert two.series
    for tail in (
        '  - {series: other, name: "Other ({version})", alias: "Ubuntu 24.04", disk_format: raw,\n'
        f'     versions: [{{version: "1", source: {{file: {builds["1"][0]}}}, checksum: "sha512:{builds["1"][1]}"}}]}}\n',
        '  - {name: "Ubuntu 24.04", state: unmanaged}\n',
        '  - {name: "Ubuntu 24.04 (3)", state: unmanaged}\n',
    ):
        with pytest.raises(CatalogError) as caught:
            series(tmp_path, builds, ['3', '1'], tail=tail)
        assert 'Ubuntu 24.04' in str(caught.value.problems)


# -- K: a fixed id whose image was deleted ----------------------------------------------------------
def test_a_fixed_id_that_glance_will_never_give_again_is_an_error_naming_the_id(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    fixed = '11111111-2222-3333-4444-555555555555'
    wanted = series(tmp_path, builds, [('1', f', id: "{fixed}"')])
    reconcile(glance, tmp_path, wanted)
    assert glance.images[fixed]['name'] == ALIAS
    glance.delete_image(fixed)  # someone deleted it by hand
    plan, done = reconcile(glance, tmp_path, wanted)
    item = done[0]
    assert item.action is PlanAction.ERROR and fixed in item.reason


# -- L: newest version kept by another tool (unmanaged) ----------------------------------------------


def test_an_unmanaged_newest_version_leaves_the_plain_name_on_a_managed_build_and_converges(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    other = glance.add('Ubuntu 24.04 (2)', b'2' * 4096, status='active')
    wanted = series(tmp_path, builds, [('2', ', state: unmanaged'), '1'])
    plan, done = reconcile(glance, tmp_path, wanted)
    assert glance.images[other['id']]['name'] == 'Ubuntu 24.04 (2)'
    assert [i['imagegov_version'] for i in named(glance, ALIAS)] == ['1']
    again = plan_only(glance, tmp_path, wanted)
    assert not not_noop(again), 'plan/apply disagree: the plan renames the alias holder, the apply never does'


# -- M: deactivating the newest build with keep: 2 (an active older build exists) -----------------
def test_deactivating_the_newest_build_with_keep_2_moves_the_name_to_the_older_active_build(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1'], keep=2))
    reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1'], keep=2))
    wanted = series(tmp_path, builds, [('2', ', state: deactivated'), '1'], keep=2)
    reconcile(glance, tmp_path, wanted)
    [holder] = named(glance, ALIAS)
    assert holder['imagegov_version'] == '1' and holder['status'] == 'active'
    assert not not_noop(plan_only(glance, tmp_path, wanted))


# -- N: an in-use holder beyond keep_last, and prune leaving remembered builds alone --------------
def test_a_build_in_use_beyond_keep_last_is_kept_and_prune_spares_remembered_builds(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1'], keep_last=1))
    [old] = by_version(glance, '1')
    usage = {old['id']: IN_USE}
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['2'], keep_last=1), prune=True, usage=usage)
    assert by_version(glance, '1') and named(glance, ALIAS)[0]['imagegov_version'] == '2'
    assert next(i for i in done if i.name == 'Ubuntu 24.04 (1)').action is PlanAction.KEPT


def test_on_a_successful_run_the_plain_name_is_never_missing_between_requests(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1'], keep_last=1))
    [old] = named(glance, ALIAS)
    glance.calls.clear()
    reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1'], keep_last=1))
    [new] = named(glance, ALIAS)
    # the build beyond keep_last held the name: it is kept until the name has moved on ...
    assert ('delete', old['id']) not in glance.mutations()
    assert old['id'] in {image['id'] for image in named(glance, 'Ubuntu 24.04 (1)')}
    # ... and deleted by the next run
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1'], keep_last=1))
    assert ('delete', old['id']) in glance.mutations() and named(glance, ALIAS) == [new]
