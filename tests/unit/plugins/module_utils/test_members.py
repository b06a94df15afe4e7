from __future__ import annotations

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._glance import GlanceError
from ansible_collections.imagegov.openstack.plugins.module_utils._members import (
    MemberReconciler,
    MemberRequestError,
    apply_plan,
    diff_view,
    find_shared_image,
    member_list,
    plan_members,
    share_view,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate, PolicyRefusal
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import load_policy_texts

OWNER = {'user': 'alice', 'project': 'alpha', 'project_id': 'p-alpha', 'roles': ['member']}
MEMBER = {'user': 'bob', 'project': 'beta', 'project_id': 'p-beta', 'roles': ['member']}
IMAGE = {'id': 'i-1', 'name': 'ubuntu', 'owner': 'p-alpha', 'visibility': 'shared', 'status': 'active'}
ONE_MEMBER = """
version: 1
rules:
  - id: one-member
    type: expression
    actions: [share]
    params: {assert: "length(image.members) <= `1`"}
    message: '{image} may be shared with one project at most'
"""


class FakeGlance:
    """Glance's member calls over a dict; records every call; ``fail_on`` makes one call fail."""

    def __init__(self, image=None, members=None, hidden=None, images=()):
        self.image = dict(image or IMAGE)
        self.members = dict(members or {})
        self.hidden = dict(hidden or {})  # kept by Glance while the image is private
        self.images = list(images)
        self.calls = []
        self.fail_on = None

    def _log(self, *call):
        self.calls.append(call)
        if self.fail_on == call[0]:
            self.fail_on = None  # once: the rollback's own calls succeed
            raise GlanceError(call[0], 500, 'boom')

    def list_members(self, image_id):
        self._log('list', image_id)
        return [{'member_id': m, 'status': s} for m, s in self.members.items()]

    def add_member(self, image_id, member):
        self._log('add', member)
        self.members[member] = 'pending'

    def remove_member(self, image_id, member):
        self._log('remove', member)
        self.members.pop(member, None)

    def update_member(self, image_id, member, status):
        self._log('update', member, status)
        self.members[member] = status

    def patch_image(self, image_id, operations):
        for operation in operations:
            key = operation['path'][1:]
            if key != 'visibility':  # bookkeeping: when the image was first shared
                self._log('mark', key)
                self.image[key] = operation['value']
                continue
            self._log('patch', operation['value'])
            self.image['visibility'] = operation['value']
            if self.image['visibility'] == 'shared':
                self.members.update(self.hidden)
                self.hidden = {}
        return dict(self.image)

    def live_image(self, image_id):
        self._log('get', image_id)
        return next((i for i in self.images if i['id'] == image_id), None)

    def images_named(self, name, **filters):
        self._log('iter', name)
        return [i for i in self.images if i['name'] == name and filters.get('owner') in (None, i['owner'])]

    def mutations(self):
        return [c for c in self.calls if c[0] in ('add', 'remove', 'update', 'patch')]


def gate(policy_text='version: 1\nrules: []\n', caller=None):
    actor = caller or OWNER
    return PolicyGate(load_policy_texts([('test.yml', policy_text)]), lambda: actor, lambda msg: None)


def test_plan_adds_only_by_default_and_purges_on_request():
    current = {'a': 'accepted', 'b': 'pending'}
    assert plan_members(current, ['b', 'c'], 'present', False) == (['c'], [])
    assert plan_members(current, ['b', 'c'], 'present', True) == (['c'], ['a'])
    assert plan_members(current, [], 'present', True) == ([], ['a', 'b'])
    assert plan_members(current, ['a', 'z'], 'absent', False) == ([], ['a'])
    assert plan_members(current, ['a', 'b'], 'present', True) == ([], [])


def test_apply_plan_keeps_answers_and_new_members_are_pending():
    after = apply_plan({'a': 'accepted', 'b': 'rejected'}, ['c'], ['b'])
    assert after == {'a': 'accepted', 'c': 'pending'}
    assert member_list(after) == [{'member_id': 'a', 'status': 'accepted'}, {'member_id': 'c', 'status': 'pending'}]


def test_views_for_policy_and_diff():
    view = share_view(IMAGE, {'b': 'pending', 'a': 'accepted'})
    assert view['members'] == ['a', 'b'] and 'member_status' not in view and view['name'] == 'ubuntu'
    assert share_view(IMAGE, {'a': 'accepted'}, 'accepted')['member_status'] == 'accepted'
    assert diff_view('shared', {'a': 'pending'}) == {
        'visibility': 'shared',
        'members': [{'member_id': 'a', 'status': 'pending'}],
    }


def test_owner_adds_a_member_after_asking_the_policy():
    glance = FakeGlance(members={'p-beta': 'accepted'})
    policy = gate()
    out = MemberReconciler(glance, policy, OWNER, False).share(dict(IMAGE), ['p-gamma'], 'present', False, False)
    assert out.changed and out.after == {'p-beta': 'accepted', 'p-gamma': 'pending'}
    assert glance.mutations() == [('add', 'p-gamma')]
    decision = policy.decisions[0]
    assert decision.action == 'share'
    assert out.operations == ['add member p-gamma']


def test_in_step_sends_nothing_and_asks_nothing():
    glance = FakeGlance(members={'p-beta': 'accepted'})
    policy = gate()
    out = MemberReconciler(glance, policy, OWNER, False).share(dict(IMAGE), ['p-beta'], 'present', True, False)
    assert not out.changed and out.operations == [] and glance.mutations() == [] and policy.decisions == []


def test_check_mode_predicts_without_mutating():
    glance = FakeGlance(members={'p-beta': 'accepted', 'p-old': 'pending'})
    out = MemberReconciler(glance, gate(), OWNER, True, {'p-old': 'old'}).share(
        dict(IMAGE), ['p-beta', 'p-new'], 'present', True, False
    )
    assert out.changed and glance.mutations() == []
    assert out.after == {'p-beta': 'accepted', 'p-new': 'pending'}
    assert out.operations == ['add member p-new', 'remove member old (p-old) (was pending)']


def test_policy_refusal_comes_before_any_change():
    glance = FakeGlance(members={'p-beta': 'accepted'})
    with pytest.raises(PolicyRefusal) as refusal:
        MemberReconciler(glance, gate(ONE_MEMBER), OWNER, False).share(
            dict(IMAGE), ['p-gamma'], 'present', False, False
        )
    assert 'one-member' in str(refusal.value) and 'Nothing was changed' in str(refusal.value)
    assert glance.mutations() == []


def test_removal_below_the_limit_is_allowed():
    glance = FakeGlance(members={'p-beta': 'accepted', 'p-gamma': 'pending'})
    out = MemberReconciler(glance, gate(ONE_MEMBER), OWNER, False).share(
        dict(IMAGE), ['p-gamma'], 'absent', False, False
    )
    assert out.after == {'p-beta': 'accepted'} and glance.mutations() == [('remove', 'p-gamma')]


def test_private_image_is_a_clear_error_without_set_shared():
    glance = FakeGlance(image=dict(IMAGE, visibility='private'))
    with pytest.raises(
        MemberRequestError, match='is private: Glance only lets shared images have members.*set_shared: true'
    ):
        MemberReconciler(glance, gate(), OWNER, False).share(dict(glance.image), ['p-beta'], 'present', False, False)
    assert glance.calls == []


@pytest.mark.parametrize('visibility', ['public', 'community'])
def test_published_images_are_never_made_shared(visibility):
    glance = FakeGlance(image=dict(IMAGE, visibility=visibility))
    with pytest.raises(MemberRequestError, match=f'is {visibility}: .*already visible to every project'):
        MemberReconciler(glance, gate(), OWNER, False).share(dict(glance.image), ['p-beta'], 'present', False, True)
    assert glance.calls == []


def test_set_shared_asks_update_and_share_then_patches_once():
    glance = FakeGlance(image=dict(IMAGE, visibility='private'))
    policy = gate()
    out = MemberReconciler(glance, policy, OWNER, False).share(dict(glance.image), ['p-beta'], 'present', False, True)
    assert [d.action for d in policy.decisions] == ['update', 'share']
    assert glance.mutations() == [('patch', 'shared'), ('add', 'p-beta')]
    assert out.visibility_before == 'private' and out.image['visibility'] == 'shared'


def test_set_shared_replans_over_members_glance_kept_hidden():
    glance = FakeGlance(image=dict(IMAGE, visibility='private'), hidden={'p-beta': 'accepted', 'p-old': 'pending'})
    out = MemberReconciler(glance, gate(), OWNER, False).share(dict(glance.image), ['p-beta'], 'present', True, True)
    assert glance.mutations() == [('patch', 'shared'), ('remove', 'p-old')]
    assert out.before == {'p-beta': 'accepted', 'p-old': 'pending'} and out.after == {'p-beta': 'accepted'}
    assert 'reappeared' in out.operations[1]


def test_revealed_members_refused_by_the_policy_roll_the_visibility_back():
    glance = FakeGlance(image=dict(IMAGE, visibility='private'), hidden={'p-old': 'pending'})
    reconciler = MemberReconciler(glance, gate(ONE_MEMBER), OWNER, False)
    with pytest.raises(PolicyRefusal):
        reconciler.share(dict(glance.image), ['p-beta'], 'present', False, True)
    assert glance.image['visibility'] == 'private'
    assert glance.mutations() == [('patch', 'shared'), ('patch', 'private')]
    assert reconciler.outcome.operations[-1].startswith('rolled back: make image')


def test_a_failed_step_undoes_the_earlier_ones():
    glance = FakeGlance(members={'p-old': 'accepted'})
    glance.fail_on = 'remove'
    reconciler = MemberReconciler(glance, gate(), OWNER, False)
    with pytest.raises(GlanceError):
        reconciler.share(dict(IMAGE), ['p-new'], 'present', True, False)
    assert glance.members == {'p-old': 'accepted'}
    assert reconciler.outcome.operations == ['add member p-new', 'rolled back: add member p-new']


def test_owner_itself_cannot_be_a_member():
    with pytest.raises(MemberRequestError, match='owner cannot be a member'):
        MemberReconciler(FakeGlance(), gate(), OWNER, False).share(dict(IMAGE), ['p-alpha'], 'present', False, False)


def test_only_the_owner_or_an_admin_chooses_members():
    with pytest.raises(MemberRequestError, match='does not own image .* use status'):
        MemberReconciler(FakeGlance(), gate(caller=MEMBER), MEMBER, False).share(
            dict(IMAGE), ['p-x'], 'present', False, False
        )
    admin = dict(MEMBER, roles=['admin'])
    out = MemberReconciler(FakeGlance(), gate(caller=admin), admin, False).share(
        dict(IMAGE), ['p-x'], 'present', False, False
    )
    assert out.changed


def test_member_project_answers_and_the_policy_sees_the_status():
    glance = FakeGlance(members={'p-beta': 'pending'})
    policy = gate(caller=MEMBER)
    out = MemberReconciler(glance, policy, MEMBER, False).answer(dict(IMAGE), 'accepted')
    assert out.changed and glance.mutations() == [('update', 'p-beta', 'accepted')]
    assert out.before == {'p-beta': 'pending'} and out.after == {'p-beta': 'accepted'}
    request = policy.decisions[0].as_dict()
    assert request['action'] == 'share'
    again = MemberReconciler(glance, gate(caller=MEMBER), MEMBER, False).answer(dict(IMAGE), 'accepted')
    assert not again.changed


def test_the_owner_cannot_answer_and_a_non_member_is_told_so():
    with pytest.raises(MemberRequestError, match='only a member project can accept'):
        MemberReconciler(FakeGlance(), gate(), OWNER, False).answer(dict(IMAGE), 'accepted')
    with pytest.raises(MemberRequestError, match='is not a member of'):
        MemberReconciler(FakeGlance(members={'p-x': 'pending'}), gate(caller=MEMBER), MEMBER, False).answer(
            dict(IMAGE), 'accepted'
        )


def test_consumer_lookup_by_id_then_by_name_among_shared_images():
    own = dict(IMAGE, id='i-own', owner='p-beta')
    shared = dict(IMAGE, id='11111111-2222-3333-4444-555555555555')
    glance = FakeGlance(images=[own, shared])
    assert find_shared_image(glance, shared['id'], None, MEMBER)['id'] == shared['id']
    assert find_shared_image(glance, 'ubuntu', None, MEMBER)['id'] == shared['id']
    # Only the caller's own image matches: returned, so that answering it gets the owner's error.
    assert find_shared_image(FakeGlance(images=[own]), 'ubuntu', None, MEMBER)['id'] == 'i-own'
    with pytest.raises(MemberRequestError, match='No image .* is shared with project beta'):
        find_shared_image(FakeGlance(), 'ubuntu', None, MEMBER)
    other = dict(IMAGE, id='i-2', owner='p-gamma')
    with pytest.raises(MemberRequestError, match='2 images named .* Give the image id, or the owner option'):
        find_shared_image(FakeGlance(images=[shared, other]), 'ubuntu', None, MEMBER)
    assert find_shared_image(FakeGlance(images=[shared, other]), 'ubuntu', 'p-gamma', MEMBER)['id'] == 'i-2'
