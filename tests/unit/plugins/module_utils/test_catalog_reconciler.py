"""CatalogReconciler against the in-memory Glance: plan, apply, partial apply, drift, prune,
retirement of series builds, duplicates and failures, with the plan actions as data."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import (
    MANAGED_BY_PROPERTY,
    RETIRED_AT_PROPERTY,
    CatalogReconciler,
    summarize,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import PlanAction
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import load_catalog_texts
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

OWNER = 'p-alpha'
CALLER = {'user': 'alice', 'project': 'alpha', 'project_id': OWNER, 'roles': ['member']}
UNUSED = {'servers': [], 'images': [], 'not_checked': []}
NOTHING = 'version: 1\nrules: []\n'


class Run:
    """One catalog run, as the module makes it."""

    def __init__(self, glance, tmp_path, policy=NOTHING, usage=None, name='gold'):
        self.glance = glance
        self.policy = load_policy_texts([('policy.yml', policy)])
        self.usage = usage or {}
        self.reconciler = CatalogReconciler(
            glance,
            CALLER,
            self.gate,
            self.usage_of,
            name,
            5,
            lambda project: project,
            DigestCache(str(tmp_path / 'digests')),
        )
        self.reconciler.alias_grace = 0
        self.reconciler.inventory()

    def gate(self):
        return PolicyGate(self.policy, lambda: CALLER, lambda message: None)

    def usage_of(self, image):
        return self.usage.get(image['id'], UNUSED)


@pytest.fixture
def files(tmp_path):
    paths = {}
    for label in 'abcd':
        path = tmp_path / f'{label}.raw'
        path.write_bytes(label.encode() * 8192)
        paths[label] = (path, hashlib.sha256(path.read_bytes()).hexdigest())
    return paths


def catalog(tmp_path, files, text):
    path = tmp_path / 'catalog.yml'
    path.write_text(
        text.format(**{f'{k}_file': v[0] for k, v in files.items()}, **{f'{k}_sha': v[1] for k, v in files.items()})
    )
    return load_catalog_texts([(str(path), path.read_text())], source_roots=[str(tmp_path)])


SINGLES = """
version: 1
defaults: {{disk_format: raw, visibility: private, properties: {{os_distro: cirros}}}}
images:
  - {{name: one, source: {{file: {a_file}}}, sha256: {a_sha}}}
  - {{name: two, source: {{file: {b_file}}}, sha256: {b_sha}}}
