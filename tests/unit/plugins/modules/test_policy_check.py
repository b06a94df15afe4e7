"""policy_check's own logic: request validation, audit requests, summaries and report files."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils._glance import Glance, GlanceError
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import ACTIONS as ENGINE_ACTIONS
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import evaluate_batch, load_policy
from ansible_collections.imagegov.openstack.plugins.modules.policy_check import (
    NOT_READ,
    PolicyCheckModule,
    audit_request,
    mark_not_read,
    refusal_line,
    request_problems,
    summarize,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ACTIONS = ', '.join(ENGINE_ACTIONS)
ADMIN = {'user': 'admin', 'user_id': 'u1', 'project': 'admin', 'project_id': 'p1', 'roles': ['admin', 'member']}
MEMBER = {'user': 'alice', 'user_id': 'u2', 'project': 'alpha', 'project_id': 'p2', 'roles': ['member']}
GIB = 1024**3
MIB = 1024**2
needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')


@pytest.fixture(scope='module')
def default_policy():
    return load_policy([os.path.join(REPO, 'policies', 'default.yml')])


def glance_image(name, **fields):
    image = {
        'id': f'id-{name}',
        'name': name,
        'status': 'active',
        'visibility': 'private',
        'disk_format': 'raw',
        'container_format': 'bare',
        'size': 1048576,
        'virtual_size': 1048576,
        'os_hidden': False,
        'owner': 'p1',
        'protected': False,
        'min_disk': 0,
        'min_ram': 0,
        'tags': [],
    }
    image.update(fields)
    return image


def texts(problems):
    return [str(problem) for problem in problems]


def test_well_formed_requests_have_no_problems():
    assert request_problems([]) == []
    assert (
        request_problems(
            [
                {'action': 'create', 'actor': MEMBER, 'image': {'name': 'x'}, 'current': None},
                {
                    'action': 'delete',
                    'image': None,
                    'current': {'id': 'i'},
                    'usage': {'servers': []},
                    'content': None,
                    'source': {'path': 'catalog.yml', 'line': 3},
                },
                {
                    'action': 'upload',
                    'image': {'name': 'x'},
                    'data_source': {'kind': 'url', 'url': 'https://example.org/x.img'},
                },
            ]
        )
        == []
    )
    assert texts(request_problems([{'action': 'upload', 'data_source': 'https://example.org/x.img'}])) == [
        "requests[0]: field 'data_source': must be of dict type, got 'https://example.org/x.img'"
    ]


def test_every_problem_is_reported_with_its_index_and_field():
    problems = request_problems(
        [
            {'action': 'create'},
            42,
            {'action': 7, 'usage': 'none', 'source': ['a']},
            {'action': 'Create', 'actor': {'roles': ['admin', 1]}},
            {'action': None, 'image': {}, 'imgae': 'x'},
            {'image': {'name': 'x'}, 'data_source': {'kind': 'ftp'}},
        ]
    )
    assert texts(problems) == [
        'requests[1]: must be a mapping (a request document with action, actor, image, current, ...), got 42',
        "requests[2]: field 'action': must be of string type, got 7",
        "requests[2]: field 'source': must be of dict type, got ['a']",
        "requests[2]: field 'usage': must be of dict type, got 'none'",
        f"requests[3]: field 'action': unallowed value 'Create'; expected one of: {ACTIONS}",
        "requests[3]: field 'actor.roles[1]': must be of string type, got 1",
        "requests[4]: field 'action': must not be null",
        "requests[4]: field 'imgae': unknown field; expected one of: action, actor, content, current, data_source, "
        'image, server, source, usage',
        "requests[5]: field 'action': required field is missing",
        "requests[5]: field 'data_source.kind': unallowed value 'ftp'; expected one of: url, file, glance",
    ]
    assert problems[1].as_dict() == {
        'file': 'requests[2]',
        'line': None,
        'item': None,
        'field': 'action',
        'message': 'must be of string type, got 7',
        'text': "requests[2]: field 'action': must be of string type, got 7",
    }


def test_long_values_are_shortened_in_messages():
    problem = str(request_problems(['x' * 200])[0])
    assert problem.endswith(f"got '{'x' * 76}...")


def judged(policy, documents):
    """Decisions as the module reports them: format_integrity on unread bytes is skipped."""
    decisions = evaluate_batch(policy, documents)
    mark_not_read(decisions, documents, [NOT_READ] * len(documents))
    return decisions


def test_audit_request_judges_the_image_as_it_stands(default_policy):
    images = [
        glance_image('ok'),
        glance_image('big', size=2 * GIB, virtual_size=30 * GIB),
        glance_image('vdi', disk_format='vdi'),
        glance_image('public-bare', visibility='public'),
        glance_image('queued', status='queued', size=None, virtual_size=None, disk_format=None, container_format=None),
    ]
    admin = judged(default_policy, [audit_request(image, ADMIN) for image in images])
    member = judged(default_policy, [audit_request(image, MEMBER) for image in images])
    verdicts = [
        ('ok', True, []),
        ('big', False, ['max-image-size']),
        ('vdi', False, ['allowed-formats']),
        ('public-bare', True, ['public-image-metadata', 'public-image-metadata']),
        ('queued', True, []),
    ]
    assert [d.action for d in admin] == ['create'] * 5
    assert [(d.image['name'], d.allowed, [v.rule for v in d.violations]) for d in admin] == verdicts
    # The images belong to the admin project: who audits them does not change the verdict,
    # and a member's audit does not flag the administrator's public image.
    assert [(d.image['name'], d.allowed, [v.rule for v in d.violations]) for d in member] == verdicts
    assert [d.as_dict() for d in member] == [d.as_dict() for d in admin]
    # The size judged is what Glance recorded, given as the content facts.
    assert admin[1].violations[0].path == 'content.virtual_size'
    assert admin[1].violations[0].found == 30 * GIB
    # The bytes are not read: format integrity judges nothing, and says why.
    for decision in admin:
        assert [(o.rule, o.status, o.note) for o in decision.outcomes if o.rule == 'format-integrity'] == [
            ('format-integrity', 'skipped', NOT_READ)
        ]
    assert summarize(admin) == {'evaluated': 5, 'allowed': 3, 'refused': 2, 'warnings': 2}
    assert summarize([]) == {'evaluated': 0, 'allowed': 0, 'refused': 0, 'warnings': 0}


def test_the_actor_is_the_owner_with_the_callers_roles_only_in_the_callers_project():
    own = audit_request(glance_image('mine', owner='p2', visibility='shared'), MEMBER)
    assert own['actor'] == {
        'user': 'alice',
        'user_id': 'u2',
        'project': 'alpha',
        'project_id': 'p2',
        'roles': ['member'],
    }
    foreign = audit_request(glance_image('theirs', owner='p1'), MEMBER)
    assert foreign['actor'] == {'user': None, 'project': 'p1', 'project_id': 'p1', 'roles': []}
    unowned = audit_request(glance_image('nobody', owner=None), dict(MEMBER, project_id=None))
    assert unowned['actor'] == {'user': None, 'project': None, 'roles': []}
    # It exists and nothing changes: the image is its own current state.
    assert own['current'] == own['image'] == glance_image('mine', owner='p2', visibility='shared')
    assert own['content'] == {'size': 1048576, 'virtual_size': 1048576, 'recorded_by': 'glance'}


def test_a_public_image_of_the_callers_own_project_is_not_a_new_publication(default_policy):
    decision = judged(
        default_policy,
        [
            audit_request(
                glance_image('mine', owner='p2', visibility='public', os_distro='ubuntu', architecture='x86_64'), MEMBER
            )
        ],
    )[0]
    assert decision.allowed and decision.violations == []
    assert ('public-images-admin-only', 'passed') in [(o.rule, o.status) for o in decision.outcomes]


def test_glance_recorded_content_is_not_undetected_but_a_read_without_format_is(default_policy):
    recorded = audit_request(glance_image('a', disk_format='qcow2'), ADMIN)
    decision = evaluate_batch(default_policy, [recorded])[0]
    assert decision.violations == []
    assert [(o.status, o.note) for o in decision.outcomes if o.rule == 'format-integrity'] == [('passed', '')]
    # Facts from bytes that were read but matched no format are still refused.
    read = audit_request(glance_image('b', disk_format='qcow2'), ADMIN, {'size': 10, 'safety_failures': []})
    decision = judged(default_policy, [read])[0]
    assert [(v.rule, v.path) for v in decision.violations] == [('format-integrity', 'content.detected_format')]
    assert [o.status for o in decision.outcomes if o.rule == 'format-integrity'] == ['violated']


def test_oversize_virtual_size_recorded_by_glance_is_flagged(default_policy):
    document = audit_request(
        glance_image('sparse', disk_format='qcow2', size=196 * 1024, virtual_size=30 * GIB), MEMBER
    )
    decision = judged(default_policy, [document])[0]
    assert not decision.allowed
    assert [(v.rule, v.path, v.found, v.expected) for v in decision.violations] == [
        ('max-image-size', 'content.virtual_size', 30 * GIB, 25 * GIB)
    ]
    assert 'virtual size 30 GiB is over the 25 GiB limit' in decision.violations[0].message


def test_evaluated_requests_with_glance_recorded_content_are_marked_too(default_policy):
    documents = [
        {
            'action': 'create',
            'image': {'name': 'r', 'disk_format': 'raw'},
            'current': None,
            'content': {'size': 1, 'recorded_by': 'glance'},
        },
        {
            'action': 'create',
            'image': {'name': 'q', 'disk_format': 'raw'},
            'current': None,
            'content': {'detected_format': 'qcow2', 'recorded_by': 'glance'},
        },
        {'action': 'create', 'image': {'name': 'n', 'disk_format': 'raw'}, 'current': None},
    ]
    decisions = evaluate_batch(default_policy, documents)
    mark_not_read(decisions, documents, [None] * 3)
    integrity = [[(o.status, o.note) for o in d.outcomes if o.rule == 'format-integrity'][0] for d in decisions]
    assert integrity[0][0] == 'skipped' and "Glance's record" in integrity[0][1]
    assert integrity[1] == ('violated', '')
    assert integrity[2] == ('skipped', 'no content facts in the request')


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
    assert first.result == {
        'changed': True,
        'reports_changed': ['json', 'sarif'],
        'reports': {'json': paths['report_json'], 'sarif': paths['report_sarif']},
    }
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
    class FakeGlance(Glance):
        def __init__(self):  # pylint: disable=super-init-not-called
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


def _qemu_img(*args):
    subprocess.run(['qemu-img', *args], check=True, capture_output=True)


class FakeDownloads(Glance):
    """Glance test double: images to list and the stored data of each, read by ranges."""

    def __init__(self, images, data):  # pylint: disable=super-init-not-called
        self.images = images
        self.data = data
        self.request_count = 0
        self.downloads = []

    def iter_images(self, filters):
        self.request_count += 1
        hidden = ('os_hidden', 'true') in filters
        return iter([image for image in self.images if image['os_hidden'] == hidden])

    def download(self, image_id, first_bytes=None):
        self.request_count += 1
        self.downloads.append((image_id, first_bytes))
        data = self.data[image_id]
        if isinstance(data, Exception):
            raise data
        head = data[:first_bytes]
        return len(head), iter([head[i : i + 4 * MIB] for i in range(0, len(head), 4 * MIB)])


class Exited(Exception):
    pass


class FakeModuleAnsible(FakeAnsible):
    no_log_values: set = set()

    def exit_json(self, **result):
        raise Exited(result)

    def fail_json(self, **result):
        raise Exited(result)


def audit_module(glance, caller, **params):
    module = PolicyCheckModule.__new__(PolicyCheckModule)
    module.params = {
        'mode': 'audit',
        'inspect': 'none',
        'requests': None,
        'report_json': None,
        'report_junit': None,
        'report_sarif': None,
        'fail_on_violation': False,
        'policy': [os.path.join(REPO, 'policies', 'default.yml')],
        'policy_documents': None,
        **params,
    }
    module.check_mode = False
    module.result = {'changed': False}
    module.ansible = FakeModuleAnsible()
    module.gate = None
    module._glance = glance  # pylint: disable=protected-access
    module._caller = caller  # pylint: disable=protected-access
    return module


def run_module(module):
    with pytest.raises(Exited) as exited:
        module.run()
    return exited.value.args[0]


@needs_qemu_img
def test_inspect_header_judges_the_stored_bytes(tmp_path):
    _qemu_img('create', '-f', 'qcow2', str(tmp_path / 'big.qcow2'), '30G')
    _qemu_img('create', '-f', 'qcow2', str(tmp_path / 'base.qcow2'), '1G')
    _qemu_img('create', '-f', 'qcow2', '-b', str(tmp_path / 'base.qcow2'), '-F', 'qcow2', str(tmp_path / 'child.qcow2'))
    qcow2 = (tmp_path / 'big.qcow2').read_bytes()
    child = (tmp_path / 'child.qcow2').read_bytes()
    raw = b'\0' * (9 * MIB)
    images = [
        glance_image('honest-raw', size=100 * GIB // 10, virtual_size=100 * GIB // 10),
        glance_image('qcow2-as-raw', size=len(qcow2), virtual_size=len(qcow2)),
        glance_image('honest-qcow2', disk_format='qcow2', size=len(qcow2), virtual_size=30 * GIB),
        glance_image('backing', disk_format='qcow2', size=len(child), virtual_size=GIB),
        glance_image('queued', status='queued', size=None, virtual_size=None),
        glance_image('ova', container_format='ova', disk_format='qcow2', os_hidden=True),
        glance_image('empty', size=0, virtual_size=0),
        glance_image('refused'),
    ]
    data = {
        'id-honest-raw': raw,
        'id-qcow2-as-raw': qcow2,
        'id-honest-qcow2': qcow2,
        'id-backing': child,
        'id-refused': GlanceError('Reading the data of image id-refused', 403, 'You are not authorized'),
    }
    glance = FakeDownloads(images, data)
    result = run_module(audit_module(glance, MEMBER, inspect='header'))
    decisions = {d['image']['name']: d for d in result['decisions']}
    violations = {name: [(v['rule'], v['path'], v['found']) for v in d['violations']] for name, d in decisions.items()}
    integrity = {name: [r for r in d['rules'] if r['rule'] == 'format-integrity'] for name, d in decisions.items()}
    assert violations['honest-raw'] == []
    assert integrity['honest-raw'] == [{'rule': 'format-integrity', 'type': 'format_integrity', 'status': 'passed'}]
    # The bytes are qcow2 whatever was declared, and Glance recorded the stored size as the
    # virtual size of a "raw" image: the header says 30 GiB.
    assert violations['qcow2-as-raw'] == [
        ('max-image-size', 'content.virtual_size', 30 * GIB),
        ('format-integrity', 'content.detected_format', 'qcow2'),
    ]
    assert violations['honest-qcow2'] == [('max-image-size', 'content.virtual_size', 30 * GIB)]
    assert violations['backing'] == [('format-integrity', 'content.safety_failures', 'backing_file')]
    # Images with nothing (useful) to read are not read; the note says why.
    assert [r['note'] for r in integrity['queued']] == [
        "inspect=header did not read this image: it is 'queued', not active, so Glance serves no data for it"
    ]
    assert [r['note'] for r in integrity['ova']] == [
        "inspect=header did not read this image: its container_format 'ova' wraps the disk, "
        'so its first bytes are not the disk image'
    ]
    assert [r['note'] for r in integrity['empty']] == [
        'inspect=header did not read this image: it has no data (size 0)'
    ]
    assert [r['note'] for r in integrity['refused']] == [
        'inspect=header could not read this image: HTTP 403: You are not authorized'
    ]
    assert {name for name, rules in integrity.items() if rules[0]['status'] == 'skipped'} == {
        'queued',
        'ova',
        'empty',
        'refused',
    }
    # One listing per hidden pass, then one ranged read of at most 8 MiB per image read.
    assert glance.downloads == [
        (f'id-{name}', 8 * MIB) for name in ('backing', 'honest-qcow2', 'honest-raw', 'qcow2-as-raw', 'refused')
    ]
    assert result['requests'] == 2 + 5
    assert result['summary'] == {'evaluated': 8, 'allowed': 5, 'refused': 3, 'warnings': 0}


def test_without_inspect_nothing_is_downloaded():
    glance = FakeDownloads([glance_image('a'), glance_image('b', visibility='public', owner='p9')], {})
    result = run_module(audit_module(glance, MEMBER))
    assert glance.downloads == []
    assert result['requests'] == 2
    assert [(d['image']['name'], d['allowed']) for d in result['decisions']] == [('a', True), ('b', True)]
    assert [[r.get('note') for r in d['rules'] if r['rule'] == 'format-integrity'] for d in result['decisions']] == [
        [NOT_READ],
        [NOT_READ],
    ]


def test_inspect_is_refused_in_evaluate_mode():
    module = audit_module(None, MEMBER, mode='evaluate', inspect='header', requests=[{'action': 'create'}])
    failure = run_module(module)
    assert failure['msg'] == (
        'Option inspect=header is only used with mode=audit; mode=evaluate judges the '
        'content facts given in each request. Remove inspect or set mode=audit.'
    )
