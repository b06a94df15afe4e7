"""The rule type reference in policies/README.md is written from the rule classes, and every
class documents each param and gives an example that loads as a policy."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine
from ansible_collections.imagegov.openstack.plugins.module_utils.policy.reference import (
    replace_reference,
    rule_reference,
)

README = Path(__file__).resolve().parents[3] / 'policies' / 'README.md'
WRITE = 'IMAGEGOV_WRITE_REFERENCE'


def test_the_readme_reference_is_what_the_rule_classes_say():
    text = README.read_text(encoding='utf-8')
    expected = replace_reference(text, rule_reference())
    if os.environ.get(WRITE):
        README.write_text(expected, encoding='utf-8')
        text = expected
    assert text == expected, (
        'policies/README.md does not say what the rule classes say; write it again with '
        f'{WRITE}=1 .venv/bin/pytest tests/unit/policy/test_policy_rule_reference.py'
    )


@pytest.mark.parametrize('type_name', sorted(engine.RULE_TYPES))
def test_every_rule_type_documents_each_param_and_its_example_loads(type_name):
    rule = engine.RULE_TYPES[type_name]
    assert inspect.cleandoc(rule.__doc__ or '').count('\n') >= 2, 'a summary line and a description'
    for param, rules in rule.params_schema.items():
        assert (rules.get('meta') or {}).get('doc'), f'{type_name}.params.{param} has no meta doc'
    example = yaml.safe_load(inspect.cleandoc(rule.example))
    assert [item['type'] for item in example] == [type_name] * len(example)
    engine.load_policy_documents([(f'{type_name} example', {'version': 1, 'rules': example})])
