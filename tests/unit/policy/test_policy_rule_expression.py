"""Rule type `expression`: exact verdicts for the requests in fixtures/rules/expression.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/expression.yml'


def test_expression_case(case, check_case):
    check_case(case)
