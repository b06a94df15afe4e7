"""Series kept as operators keep them, against the in-memory Glance: the plain name moves to
the newest build in one step at the end of an apply, old builds keep their metadata,
retention by count over the file's builds and the ones the cloud remembers, unmanaged
entries, deactivated entries, fixed ids, sha512 checksums and min_disk auto."""

from __future__ import annotations

import hashlib

import pytest
from glance_double import GlanceDouble
from test_catalog_reconciler import OWNER, Run, catalog

from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import MANAGED_BY_PROPERTY, summarize
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import PlanAction

SERIES = """
version: 1
images:
  - series: ubuntu
    name: "Ubuntu 24.04 ({{version}})"
    alias: Ubuntu 24.04
    keep_last: {keep_last}
    disk_format: raw
    properties: {{os_distro: {distro}}}
    versions:
{versions}
  - {{name: known, state: unmanaged}}
"""
VERSION = """      - {{version: "{version}", source: {{file: {file}}}, checksum: "sha512:{sha512}",
         properties: {{image_build_date: "{version}"}}}}
"""


@pytest.fixture
def builds(tmp_path):
    found = {}
    for version in ('1', '2', '3'):
        path = tmp_path / f'build-{version}.raw'
        path.write_bytes(version.encode() * 4096)
        found[version] = (path, hashlib.sha512(path.read_bytes()).hexdigest())
    return found


def series(tmp_path, builds, versions, keep_last=3, distro='ubuntu'):
    text = SERIES.format(
        keep_last=keep_last,
        distro=distro,
        versions=''.join(VERSION.format(version=v, file=builds[v][0], sha512=builds[v][1]) for v in versions),
    )
    return catalog(tmp_path, {}, text.replace('{', '{{').replace('}', '}}'))


def reconcile(glance, tmp_path, wanted, prune=False):
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=prune)
    return plan, run.reconciler.apply(wanted, plan)


def named(glance, name):
    return [image for image in glance.images.values() if image.get('name') == name and image['status'] != 'deleted']


def test_the_plain_name_moves_to_the_new_build_and_old_builds_keep_their_metadata(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    assert summarize(done) == {'create': 1, 'noop': 1}
    assert plan[0].changes['name']['after'] == 'Ubuntu 24.04'
    [first] = named(glance, 'Ubuntu 24.04')
    assert first['imagegov_version'] == '1' and first['imagegov_series'] == 'ubuntu'

    wanted = series(tmp_path, builds, ['2', '1'], distro='Ubuntu')
    plan, done = reconcile(glance, tmp_path, wanted)
    by_name = {item.name: item for item in plan}
    assert by_name['Ubuntu 24.04 (2)'].action is PlanAction.CREATE
    assert by_name['Ubuntu 24.04 (1)'].changes['name'] == {'before': 'Ubuntu 24.04', 'after': 'Ubuntu 24.04 (1)'}
    # a published build is not rewritten by a series-level edit
    assert 'os_distro' not in by_name['Ubuntu 24.04 (1)'].changes
    [new] = named(glance, 'Ubuntu 24.04')
    [old] = named(glance, 'Ubuntu 24.04 (1)')
    assert new['imagegov_version'] == '2' and new['os_distro'] == 'Ubuntu'
    assert old['id'] == first['id'] and old['os_distro'] == 'ubuntu' and old['os_hidden'] is True
    # the name moved last: the new build was created under its own name, then renamed
    renames = [call[1] for call in glance.calls if call[0] == 'patch' and '/name' in call[2]]
    assert renames[-2:] == [new['id'], old['id']]
    assert summarize(reconcile(glance, tmp_path, wanted)[1]) == {'noop': 3}


def test_builds_that_left_the_file_are_retired_then_deleted_beyond_keep_last(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    reconcile(glance, tmp_path, series(tmp_path, builds, ['1']))
    reconcile(glance, tmp_path, series(tmp_path, builds, ['2', '1']))
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['3']), prune=True)
    assert summarize(done) == {'create': 1, 'update': 1, 'noop': 2}
    assert named(glance, 'Ubuntu 24.04 (1)'), 'a remembered build is not pruned'
    assert named(glance, 'Ubuntu 24.04')[0]['imagegov_version'] == '3'
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['3'], keep_last=2), prune=True)
    assert {item.name: item.action for item in done if item.action is not PlanAction.NOOP} == {
        'Ubuntu 24.04 (1)': PlanAction.DELETE
    }
    assert not named(glance, 'Ubuntu 24.04 (1)') and named(glance, 'Ubuntu 24.04 (2)')


def test_an_unmanaged_entry_is_never_touched_nor_pruned(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    known = glance.add('known', b'', **{MANAGED_BY_PROPERTY: 'gold'})
    plan, done = reconcile(glance, tmp_path, series(tmp_path, builds, ['1']), prune=True)
    item = next(item for item in done if item.name == 'known')
    assert item.action is PlanAction.NOOP and item.reason.startswith('unmanaged')
    assert known['id'] in glance.images


def test_unmanaged_entries_need_no_source_and_bad_new_fields_name_the_field(tmp_path):
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import CatalogError

    text = """
version: 1
images:
  - {name: a, disk_format: raw, source: {url: "https://x/a"}, checksum: "sha512:abc", id: nope, min_disk: big}
  - {series: s, name: "s-{version}", alias: "s-{version}", keep: 2, keep_last: 1, disk_format: raw,
      versions: [{version: "1", source: {url: "https://x/1"}, sha256: "%s", checksum_url: "https://x/SUMS"},
                {version: "2", source: {url: "https://x/2"}, checksum_url: "https://elsewhere/SUMS"}]}
""" % ('0' * 64)
    with pytest.raises(CatalogError) as caught:
        catalog(tmp_path, {}, text.replace('{', '{{').replace('}', '}}'))
    fields = [problem.field for problem in caught.value.problems]
    assert fields == [
        'checksum',
        'id',
        'min_disk',
        'alias',
        'versions[0].checksum_url',
        'versions[1].checksum_url',
        'keep_last',
    ], fields
    assert 'same server as source.url (https://x)' in caught.value.problems[5].message


def test_an_image_that_is_not_a_build_but_holds_the_plain_name_is_retired(tmp_path, builds):
    glance = GlanceDouble(owner=OWNER)
    wanted = series(tmp_path, builds, ['1'])
    reconcile(glance, tmp_path, wanted)
    squatter = glance.add('Ubuntu 24.04', b'x' * 100)
    plan, done = reconcile(glance, tmp_path, wanted)
    item = next(item for item in plan if item.name == 'Ubuntu 24.04 (1)')
    assert item.action is PlanAction.UPDATE and any(f'retire {squatter["id"]}' in op for op in item.operations)
    assert glance.images[squatter['id']]['name'].startswith('Ubuntu 24.04.replaced-')
    assert glance.images[squatter['id']]['os_hidden'] is True
    assert [image['imagegov_version'] for image in named(glance, 'Ubuntu 24.04')] == ['1']
