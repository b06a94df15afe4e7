"""Evaluation mechanics: applicability, lazy usage facts, modes, messages, batch runs."""

from __future__ import annotations

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

POLICY_TEXT = """
version: 1
rules:
  - id: in-use
    type: delete_protection
    match: {projects: [demo, lab]}
  - id: lab-naming
    type: name_pattern
    mode: audit
    match: {projects: [lab]}
    params: {pattern: 'lab-.*'}
  - id: formats
    type: allowed_formats
    mode: warn
    params: {disk_formats: [qcow2]}
  - id: big-public
    type: max_size
    match: {visibility: [public], names: ['ubuntu-*', 'debian-*'], when: "actor.project != 'admin'"}
    params: {max_gib: 1}
    message: '{rule}: {image} by {user}@{project} is {found} ({measure}), limit {expected}, at {path}'
"""

MEMBER = {'user': 'alice', 'project': 'demo', 'roles': ['member']}


@pytest.fixture(scope='module')
def policy():
    return engine.load_policy_text(POLICY_TEXT, source='inline.yml')


def delete(image_id, project='demo', **extra):
    return dict(
        {
            'action': 'delete',
            'actor': dict(MEMBER, project=project),
            'current': {'id': image_id, 'name': f'n-{image_id}'},
        },
        **extra,
    )


def test_usage_provider_not_called_when_no_rule_needs_it(policy, fake_usage):
    usage = fake_usage()
    engine.evaluate(
        policy, {'action': 'create', 'actor': MEMBER, 'image': {'id': 'a', 'name': 'x'}}, usage_provider=usage
    )
    assert usage.calls == []


def test_usage_provider_not_called_when_the_rule_is_out_of_scope(policy, fake_usage):
    usage = fake_usage()
    decision = engine.evaluate(policy, delete('a', project='other'), usage_provider=usage)
    assert usage.calls == []
    assert decision.allowed


def test_usage_provider_not_called_when_the_request_has_usage(policy, fake_usage):
    usage = fake_usage()
    engine.evaluate(policy, delete('a', usage={'servers': [], 'images': [], 'volumes': []}), usage_provider=usage)
    assert usage.calls == []


def test_usage_fetched_once_per_image_in_a_batch(policy, fake_usage):
    usage = fake_usage({'b': {'servers': [{'id': 's', 'name': 'vm'}], 'images': [], 'volumes': []}})
    requests = [delete('a'), delete('b'), delete('a'), delete('b', project='lab'), delete('c')]
    decisions = engine.evaluate_batch(policy, requests, usage_provider=usage)
    assert usage.calls == ['a', 'b', 'c']
    assert [decision.allowed for decision in decisions] == [True, False, True, False, True]


def test_evaluator_keeps_its_cache_across_calls(policy, fake_usage):
    usage = fake_usage()
    evaluator = engine.Evaluator(policy, usage_provider=usage)
    evaluator.evaluate(delete('a'))
    evaluator.evaluate(delete('a'))
    assert usage.calls == ['a']
    engine.Evaluator(policy, usage_provider=usage).evaluate(delete('a'))
    assert usage.calls == ['a', 'a']


def test_missing_usage_provider_fails_closed(policy):
    decision = engine.evaluate(policy, delete('a'))
    assert not decision.allowed
    assert {violation.found[0] for violation in decision.violations} == {'no usage provider configured'}


def test_failing_usage_provider_fails_closed(policy):
    def broken(image):
        raise RuntimeError('nova timeout')

    decision = engine.evaluate(policy, delete('a'), usage_provider=broken)
    assert not decision.allowed
    assert decision.violations[0].found == ['usage lookup failed: nova timeout']


def test_provider_receives_the_image(policy, fake_usage):
    seen = []
    engine.evaluate(
        policy,
        delete('a'),
        usage_provider=lambda image: seen.append(image) or {'servers': [], 'images': [], 'volumes': []},
    )
    assert seen == [{'id': 'a', 'name': 'n-a'}]


def test_warn_does_not_block_and_audit_is_only_recorded(policy):
    decision = engine.evaluate(
        policy,
        {'action': 'create', 'actor': dict(MEMBER, project='lab'), 'image': {'name': 'bad', 'disk_format': 'raw'}},
    )
    assert decision.allowed
    assert [(violation.rule, violation.mode) for violation in decision.violations] == [
        ('lab-naming', 'audit'),
        ('formats', 'warn'),
    ]
    assert [violation.rule for violation in decision.warnings] == ['formats']
    assert decision.blocking == []
    assert decision.refusal_message() == ''


def test_match_needs_every_criterion(policy):
    base = {
        'action': 'create',
        'actor': MEMBER,
        'image': {'name': 'ubuntu-24.04', 'visibility': 'public', 'size': 2 * 1024**3, 'disk_format': 'qcow2'},
    }
    assert not engine.evaluate(policy, base).allowed
    renamed = dict(base, image=dict(base['image'], name='centos-9'))
    assert engine.evaluate(policy, renamed).allowed
    private = dict(base, image=dict(base['image'], visibility='private'))
    assert engine.evaluate(policy, private).allowed
    by_admin = dict(base, actor=dict(MEMBER, project='admin'))
    assert engine.evaluate(policy, by_admin).allowed


