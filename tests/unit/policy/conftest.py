"""Fixtures of the policy engine tests: the test clock, a usage double, rule fixture cases."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

FIXTURES = Path(__file__).resolve().parent / 'fixtures'

# Evaluation clock for every test: exceptions in fixtures expire around it.
NOW = datetime.datetime(2025, 6, 15, 12, 0, tzinfo=datetime.timezone.utc)


class FakeUsage:
    """Usage provider test double: canned usage per image id, records every call."""

    def __init__(self, by_id: dict[str, dict[str, Any]] = None, default: dict[str, Any] = None) -> None:
        self.by_id = by_id or {}
        self.default = (
            default if default is not None else {'servers': [], 'images': [], 'volumes': [], 'not_checked': []}
        )
        self.calls: list[str] = []

    def __call__(self, image: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(image.get('id'))
        return self.by_id.get(image.get('id'), self.default)


@pytest.fixture
def now() -> datetime.datetime:
    return NOW


@pytest.fixture
def fake_usage() -> Callable[..., FakeUsage]:
    """Factory of usage provider test doubles (FakeUsage)."""
    return FakeUsage


def load_yaml(path: Path) -> Any:
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Test modules with `RULE_FIXTURE = 'rules/<type>.yml'` get one test per `case`."""
    fixture_name = getattr(metafunc.module, 'RULE_FIXTURE', None)
    if fixture_name and 'case' in metafunc.fixturenames:
        spec = load_yaml(FIXTURES / fixture_name)
        cases = [dict(case, outcome='pass') for case in spec.get('pass', [])]
        cases += [dict(case, outcome='fail') for case in spec.get('fail', [])]
        metafunc.parametrize('case', cases, ids=[f'{case["outcome"]}:{case["name"]}' for case in cases])


@pytest.fixture
def rule_policy(request: pytest.FixtureRequest) -> Any:
    """The policy of the test module's rule fixture (its `policy:` document)."""
    spec = load_yaml(FIXTURES / request.module.RULE_FIXTURE)
    return engine.load_policy_documents([(request.module.RULE_FIXTURE, spec['policy'])])


@pytest.fixture
def check_case(rule_policy: Any) -> Callable[[dict[str, Any]], None]:
    """Run one Checkov-style case: `pass` cases have no violation, `fail` cases exactly those listed."""

    def check(case: dict[str, Any]) -> None:
        usage = FakeUsage(case.get('usage_by_id'))
        decision = engine.evaluate(rule_policy, case['request'], usage_provider=usage, now=NOW)
        if case['outcome'] == 'pass':
            assert decision.violations == [], [violation.message for violation in decision.violations]
            assert decision.allowed
            return
        expected = case['violations']
        assert len(decision.violations) == len(expected), [violation.as_dict() for violation in decision.violations]
        for violation, wanted in zip(decision.violations, expected, strict=False):
            found = violation.as_dict()
            for key, value in wanted.items():
                if key == 'message_contains':
                    for fragment in value if isinstance(value, list) else [value]:
                        assert fragment in violation.message, violation.message
                else:
                    assert found[key] == value, (key, found)
        assert decision.allowed is case.get('allowed', False)

    return check
