"""The rule type registry: every type is documented, has a valid params schema and its own fixture test."""

from __future__ import annotations

import ast
from pathlib import Path

import cerberus
import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine
from ansible_collections.imagegov.openstack.plugins.module_utils.policy.rules import base

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[2] / 'plugins' / 'module_utils' / 'policy'
EXPECTED_TYPES = [
    'access_protection',
    'allowed_formats',
    'allowed_sources',
    'delete_protection',
    'expression',
    'format_integrity',
    'max_size',
    'name_pattern',
    'required_properties',
    'restricted_visibility',
]


def test_registered_types():
    assert sorted(engine.RULE_TYPES) == EXPECTED_TYPES


@pytest.mark.parametrize('type_name', EXPECTED_TYPES)
def test_rule_type_contract(type_name):
    rule_cls = engine.RULE_TYPES[type_name]
    assert issubclass(rule_cls, engine.Rule)
    assert (PACKAGE / 'rules' / (f'{type_name}.py')).is_file()
    assert rule_cls.__doc__ and rule_cls.example  # the rest: test_policy_rule_reference.py
    cerberus.Validator(rule_cls.params_schema)  # raises SchemaError if the schema is malformed
    assert set(rule_cls.default_actions) <= set(engine.ACTIONS)
    assert rule_cls.evaluate is not engine.Rule.evaluate
    assert (HERE / 'fixtures' / 'rules' / (f'{type_name}.yml')).is_file()
    assert (HERE / (f'test_policy_rule_{type_name}.py')).is_file()


def test_only_the_usage_rules_need_usage():
    assert [name for name, cls in sorted(engine.RULE_TYPES.items()) if cls.needs_usage] == [
        'access_protection',
        'delete_protection',
    ]
    assert [name for name, cls in sorted(engine.RULE_TYPES.items()) if cls.needs_content] == ['format_integrity']


def test_register_refuses_duplicates_and_nameless_types():
    class Nameless(engine.Rule):
        pass

    with pytest.raises(ValueError):
        engine.register(Nameless)

    class Again(engine.Rule):
        type_name = 'max_size'

    with pytest.raises(ValueError):
        engine.register(Again)
    assert engine.RULE_TYPES['max_size'] is not Again


def test_register_adds_a_type_usable_in_policies():
    class MinRam(engine.Rule):
        """min_ram must be at least a floor.

        params:
          mib: number, required.
        """

        type_name = 'min_ram_for_test'
        params_schema = {'mib': {'type': 'integer', 'required': True}}
        default_message = '{image}: min_ram {found} is below {expected}'

        def evaluate(self, request):
            value = request.get('min_ram') or 0
            return [] if value >= self.params['mib'] else [engine.Finding('image.min_ram', value, self.params['mib'])]

    engine.register(MinRam)
    try:
        policy = engine.load_policy_text('version: 1\nrules: [{id: ram, type: min_ram_for_test, params: {mib: 512}}]\n')
    finally:
        del base.RULE_TYPES['min_ram_for_test']
    decision = engine.evaluate(policy, {'action': 'create', 'image': {'name': 'x', 'min_ram': 128}})
    assert decision.violations[0].message == "'x': min_ram 128 is below 512"


def test_every_engine_file_is_marked_private_and_ansible_free():
    for path in sorted(PACKAGE.rglob('*.py')):
        text = path.read_text(encoding='utf-8')
        assert text.startswith('# PRIVATE to the collection: not a public API.\n'), path
        assert 'import ansible' not in text and 'from ansible' not in text, path
        assert 'from __future__ import annotations' in text, path
        # Modules may run on an older target Python: no syntax newer than 3.9.
        ast.parse(text, filename=str(path), feature_version=(3, 9))