def test_custom_message_template(policy):
    decision = engine.evaluate(
        policy,
        {
            'action': 'update',
            'actor': MEMBER,
            'image': {'name': 'debian-12', 'visibility': 'public'},
            'current': {'id': 'x', 'disk_format': 'qcow2', 'size': 3 * 1024**3},
        },
    )
    assert decision.violations[0].message == (
        "big-public: 'debian-12' by alice@demo is 3 GiB (stored size), limit 1 GiB, at current.size"
    )


def test_refusal_message_names_rules_and_image(policy, fake_usage):
    usage = fake_usage({'a': {'servers': [{'id': 's1', 'name': 'web'}], 'images': [], 'volumes': []}})
    decision = engine.evaluate(policy, delete('a'), usage_provider=usage)
    assert decision.refusal_message() == (
        "policy refused delete of image n-a (a): [in-use] 'n-a' is in use by 1 servers: web (s1); "
        'delete or rebuild them first, or deactivate the image instead'
    )


def test_unknown_action_has_no_applicable_rule(policy):
    decision = engine.evaluate(policy, {'action': 'teleport', 'image': {'name': 'x', 'disk_format': 'vmdk'}})
    assert decision.allowed
    assert decision.outcomes == []


def test_rule_outcomes_list_every_applicable_rule(policy, fake_usage):
    decision = engine.evaluate(policy, delete('a', project='lab'), usage_provider=fake_usage())
    assert [outcome.as_dict() for outcome in decision.outcomes] == [
        {'rule': 'in-use', 'type': 'delete_protection', 'status': 'passed'}
    ]


def test_rule_that_raises_fails_closed():
    class Exploding(engine.Rule):
        type_name = 'exploding-for-test'

        def evaluate(self, request):
            raise KeyError('boom')

    rule = Exploding('explodes', {}, actions=frozenset(['create']))
    decision = engine.evaluate(engine.Policy([rule]), {'action': 'create', 'image': {'name': 'x'}})
    assert not decision.allowed
    assert decision.violations[0].message == "'x': rule explodes could not be evaluated (KeyError: 'boom')"


def test_as_dict_shape(policy):
    decision = engine.evaluate(
        policy,
        {
            'action': 'create',
            'actor': MEMBER,
            'image': {'name': 'x', 'disk_format': 'vmdk'},
            'source': {'path': 'catalog/x.yml', 'line': 3},
        },
    )
    assert decision.as_dict() == {
        'action': 'create',
        'image': {'id': None, 'name': 'x'},
        'allowed': True,
        'violations': [
            {
                'rule': 'formats',
                'type': 'allowed_formats',
                'severity': 'medium',
                'mode': 'warn',
                'message': "'x': disk_format 'vmdk' is not allowed; use one of: qcow2",
                'path': 'image.disk_format',
                'expected': ['qcow2'],
                'found': 'vmdk',
                'exception': None,
            }
        ],
        'warnings': ["'x': disk_format 'vmdk' is not allowed; use one of: qcow2"],
        'rules': [{'rule': 'formats', 'type': 'allowed_formats', 'status': 'violated'}],
        'source': {'path': 'catalog/x.yml', 'line': 3},
    }


def test_request_must_be_a_mapping(policy):
    with pytest.raises(TypeError, match='a policy request must be a mapping, got list'):
        engine.evaluate(policy, ['create'])


def test_project_scope_matches_owner_too():
    policy = engine.load_policy_text("""
version: 1
rules:
  - {id: r, type: name_pattern, match: {projects: [p-123]}, params: {pattern: 'ok'}}
""")
    by_owner = {
        'action': 'update',
        'actor': {'project': 'admin', 'roles': ['admin']},
        'image': {'name': 'bad'},
        'current': {'id': 'i', 'owner': 'p-123'},
    }
    assert not engine.evaluate(policy, by_owner).allowed
    by_project_id = {'action': 'create', 'actor': {'project': 'demo', 'project_id': 'p-123'}, 'image': {'name': 'bad'}}
    assert not engine.evaluate(policy, by_project_id).allowed
    elsewhere = {'action': 'create', 'actor': {'project': 'demo'}, 'image': {'name': 'bad'}}
    assert engine.evaluate(policy, elsewhere).allowed


def test_build_request_applies_changes_to_the_current_image():
    current = {'id': 'i', 'name': 'old', 'visibility': 'private', 'disk_format': 'qcow2'}
    document = engine.build_request(
        'publish',
        image={'visibility': 'public'},
        current=current,
        actor={'user': 'u', 'project': 'p', 'roles': ('admin',), 'project_id': 'pid'},
        content={'detected_format': 'qcow2'},
        source={'path': 'c.yml'},
    )
    assert document == {
        'action': 'publish',
        'actor': {'user': 'u', 'project': 'p', 'roles': ['admin'], 'project_id': 'pid'},
        'image': {'id': 'i', 'name': 'old', 'visibility': 'public', 'disk_format': 'qcow2'},
        'current': current,
        'content': {'detected_format': 'qcow2'},
        'source': {'path': 'c.yml'},
    }
    assert document['current'] is not current
    assert engine.build_request('create', image={'name': 'n'})['current'] is None