"""


def actions(items):
    return {item.name: item.action for item in items}


def test_from_empty_plan_creates_apply_creates_and_a_second_plan_is_all_noop(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    wanted = catalog(tmp_path, files, SINGLES)
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan) == {'one': PlanAction.CREATE, 'two': PlanAction.CREATE}
    assert glance.mutations() == []  # a plan writes nothing
    done = run.reconciler.apply(wanted, plan)
    assert summarize(done) == {'create': 2}
    assert {image['name'] for image in glance.images_named('one') + glance.images_named('two')} == {'one', 'two'}
    again = Run(glance, tmp_path).reconciler.plan(wanted, prune=False)
    assert summarize(again) == {'noop': 2}
    assert [item.as_dict()['action'] for item in again] == ['noop', 'noop']


def test_drift_is_planned_with_the_fields_that_change_and_put_back(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    wanted = catalog(tmp_path, files, SINGLES)
    first = Run(glance, tmp_path)
    first.reconciler.apply(wanted, first.reconciler.plan(wanted, prune=False))
    one = glance.images_named('one')[0]
    glance.images[one['id']]['os_distro'] = 'edited'
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan)['one'] is PlanAction.UPDATE
    assert plan[0].changes == {'os_distro': {'before': 'edited', 'after': 'cirros'}}
    run.reconciler.apply(wanted, plan)
    assert glance.images[one['id']]['os_distro'] == 'cirros'


def test_a_refused_image_is_planned_refused_and_the_rest_still_applies(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    wanted = catalog(tmp_path, files, SINGLES)
    policy = (
        'version: 1\nrules:\n  - id: no-two\n    type: name_pattern\n    match: {names: [two]}\n'
        "    params: {pattern: '^never$'}\n"
    )
    run = Run(glance, tmp_path, policy)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan) == {'one': PlanAction.CREATE, 'two': PlanAction.REFUSED}
    assert 'no-two' in plan[1].reason
    done = run.reconciler.apply(wanted, plan)
    assert actions(done) == {'one': PlanAction.CREATE, 'two': PlanAction.REFUSED}
    assert glance.images_named('two') == []


def test_a_failing_upload_is_an_error_item_rolled_back_and_the_others_go_on(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    wanted = catalog(tmp_path, files, SINGLES)
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    glance.fail_on('upload')
    done = run.reconciler.apply(wanted, plan)
    assert actions(done) == {'one': PlanAction.ERROR, 'two': PlanAction.CREATE}
    assert any(op.startswith('rolled back: delete') for op in done[0].operations)
    assert glance.images_named('one') == []


def test_prune_deletes_managed_images_that_left_never_unmanaged_ones_nor_those_in_use(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    left = glance.add('left', b'x', **{MANAGED_BY_PROPERTY: 'gold'})
    used = glance.add('used', b'y', **{MANAGED_BY_PROPERTY: 'gold'})
    other = glance.add('other', b'z', **{MANAGED_BY_PROPERTY: 'another-catalog'})
    unmanaged = glance.add('unmanaged', b'w')
    wanted = catalog(tmp_path, files, SINGLES)
    run = Run(glance, tmp_path, usage={used['id']: {'servers': [{'id': 's1', 'name': 'web'}], 'images': []}})
    plan = run.reconciler.plan(wanted, prune=True)
    assert actions(plan) == {
        'one': PlanAction.CREATE,
        'two': PlanAction.CREATE,
        'left': PlanAction.PRUNE,
        'used': PlanAction.KEPT,
    }
    run.reconciler.apply(wanted, plan)
    assert glance.images[left['id']]['status'] == 'deleted'
    for kept in (used, other, unmanaged):
        assert glance.images[kept['id']]['status'] == 'active'


SERIES = """
version: 1
defaults: {{disk_format: raw, visibility: private}}
images:
  - series: s
    name: "s-{{version}}"
    keep: 1
    retire: {{hide: true, deactivate_after: 1d, delete_after: 2d}}
    versions:
      - {{version: "3", source: {{file: {c_file}}}, sha256: {c_sha}}}
      - {{version: "2", source: {{file: {b_file}}}, sha256: {b_sha}}}
      - {{version: "1", source: {{file: {a_file}}}, sha256: {a_sha}}}
"""


def test_series_builds_are_retired_then_deactivated_then_deleted_on_their_dates(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    now = datetime.datetime.now(datetime.timezone.utc)

    def stamp(days):
        return (now - datetime.timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%SZ')

    old = glance.add('s-1', files['a'][0].read_bytes(), **{MANAGED_BY_PROPERTY: 'gold', RETIRED_AT_PROPERTY: stamp(3)})
    mid = glance.add(
        's-2', files['b'][0].read_bytes(), **{MANAGED_BY_PROPERTY: 'gold', RETIRED_AT_PROPERTY: stamp(1.5)}
    )
    wanted = catalog(tmp_path, files, SERIES)
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan) == {'s-3': PlanAction.CREATE, 's-2': PlanAction.DEACTIVATE, 's-1': PlanAction.DELETE}
    run.reconciler.apply(wanted, plan)
    assert glance.images[old['id']]['status'] == 'deleted'
    assert glance.images[mid['id']]['status'] == 'deactivated' and glance.images[mid['id']]['os_hidden'] is True


def test_a_malformed_retirement_date_is_drift_that_restarts_the_clock(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    build = glance.add('s-2', files['b'][0].read_bytes(), **{MANAGED_BY_PROPERTY: 'gold', RETIRED_AT_PROPERTY: 'soon'})
    wanted = catalog(tmp_path, files, SERIES)
    plan = Run(glance, tmp_path).reconciler.plan(wanted, prune=False)
    item = next(item for item in plan if item.name == 's-2')
    assert item.action is PlanAction.UPDATE
    assert item.changes[RETIRED_AT_PROPERTY]['before'] == 'soon'
    assert glance.images[build['id']]['status'] == 'active'


def test_duplicates_under_a_catalog_name_are_settled_not_an_error(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    data = files['a'][0].read_bytes()
    first = glance.add('one', data, **{MANAGED_BY_PROPERTY: 'gold'})
    second = glance.add('one', data, **{MANAGED_BY_PROPERTY: 'gold'})
    wanted = catalog(tmp_path, files, SINGLES)
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan)['one'] is PlanAction.UPDATE
    run.reconciler.apply(wanted, plan)
    assert [image['id'] for image in glance.images_named('one')] == [first['id']]
    assert glance.images[second['id']]['name'].startswith('one.duplicate-')


SHARED = """
version: 1
images:
  - {{name: shared, disk_format: raw, visibility: shared, members: [p-beta], source: {{file: {a_file}}},
     sha256: {a_sha}}}
