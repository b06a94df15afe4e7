"""Rule type `required_properties`: exact verdicts for the requests in fixtures/rules/required_properties.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/required_properties.yml'


def test_required_properties_case(case, check_case):
    check_case(case)
