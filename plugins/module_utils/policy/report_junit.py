# PRIVATE to the collection: not a public API.
"""Decisions as JUnit XML: one testsuite per request, one testcase per applicable rule.

Enforce-mode violations that no exception waives are <failure>s; warnings, audit
findings and waived violations go to the testcase's <system-out>, so CI shows
them without failing. Follows the common (Jenkins/Ant) JUnit schema shape.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from .decision import SKIPPED, Decision, RuleOutcome, Violation
from .report_json import Decisions, as_list

DEFAULT_SUITE_NAME = 'imagegov.openstack policy'


def render_junit(decisions: Decisions, name: str = DEFAULT_SUITE_NAME) -> str:
    items = as_list(decisions)
    root = ET.Element('testsuites', name=name)
    totals = {'tests': 0, 'failures': 0}
    for index, decision in enumerate(items):
        suite = _suite(decision, index)
        root.append(suite)
        totals['tests'] += int(suite.get('tests', '0'))
        totals['failures'] += int(suite.get('failures', '0'))
    root.set('tests', str(totals['tests']))
    root.set('failures', str(totals['failures']))
    root.set('errors', '0')
    root.set('time', '0')
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{ET.tostring(root, encoding="unicode")}\n'


def _suite(decision: Decision, index: int) -> ET.Element:
    cases = [_case(outcome) for outcome in decision.outcomes]
    failures = sum(1 for case in cases if case.find('failure') is not None)
    skipped = sum(1 for case in cases if case.find('skipped') is not None)
    suite = ET.Element(
        'testsuite',
        {
            'name': f'{decision.action} {decision.image_label}',
            'id': str(index),
            'tests': str(len(cases)),
            'failures': str(failures),
            'errors': '0',
            'skipped': str(skipped),
            'time': '0',
        },
    )
    properties = ET.SubElement(suite, 'properties')
    for key, value in (
        ('action', decision.action),
        ('image.id', decision.image.get('id')),
        ('image.name', decision.image.get('name')),
        ('allowed', decision.allowed),
    ):
        ET.SubElement(properties, 'property', name=key, value=_text(value))
    suite.extend(cases)
    return suite


def _text(value: object) -> str:
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _case(outcome: RuleOutcome) -> ET.Element:
    case = ET.Element('testcase', name=outcome.rule, classname=f'imagegov.policy.{outcome.type}', time='0')
    if outcome.status == SKIPPED:
        ET.SubElement(case, 'skipped', message=outcome.note or 'not applicable')
        return case
    blocking = [violation for violation in outcome.violations if violation.blocking]
    if blocking:
        failure = ET.SubElement(case, 'failure', message=blocking[0].message, type=blocking[0].severity)
        failure.text = '\n'.join(_detail(violation) for violation in blocking)
    others = [violation for violation in outcome.violations if not violation.blocking]
    if others:
        ET.SubElement(case, 'system-out').text = '\n'.join(_detail(violation) for violation in others)
    return case


def _detail(violation: Violation) -> str:
    lines: list[str] = [
        f'[{violation.mode}/{violation.severity}] {violation.message}',
        f'  path: {violation.path}',
        f'  expected: {json.dumps(violation.expected, default=str)}',
        f'  found: {json.dumps(violation.found, default=str)}',
    ]
    if violation.exception:
        lines.append(
            '  exception: {} ({}, expires {})'.format(
                violation.exception['id'], violation.exception['status'], violation.exception['expires']
            )
        )
    return '\n'.join(lines)
