"""Policy loading: malformed fixtures report exact problems; valid sources load and merge."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

MALFORMED = Path(__file__).resolve().parent / 'fixtures' / 'malformed'
EXPECTED = yaml.safe_load((MALFORMED / 'expected.yml').read_text(encoding='utf-8'))

VALID_RULE = {'id': 'max-size', 'type': 'max_size', 'params': {'max_gib': 25}}


def test_every_malformed_fixture_has_expectations():
    fixtures = sorted(name for name in os.listdir(MALFORMED) if name != 'expected.yml')
    assert fixtures == sorted(EXPECTED)
    assert len(fixtures) >= 15


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_malformed_policy_reports_every_problem(name, monkeypatch):
    monkeypatch.chdir(MALFORMED)
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy(name)
    assert raised.value.messages == EXPECTED[name]


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_problem_names_the_file(name):
    for message in EXPECTED[name]:
        assert message.startswith(name)


def test_problems_name_rule_index_and_field():
    problem = engine.PolicyError  # one exception class for every kind of problem
    assert issubclass(problem, Exception)
    message = EXPECTED['01_param_type.yml'][0]
    assert "rule 'max-size' (rules[2])" in message
    assert "field 'params.max_gib'" in message
    assert "must be of number type, got 'ten'" in message


def test_error_summary_lists_all_problems(monkeypatch):
    monkeypatch.chdir(MALFORMED)
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy('25_many_problems.yml')
    text = str(raised.value)
    assert text.startswith('10 problems in policy:\n  - 25_many_problems.yml: ')
    assert all(message in text for message in EXPECTED['25_many_problems.yml'])
    assert all(isinstance(problem, engine.PolicyProblem) for problem in raised.value.problems)


def test_problems_across_several_files_are_all_reported(monkeypatch):
    monkeypatch.chdir(MALFORMED)
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy(['05_bad_mode.yml', '06_bad_severity.yml', 'no-such.yml'])
    assert raised.value.messages == [
        'no-such.yml: no such policy file or directory',
        EXPECTED['05_bad_mode.yml'][0],
        EXPECTED['06_bad_severity.yml'][0],
        "06_bad_severity.yml: rule 'max-size' (rules[0]): field 'id': duplicate rule id 'max-size'; "
        'first defined in 05_bad_mode.yml (rules[0])',
    ]


def test_directory_without_policy_files(tmp_path):
    (tmp_path / 'README.md').write_text('nothing here')
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy(tmp_path)
    assert raised.value.messages == [f'{tmp_path}: no *.yml or *.yaml policy files in this directory']


def test_directory_merges_files_in_name_order(tmp_path):
    (tmp_path / '20-formats.yaml').write_text(
        yaml.safe_dump(
            {
                'version': 1,
                'rules': [{'id': 'formats', 'type': 'allowed_formats', 'params': {'disk_formats': ['qcow2']}}],
            }
        )
    )
    (tmp_path / '10-size.yml').write_text(yaml.safe_dump({'version': 1, 'rules': [VALID_RULE]}))
    (tmp_path / '30-exceptions.yml').write_text(
        yaml.safe_dump(
            {
                'version': 1,
                'exceptions': [
                    {
                        'id': 'lab',
                        'rules': ['max-size', 'formats'],
                        'reason': 'lab',
                        'owner': 'ops',
                        'expires': '2030-01-01',
                    }
                ],
            }
        )
    )
    (tmp_path / 'tests').mkdir()
    (tmp_path / 'tests' / 'ignored.yml').write_text('not: [a policy')
    policy = engine.load_policy(tmp_path)
    assert [rule.id for rule in policy.rules] == ['max-size', 'formats']
    assert [waiver.id for waiver in policy.waivers] == ['lab']
    assert policy.rules[0].source == str(tmp_path / '10-size.yml')
    assert policy.rules[0].line == 2  # safe_dump sorts keys: 'rules:' is line 1


def test_defaults_apply_per_file(tmp_path):
    (tmp_path / 'a.yml').write_text(
        yaml.safe_dump(
            {
                'version': 1,
                'defaults': {'mode': 'warn', 'severity': 'low'},
                'rules': [VALID_RULE, dict(VALID_RULE, id='strict', mode='enforce', severity='critical')],
            }
        )
    )
    (tmp_path / 'b.yml').write_text(yaml.safe_dump({'version': 1, 'rules': [dict(VALID_RULE, id='plain')]}))
    policy = engine.load_policy(tmp_path)
    assert [(rule.id, rule.mode, rule.severity) for rule in policy.rules] == [
        ('max-size', 'warn', 'low'),
        ('strict', 'enforce', 'critical'),
        ('plain', 'enforce', 'medium'),
    ]


def test_rule_type_defaults_and_overrides():
    policy = engine.load_policy_documents(
        [
            (
                'memory',
                {
                    'version': 1,
                    'rules': [
                        VALID_RULE,
                        {'id': 'delete', 'type': 'delete_protection'},
                        {'id': 'size-on-delete', 'type': 'max_size', 'actions': ['delete'], 'params': {'max_gib': 1}},
                    ],
                },
            )
        ]
    )
    rules = policy.rules_by_id
    assert rules['max-size'].actions == frozenset(['create', 'update', 'upload', 'publish', 'share', 'reactivate'])
    assert rules['max-size'].params['which'] == ['size', 'virtual_size']
    assert rules['delete'].actions == frozenset(['delete'])
    assert rules['delete'].params == {'check': ['servers', 'images', 'volumes'], 'on_unknown': 'deny'}
    assert rules['size-on-delete'].actions == frozenset(['delete'])
    assert rules['max-size'].description == 'Refuse images whose stored size or virtual (disk) size exceeds a limit.'


def test_documents_accept_parsed_dates():
    policy = engine.load_policy_documents(
        [
            (
                'memory',
                {
                    'version': 1,
                    'rules': [VALID_RULE],
                    'exceptions': [
                        {
                            'id': 'lab',
                            'rules': ['max-size'],
                            'reason': 'r',
                            'owner': 'o',
                            'expires': datetime.date(2025, 6, 30),
                        },
                        {
                            'id': 'lab-2',
                            'rules': ['max-size'],
                            'reason': 'r',
                            'owner': 'o',
                            'expires': '2025-06-30T18:00:00Z',
                        },
                    ],
                },
            )
        ]
    )
    first, second = policy.waivers
    assert first.expires_at == datetime.datetime(2025, 7, 1, tzinfo=datetime.timezone.utc)
    assert first.expires_text == '2025-06-30'
    assert second.expires_at == datetime.datetime(2025, 6, 30, 18, tzinfo=datetime.timezone.utc)


def test_policy_text_and_its_errors():
    policy = engine.load_policy_text('version: 1\nrules:\n  - {id: a, type: max_size, params: {max_gib: 1}}\n')
    assert [rule.id for rule in policy.rules] == ['a']
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy_text('version: 1\nrules: [\n', source='inline')
    assert raised.value.messages == ['inline: invalid YAML at line 3, column 1: did not find expected node content']


def test_empty_file_is_reported(tmp_path):
    path = tmp_path / 'empty.yml'
    path.write_text('')
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy(path)
    assert raised.value.messages == [f'{path}: must be a mapping with version and rules, got an empty document']


def test_default_policy_loads():
    policy = engine.load_policy()
    assert policy.sources == (engine.DEFAULT_POLICY_PATH,)
    assert [rule.type_name for rule in policy.rules] == [
        'max_size',
        'allowed_formats',
        'restricted_visibility',
        'delete_protection',
        'access_protection',
        'access_protection',
        'format_integrity',
        'expression',
        'required_properties',
    ]
