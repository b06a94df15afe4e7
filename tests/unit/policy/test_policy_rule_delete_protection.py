"""Rule type `delete_protection`: exact verdicts for the requests in fixtures/rules/delete_protection.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/delete_protection.yml'


def test_delete_protection_case(case, check_case):
    check_case(case)
