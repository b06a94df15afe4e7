"""policy_check's own logic: request validation, audit requests, summaries and report files."""

from __future__ import annotations

import os

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import evaluate_batch, load_policy
from ansible_collections.imagegov.openstack.plugins.modules import policy_check
from ansible_collections.imagegov.openstack.plugins.modules.policy_check import (
    PolicyCheckModule, audit_request, refusal_line, request_problems, summarize)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ACTIONS = 'create, update, upload, publish, share, delete, deactivate'
ADMIN = {'user': 'admin', 'user_id': 'u1', 'project': 'admin', 'project_id': 'p1', 'roles': ['admin', 'member']}
MEMBER = {'user': 'alice', 'user_id': 'u2', 'project': 'alpha', 'project_id': 'p2', 'roles': ['member']}
GIB = 1024 ** 3


@pytest.fixture(scope='module')
def default_policy():
    return load_policy([os.path.join(REPO, 'policies', 'default.yml')])


def glance_image(name, **fields):
    image = {'id': f'id-{name}', 'name': name, 'status': 'active', 'visibility': 'private',
             'disk_format': 'raw', 'container_format': 'bare', 'size': 1048576, 'virtual_size': 1048576,
             'os_hidden': False, 'owner': 'p1', 'protected': False, 'min_disk': 0, 'min_ram': 0, 'tags': []}
    image.update(fields)
    return image


def test_well_formed_requests_have_no_problems():
    assert request_problems([]) == []
    assert request_problems([
        {'action': 'create', 'actor': MEMBER, 'image': {'name': 'x'}, 'current': None},
        {'action': 'delete', 'image': None, 'current': {'id': 'i'}, 'usage': {'servers': []},
         'content': None, 'source': {'path': 'catalog.yml', 'line': 3}},
    ]) == []


def test_every_problem_is_reported_with_its_index_and_field():
    assert request_problems([
        {'action': 'create'},
        42,
        {'action': 7, 'usage': 'none', 'source': ['a']},
        {'action': 'Create', 'actor': {'roles': ['admin', 1]}},
        {'action': None, 'image': {}, 1: 'x'},
    ]) == [
        "requests[1]: must be a mapping (a request document with action, actor, image, current, ...), got integer 42",
        f"requests[2].action: unknown action 7; known actions: {ACTIONS}",
        "requests[2].usage: must be a mapping or null, got string 'none'",
        "requests[2].source: must be a mapping or null, got list ['a']",
        f"requests[3].action: unknown action 'Create'; known actions: {ACTIONS}",
        "requests[3].actor.roles: must be a list of role names, got ['admin', 1]",
        "requests[4]: unknown field 1; known fields: action, actor, image, current, content, usage, source",
        f"requests[4].action: required; one of {ACTIONS}",
    ]


def test_long_values_are_shortened_in_messages():
    problem = request_problems(['x' * 200])[0]
    assert problem.endswith("got string '" + 'x' * 56 + '...')


def test_audit_request_judges_the_image_as_created_today_by_the_caller(default_policy):
    images = [
        glance_image('ok'),
        glance_image('big', size=2 * GIB, virtual_size=30 * GIB),
        glance_image('vdi', disk_format='vdi'),
        glance_image('public-bare', visibility='public'),
        glance_image('queued', status='queued', size=None, virtual_size=None, disk_format=None,
                     container_format=None),
    ]
    admin = evaluate_batch(default_policy, [audit_request(image, ADMIN) for image in images])
    member = evaluate_batch(default_policy, [audit_request(image, MEMBER) for image in images])
    assert [d.action for d in admin] == ['create'] * 5
    assert [(d.image['name'], d.allowed, [v.rule for v in d.violations]) for d in admin] == [
        ('ok', True, []),
        ('big', False, ['max-image-size']),
        ('vdi', False, ['allowed-formats']),
        ('public-bare', True, ['public-image-metadata', 'public-image-metadata']),
        ('queued', True, []),
    ]
    # The bytes are not read: format integrity is skipped, never failed, for every image.
    for decision in admin:
        assert [(o.rule, o.status) for o in decision.outcomes if o.rule == 'format-integrity'] == [
            ('format-integrity', 'skipped')]
    # The size judged is what Glance recorded on the image.
    assert admin[1].violations[0].path == 'image.virtual_size'
    assert admin[1].violations[0].found == 30 * GIB
    # Visibility rules judge the caller's roles: a member could not create a public image.
    assert [v.rule for v in member[3].blocking] == ['public-images-admin-only']
    assert summarize(admin) == {'evaluated': 5, 'allowed': 3, 'refused': 2, 'warnings': 2}
    assert summarize([]) == {'evaluated': 0, 'allowed': 0, 'refused': 0, 'warnings': 0}


