"""Rule type `access_protection`: exact verdicts for the requests in fixtures/rules/access_protection.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/access_protection.yml'


def test_access_protection_case(case, check_case):
    check_case(case)
