# PRIVATE to the collection: not a public API.
"""Decisions as SARIF 2.1.0, for code-scanning dashboards.

Every policy rule is a reportingDescriptor; every violation a result whose level
follows the rule's mode (enforce: error, warn: warning, audit: note). Waived
violations carry an accepted external suppression. Results point at the image
(logicalLocation) and, when the request names one, at the catalog file
(physicalLocation); the rule's policy file is a relatedLocation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, TypeAlias
from urllib.parse import quote as url_quote

from .decision import Decision, Violation
from .policy import Policy
from .report_json import Decisions, as_list

SARIF_SCHEMA_URI = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json'
SARIF_VERSION = '2.1.0'
TOOL_NAME = 'imagegov.openstack policy'
TOOL_INFORMATION_URI = 'https://galaxy.ansible.com/ui/repo/published/imagegov/openstack/'

LEVELS = {'enforce': 'error', 'warn': 'warning', 'audit': 'note'}
# GitHub code scanning ranks security results by this 0-10 score.
SECURITY_SEVERITY = {'critical': '9.5', 'high': '8.0', 'medium': '5.5', 'low': '2.0'}


def sarif_log(
    decisions: Decisions,
    policy: Policy | None = None,
    tool_version: str | None = None,
    information_uri: str = TOOL_INFORMATION_URI,
) -> dict[str, Any]:
    items = as_list(decisions)
    descriptors, index_of, rule_files = _descriptors(items, policy)
    driver: dict[str, Any] = {'name': TOOL_NAME, 'informationUri': information_uri, 'rules': descriptors}
    if tool_version:
        driver['version'] = tool_version
    results = [
        _result(decision, violation, index_of, rule_files) for decision in items for violation in decision.violations
    ]
    return {
        '$schema': SARIF_SCHEMA_URI,
        'version': SARIF_VERSION,
        'runs': [
            {
                'tool': {'driver': driver},
                'invocations': [{'executionSuccessful': True}],
                'results': results,
            }
        ],
    }


def render_sarif(
    decisions: Decisions,
    policy: Policy | None = None,
    tool_version: str | None = None,
    information_uri: str = TOOL_INFORMATION_URI,
    indent: int | None = 2,
) -> str:
    return json.dumps(sarif_log(decisions, policy, tool_version, information_uri), indent=indent, default=str)


RuleFiles: TypeAlias = 'dict[str, tuple[str, int | None]]'


def _descriptors(
    decisions: list[Decision], policy: Policy | None
) -> tuple[list[dict[str, Any]], dict[str, int], RuleFiles]:
    descriptors: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    rule_files: RuleFiles = {}

    def add(rule_id: str, rule_type: str, description: str, severity: str, mode: str) -> None:
        index_of[rule_id] = len(descriptors)
        descriptors.append(
            {
                'id': rule_id,
                'shortDescription': {'text': description or rule_id},
                'defaultConfiguration': {'level': LEVELS.get(mode, 'warning')},
                'properties': {
                    'tags': ['imagegov', rule_type, severity],
                    'type': rule_type,
                    'severity': severity,
                    'mode': mode,
                    'security-severity': SECURITY_SEVERITY.get(severity, '5.5'),
                },
            }
        )

    if policy is not None:
        for rule in policy.rules:
            add(rule.id, rule.type_name, rule.description, rule.severity, rule.mode)
            if rule.source:
                rule_files[rule.id] = (rule.source, rule.line)
    for decision in decisions:
        for violation in decision.violations:
            if violation.rule not in index_of:
                add(violation.rule, violation.type, violation.description, violation.severity, violation.mode)
            if violation.source and violation.rule not in rule_files:
                rule_files[violation.rule] = (violation.source, None)
    return descriptors, index_of, rule_files


def _result(
    decision: Decision, violation: Violation, index_of: Mapping[str, int], rule_files: RuleFiles
) -> dict[str, Any]:
    result: dict[str, Any] = {
        'ruleId': violation.rule,
        'ruleIndex': index_of[violation.rule],
        'kind': 'fail',
        'level': LEVELS.get(violation.mode, 'warning'),
        'message': {'text': violation.message},
        'locations': [_image_location(decision)],
        'properties': {
            'action': decision.action,
            'path': violation.path,
            'expected': violation.expected,
            'found': violation.found,
            'severity': violation.severity,
            'mode': violation.mode,
            'exception': violation.exception,
        },
    }
    if violation.rule in rule_files:
        path, line = rule_files[violation.rule]
        related = {
            'id': 0,
            'physicalLocation': _physical(path, line),
            'message': {'text': f"policy rule '{violation.rule}'"},
        }
        result['relatedLocations'] = [related]
    if violation.waived:
        exception = violation.exception or {}
        result['suppressions'] = [
            {
                'kind': 'external',
                'status': 'accepted',
                'justification': '{} (exception {}, owner {}, expires {})'.format(
                    exception.get('reason'), exception.get('id'), exception.get('owner'), exception.get('expires')
                ),
            }
        ]
    return result


def _image_location(decision: Decision) -> dict[str, Any]:
    name, image_id = decision.image.get('name'), decision.image.get('id')
    logical = {
        'name': str(name or image_id or 'new image'),
        'fullyQualifiedName': f'image/{image_id or name or "new"}',
        'kind': 'resource',
    }
    location: dict[str, Any] = {'logicalLocations': [logical]}
    source = decision.source or {}
    path = source.get('path') or source.get('file')
    if path:
        location['physicalLocation'] = _physical(str(path), source.get('line'))
    return location


def _physical(path: str, line: Any) -> dict[str, Any]:
    physical: dict[str, Any] = {'artifactLocation': {'uri': _uri(path)}}
    if isinstance(line, int) and not isinstance(line, bool) and line >= 1:
        physical['region'] = {'startLine': line}
    return physical


def _uri(path: str) -> str:
    portable = path.replace(os.sep, '/')
    if os.path.isabs(path):
        return f'file://{url_quote(portable)}'
    return url_quote(portable)