def test_refusal_lines_name_the_request_or_image_and_each_refusing_rule(default_policy):
    decision = evaluate_batch(default_policy, [audit_request(glance_image('vdi', disk_format='vdi'), ADMIN)])[0]
    assert refusal_line(None, decision).startswith('image vdi (id-vdi): [allowed-formats] ')
    assert refusal_line('requests[3]', decision).startswith('requests[3] (create of vdi (id-vdi)): [allowed-formats] ')


class FakeAnsible:
    def __init__(self):
        self.moves = []

    def atomic_move(self, src, dest):
        self.moves.append(dest)
        os.replace(src, dest)


def writer(tmp_path, check_mode=False, **paths):
    module = PolicyCheckModule.__new__(PolicyCheckModule)
    module.params = {'report_json': None, 'report_junit': None, 'report_sarif': None, **paths}
    module.check_mode = check_mode
    module.result = {'changed': False, 'reports': {}, 'reports_changed': []}
    module.ansible = FakeAnsible()
    return module


def test_reports_are_written_atomically_once_and_not_in_check_mode(tmp_path, default_policy):
    decisions = evaluate_batch(default_policy, [audit_request(glance_image('vdi', disk_format='vdi'), ADMIN)])
    paths = {'report_json': str(tmp_path / 'a' / 'b' / 'r.json'), 'report_sarif': str(tmp_path / 'r.sarif')}

    check = writer(tmp_path, check_mode=True, **paths)
    check.write_reports(decisions, default_policy)
    assert check.result == {'changed': True, 'reports': {}, 'reports_changed': ['json', 'sarif']}
    assert sorted(os.listdir(tmp_path)) == []

    first = writer(tmp_path, **paths)
    first.write_reports(decisions, default_policy)
    assert first.result == {'changed': True, 'reports_changed': ['json', 'sarif'],
                            'reports': {'json': paths['report_json'], 'sarif': paths['report_sarif']}}
    assert first.ansible.moves == [paths['report_json'], paths['report_sarif']]
    assert sorted(os.listdir(tmp_path)) == ['a', 'r.sarif']
    assert os.listdir(tmp_path / 'a' / 'b') == ['r.json']  # no temporary file left behind
    with open(paths['report_json'], encoding='utf-8') as stream:
        assert '"allowed-formats"' in stream.read()

    again = writer(tmp_path, **paths)
    again.write_reports(decisions, default_policy)
    assert again.result == {'changed': False, 'reports_changed': [], 'reports': first.result['reports']}
    assert again.ansible.moves == []

    other = evaluate_batch(default_policy, [audit_request(glance_image('ok'), ADMIN)])
    changed = writer(tmp_path, check_mode=True, **paths)
    changed.write_reports(other, default_policy)
    assert changed.result['reports_changed'] == ['json', 'sarif']


def test_a_report_path_that_is_a_directory_is_an_option_error(tmp_path, default_policy):
    module = writer(tmp_path, report_junit=str(tmp_path))
    with pytest.raises(ImagegovError, match=r'^Option report_junit: .* is a directory; give the path of a file\.$'):
        module.write_reports([], default_policy)


def test_audit_lists_every_visible_image_once_sorted_by_name():
    class FakeGlance:
        def __init__(self):
            self.calls = []

        def iter_images(self, filters):
            self.calls.append(filters)
            if ('os_hidden', 'true') in filters:
                return iter([glance_image('b-hidden', os_hidden=True)])
            return iter([glance_image('c'), glance_image('a'), {'id': 'no-name', 'name': None}])

    module = PolicyCheckModule.__new__(PolicyCheckModule)
    module._glance = FakeGlance()  # pylint: disable=protected-access
    assert [image['id'] for image in module.visible_images()] == ['no-name', 'id-a', 'id-b-hidden', 'id-c']
    assert module._glance.calls == [  # pylint: disable=protected-access
        [('visibility', 'all'), ('member_status', 'all'), ('os_hidden', 'false')],
        [('visibility', 'all'), ('member_status', 'all'), ('os_hidden', 'true')],
    ]
    assert policy_check.HIDDEN_PASSES == ('false', 'true')
