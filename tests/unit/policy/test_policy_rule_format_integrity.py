"""Rule type `format_integrity`: exact verdicts for the requests in fixtures/rules/format_integrity.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/format_integrity.yml'


def test_format_integrity_case(case, check_case):
    check_case(case)
