"""Rule type `max_size`: exact verdicts for the requests in fixtures/rules/max_size.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/max_size.yml'


def test_max_size_case(case, check_case):
    check_case(case)
