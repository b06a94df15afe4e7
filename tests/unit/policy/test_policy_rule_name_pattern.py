"""Rule type `name_pattern`: exact verdicts for the requests in fixtures/rules/name_pattern.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/name_pattern.yml'


def test_name_pattern_case(case, check_case):
    check_case(case)
