"""The shipped default policy: policies/default.yml against the verdicts in policies/tests/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

POLICIES = Path(__file__).resolve().parents[3] / 'policies'
CASE_FILES = sorted((POLICIES / 'tests').glob('*.yml'))


def _cases():
    for path in CASE_FILES:
        for case in yaml.safe_load(path.read_text(encoding='utf-8')):
            yield pytest.param(case, id=f'{path.stem}:{case["name"]}')


@pytest.fixture(scope='module')
def default_policy():
    return engine.load_policy(POLICIES / 'default.yml')


def test_case_files_exist():
    assert CASE_FILES


@pytest.mark.parametrize('case', list(_cases()))
def test_default_policy_verdict(default_policy, case, fake_usage, now):
    decision = engine.evaluate(default_policy, case['request'], usage_provider=fake_usage(), now=now)
    assert [violation.rule for violation in decision.violations] == case['expect']['violations'], [
        violation.message for violation in decision.violations
    ]
    assert decision.allowed is case['expect']['allowed']


def test_default_policy_is_what_load_policy_uses_by_default(default_policy):
    assert [rule.id for rule in engine.load_policy().rules] == [rule.id for rule in default_policy.rules]


def test_default_policy_settings(default_policy):
    rules = default_policy.rules_by_id
    assert rules['max-image-size'].params == {'max_gib': 25, 'which': ['size', 'virtual_size']}
    assert rules['allowed-formats'].params == {
        'disk_formats': ['qcow2', 'raw', 'iso', 'aki', 'ari', 'ami'],
        'container_formats': ['bare', 'ami', 'aki', 'ari', 'ova'],
    }
    assert rules['public-images-admin-only'].params == {'visibilities': ['public', 'community'], 'roles': ['admin']}
    assert rules['no-delete-in-use'].actions == frozenset(['delete', 'unprotect'])
    assert rules['no-narrow-in-use'].actions == frozenset(['narrow'])
    assert rules['no-narrow-in-use'].mode == 'enforce' and rules['narrow-in-use-admin'].mode == 'warn'
    assert rules['format-integrity'].mode == 'enforce'
    assert rules['public-image-metadata'].mode == 'warn'
    assert rules['public-image-metadata'].params['properties'] == ['os_distro', 'architecture']
