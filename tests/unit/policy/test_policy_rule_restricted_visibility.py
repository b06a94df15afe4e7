"""Rule type `restricted_visibility`: exact verdicts for the requests in fixtures/rules/restricted_visibility.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/restricted_visibility.yml'


def test_restricted_visibility_case(case, check_case):
    check_case(case)