"""


def test_members_of_a_shared_image_are_planned_as_a_share_and_kept_exact(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    wanted = catalog(tmp_path, files, SHARED)
    run = Run(glance, tmp_path)
    run.reconciler.apply(wanted, run.reconciler.plan(wanted, prune=False))
    image = glance.images_named('shared')[0]
    assert glance.members[image['id']] == {'p-beta': 'pending'}
    glance.members[image['id']]['p-gamma'] = 'accepted'  # added behind the catalog's back
    plan = Run(glance, tmp_path).reconciler.plan(wanted, prune=False)
    assert actions(plan) == {'shared': PlanAction.SHARE}
    assert [decision.action for decision in plan[0].decisions] == ['share', 'narrow']


def test_a_build_due_for_deactivation_stays_active_while_in_use_and_is_deactivated_once_unused(tmp_path, files):
    glance = GlanceDouble(owner=OWNER)
    yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1.5)).strftime(
        '%Y-%m-%dT%H:%M:%SZ'
    )
    mid = glance.add('s-2', files['b'][0].read_bytes(), **{MANAGED_BY_PROPERTY: 'gold', RETIRED_AT_PROPERTY: yesterday})
    wanted = catalog(tmp_path, files, SERIES)
    server = {'servers': [{'id': 's1', 'name': 'web', 'project_id': OWNER}], 'images': [], 'not_checked': []}
    unknown = {'servers': [], 'images': [], 'not_checked': [{'resource': 'volumes', 'reason': 'Cinder is down'}]}
    rounds = [(server, 'server web (s1', PlanAction.UPDATE)]  # hidden as retired, not deactivated
    rounds += [(server, 'server web (s1', PlanAction.KEPT), (unknown, 'volumes not checked: Cinder', PlanAction.KEPT)]
    for usage, shown, action in rounds:
        run = Run(glance, tmp_path, usage={mid['id']: usage})
        plan = run.reconciler.plan(wanted, prune=False)
        for items in (plan, run.reconciler.apply(wanted, plan)):
            item = next(item for item in items if item.name == 's-2')
            assert item.action is action and item.id == mid['id']
            assert 'kept active, in use' in item.reason and shown in item.reason
            assert glance.images[mid['id']]['status'] == 'active'
    assert glance.images[mid['id']]['os_hidden'] is True
    run = Run(glance, tmp_path)
    plan = run.reconciler.plan(wanted, prune=False)
    assert actions(plan)['s-2'] is PlanAction.DEACTIVATE
    run.reconciler.apply(wanted, plan)
    assert glance.images[mid['id']]['status'] == 'deactivated'
    assert actions(Run(glance, tmp_path).reconciler.plan(wanted, prune=False))['s-2'] is PlanAction.NOOP


def test_a_member_copying_a_builds_records_onto_an_unused_image_cannot_get_the_build_deactivated(tmp_path, files):
    # The decoy (older, other bytes, unused) carries the bookkeeping; the build in use holds
    # the bytes the reconciler keeps. Any image of the build in use keeps it active.
    glance = GlanceDouble(owner=OWNER)
    retired = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1.5)).strftime(
        '%Y-%m-%dT%H:%M:%SZ'
    )
    records = {MANAGED_BY_PROPERTY: 'gold', RETIRED_AT_PROPERTY: retired}
    glance.add('s-2', files['d'][0].read_bytes(), **records)
    real = glance.add('s-2', files['b'][0].read_bytes(), **records)
    wanted = catalog(tmp_path, files, SERIES)
    server = {'servers': [{'id': 's1', 'name': 'web', 'project_id': OWNER}], 'images': [], 'not_checked': []}
    run = Run(glance, tmp_path, usage={real['id']: server})
    plan = run.reconciler.plan(wanted, prune=False)
    for items in (plan, run.reconciler.apply(wanted, plan)):
        item = next(item for item in items if item.name == 's-2')
        assert item.action is not PlanAction.DEACTIVATE and 'kept active, in use: server web' in item.reason
    assert glance.images[real['id']]['status'] == 'active'
