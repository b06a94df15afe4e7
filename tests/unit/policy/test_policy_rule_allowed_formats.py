"""Rule type `allowed_formats`: exact verdicts for the requests in fixtures/rules/allowed_formats.yml."""

from __future__ import annotations

RULE_FIXTURE = 'rules/allowed_formats.yml'


def test_allowed_formats_case(case, check_case):
    check_case(case)
