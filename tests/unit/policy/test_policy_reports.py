"""Renderers: JSON round-trips, JUnit XML parses with the expected counts, SARIF is 2.1.0-shaped.

The official SARIF 2.1.0 JSON schema cannot be downloaded here, so the SARIF test
checks the schema's structural rules for every object the renderer emits: required
properties, enumerations, and `additionalProperties: false` (the allowed keys below
are the schema's own property lists for those definitions).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

POLICY_TEXT = """
version: 1
rules:
  - id: max-size
    description: At most 25 GiB.
    type: max_size
    params: {max_gib: 25}
  - id: formats
    type: allowed_formats
    mode: warn
    severity: low
    params: {disk_formats: [qcow2]}
  - id: integrity
    type: format_integrity
    severity: critical
  - id: audit-names
    type: name_pattern
    mode: audit
    params: {pattern: '[a-z-]+'}
exceptions:
  - id: lab
    rules: [max-size]
    match: {projects: [lab]}
    reason: HPC images
    owner: hpc
    expires: 2030-01-01
"""
GIB = 1024**3


@pytest.fixture(scope='module')
def policy():
    return engine.load_policy_text(POLICY_TEXT, source='policies/site.yml')


@pytest.fixture(scope='module')
def decisions(policy):
    requests = [
        # 0: allowed, nothing wrong (integrity skipped: no content)
        {'action': 'create', 'actor': {'project': 'demo'}, 'image': {'name': 'ok', 'disk_format': 'qcow2'}},
        # 1: two enforce failures (size, integrity x2), a warning, an audit note
        {
            'action': 'upload',
            'actor': {'project': 'demo'},
            'image': {'id': 'i-1', 'name': 'Big', 'disk_format': 'raw'},
            'content': {'detected_format': 'qcow2', 'virtual_size': 30 * GIB, 'safety_failures': ['backing_file']},
            'source': {'path': 'catalog/images.yml', 'line': 12},
        },
        # 2: size violation waived by the lab exception
        {'action': 'create', 'actor': {'project': 'lab'}, 'image': {'name': 'hpc', 'size': 40 * GIB}},
    ]
    return engine.evaluate_batch(policy, requests)


def test_json_report(decisions):
    report = json.loads(engine.render_json(decisions))
    assert report['allowed'] is False
    assert report['decisions'] == [json.loads(json.dumps(decision.as_dict())) for decision in decisions]
    single = json.loads(engine.render_json(decisions[0], indent=None))
    assert single == {'allowed': True, 'decisions': [decisions[0].as_dict()]}


def test_junit_report_parses_with_expected_counts(decisions):
    root = ET.fromstring(engine.render_junit(decisions).encode('utf-8'))
    assert root.tag == 'testsuites'
    suites = root.findall('testsuite')
    assert [suite.get('name') for suite in suites] == ['create ok', 'upload Big (i-1)', 'create hpc']
    counts = [
        (int(suite.get('tests')), int(suite.get('failures')), int(suite.get('skipped')), len(suite.findall('testcase')))
        for suite in suites
    ]
    assert counts == [(4, 0, 1, 4), (4, 2, 0, 4), (4, 0, 1, 4)]
    assert (root.get('tests'), root.get('failures'), root.get('errors')) == ('12', '2', '0')

    cases = {case.get('name'): case for case in suites[1].findall('testcase')}
    assert set(cases) == {'max-size', 'formats', 'integrity', 'audit-names'}
    assert cases['max-size'].get('classname') == 'imagegov.policy.max_size'
    integrity = cases['integrity'].find('failure')
    assert integrity.get('type') == 'critical'
    assert integrity.get('message').startswith("'Big': disk_format is 'raw' but the content is 'qcow2'")
    assert integrity.text.count('[enforce/critical]') == 2
    assert cases['formats'].find('failure') is None
    assert '[warn/low]' in cases['formats'].find('system-out').text
    assert '[audit/medium]' in cases['audit-names'].find('system-out').text

    waived = {case.get('name'): case for case in suites[2].findall('testcase')}['max-size']
    assert waived.find('failure') is None
    assert 'exception: lab (applied, expires 2030-01-01)' in waived.find('system-out').text
    properties = {item.get('name'): item.get('value') for item in suites[1].find('properties')}
    assert properties == {'action': 'upload', 'image.id': 'i-1', 'image.name': 'Big', 'allowed': 'false'}


def test_junit_children_order_and_attributes(decisions):
    root = ET.fromstring(engine.render_junit(decisions))
    for suite in root.findall('testsuite'):
        assert suite[0].tag == 'properties'  # the JUnit schema wants properties first
        for case in suite.findall('testcase'):
            assert set(case.attrib) == {'name', 'classname', 'time'}
            assert len([child for child in case if child.tag in ('failure', 'skipped', 'error')]) <= 1


# --- SARIF 2.1.0 structure -------------------------------------------------------------

SARIF_OBJECTS = {
    'sarifLog': ({'$schema', 'version', 'runs', 'inlineExternalProperties', 'properties'}, {'version', 'runs'}),
    'run': (
        {
            'tool',
            'invocations',
            'conversion',
            'language',
            'versionControlProvenance',
            'originalUriBaseIds',
            'artifacts',
            'logicalLocations',
            'graphs',
            'results',
            'automationDetails',
            'runAggregates',
            'baselineGuid',
            'redactionTokens',
            'defaultEncoding',
            'defaultSourceLanguage',
            'newlineSequences',
            'columnKind',
            'externalPropertyFileReferences',
            'threadFlowLocations',
            'taxonomies',
            'addresses',
            'translations',
            'policies',
            'webRequests',
            'webResponses',
            'specialLocations',
            'properties',
        },
        {'tool'},
    ),
    'tool': ({'driver', 'extensions', 'properties'}, {'driver'}),
    'toolComponent': (
        {
            'guid',
            'name',
            'organization',
            'product',
            'productSuite',
            'shortDescription',
            'fullDescription',
            'fullName',
            'version',
            'semanticVersion',
            'dottedQuadFileVersion',
            'releaseDateUtc',
            'downloadUri',
            'informationUri',
            'globalMessageStrings',
            'notifications',
            'rules',
            'taxa',
            'locations',
            'language',
            'contents',
            'isComprehensive',
            'localizedDataSemanticVersion',
            'minimumRequiredLocalizedDataSemanticVersion',
            'associatedComponent',
            'translationMetadata',
            'supportedTaxonomies',
            'properties',
        },
        {'name'},
    ),
    'reportingDescriptor': (
        {
            'id',
            'deprecatedIds',
            'guid',
            'deprecatedGuids',
            'name',
            'deprecatedNames',
            'shortDescription',
            'fullDescription',
            'messageStrings',
            'defaultConfiguration',
            'helpUri',
            'help',
            'relationships',
            'properties',
        },
        {'id'},
    ),
    'multiformatMessageString': ({'text', 'markdown', 'properties'}, {'text'}),
    'reportingConfiguration': ({'enabled', 'level', 'rank', 'parameters', 'properties'}, set()),
    'invocation': (
        {
            'commandLine',
            'arguments',
            'responseFiles',
            'startTimeUtc',
            'endTimeUtc',
            'exitCode',
            'ruleConfigurationOverrides',
            'notificationConfigurationOverrides',
            'toolExecutionNotifications',
            'toolConfigurationNotifications',
            'exitCodeDescription',
            'exitSignalName',
            'exitSignalNumber',
            'processStartFailureMessage',
            'executionSuccessful',
            'machine',
            'account',
            'processId',
            'executableLocation',
            'workingDirectory',
            'environmentVariables',
            'stdin',
            'stdout',
            'stderr',
            'stdoutStderr',
            'properties',
        },
        {'executionSuccessful'},
    ),
    'result': (
        {
            'ruleId',
            'ruleIndex',
            'rule',
            'kind',
            'level',
            'message',
            'analysisTarget',
            'locations',
            'guid',
            'correlationGuid',
            'occurrenceCount',
            'partialFingerprints',
            'fingerprints',
            'stacks',
            'codeFlows',
            'graphs',
            'graphTraversals',
            'relatedLocations',
            'suppressions',
            'baselineState',
            'rank',
            'attachments',
            'hostedViewerUri',
            'workItemUris',
            'provenance',
            'fixes',
            'taxa',
            'webRequest',
            'webResponse',
            'properties',
        },
        {'message'},
    ),
    'message': ({'text', 'markdown', 'id', 'arguments', 'properties'}, set()),
    'location': (
        {'id', 'physicalLocation', 'logicalLocations', 'message', 'annotations', 'relationships', 'properties'},
        set(),
    ),
    'logicalLocation': (
        {'name', 'index', 'fullyQualifiedName', 'decoratedName', 'parentIndex', 'kind', 'properties'},
        set(),
    ),
    'physicalLocation': ({'address', 'artifactLocation', 'region', 'contextRegion', 'properties'}, set()),
    'artifactLocation': ({'uri', 'uriBaseId', 'index', 'description', 'properties'}, set()),
    'region': (
        {
            'startLine',
            'startColumn',
            'endLine',
            'endColumn',
            'charOffset',
            'charLength',
            'byteOffset',
            'byteLength',
            'snippet',
            'message',
            'sourceLanguage',
            'properties',
        },
        set(),
    ),
    'suppression': ({'guid', 'kind', 'status', 'location', 'justification', 'properties'}, {'kind'}),
}
LEVELS = {'none', 'note', 'warning', 'error'}
RESULT_KINDS = {'notApplicable', 'pass', 'fail', 'review', 'open', 'informational'}


def check(obj, definition):
    allowed, required = SARIF_OBJECTS[definition]
    assert isinstance(obj, dict), definition
    assert set(obj) <= allowed, (definition, set(obj) - allowed)
    assert required <= set(obj), (definition, required - set(obj))
    if 'properties' in obj:
        bag = obj['properties']
        assert isinstance(bag, dict)
        if 'tags' in bag:
            assert all(isinstance(tag, str) for tag in bag['tags']) and len(set(bag['tags'])) == len(bag['tags'])


def check_message(message):
    check(message, 'message')
    assert isinstance(message.get('text'), str) and message['text']


def check_location(location):
    check(location, 'location')
    assert location.get('logicalLocations') or location.get('physicalLocation')
    for logical in location.get('logicalLocations', []):
        check(logical, 'logicalLocation')
    if 'physicalLocation' in location:
        physical = location['physicalLocation']
        check(physical, 'physicalLocation')
        assert 'artifactLocation' in physical or 'address' in physical
        check(physical['artifactLocation'], 'artifactLocation')
        if 'region' in physical:
            check(physical['region'], 'region')
            assert isinstance(physical['region']['startLine'], int) and physical['region']['startLine'] >= 1
    if 'message' in location:
        check_message(location['message'])
    if 'id' in location:
        assert isinstance(location['id'], int) and location['id'] >= -1


def check_sarif(log):
    check(log, 'sarifLog')
    assert log['version'] == '2.1.0'
    assert log['$schema'].startswith('https://') and log['$schema'].endswith('sarif-schema-2.1.0.json')
    for run in log['runs']:
        check(run, 'run')
        check(run['tool'], 'tool')
        driver = run['tool']['driver']
        check(driver, 'toolComponent')
        assert driver['informationUri'].startswith('https://')
        for descriptor in driver['rules']:
            check(descriptor, 'reportingDescriptor')
            check(descriptor['shortDescription'], 'multiformatMessageString')
            check(descriptor['defaultConfiguration'], 'reportingConfiguration')
            assert descriptor['defaultConfiguration']['level'] in LEVELS
        assert len({descriptor['id'] for descriptor in driver['rules']}) == len(driver['rules'])
        for invocation in run.get('invocations', []):
            check(invocation, 'invocation')
            assert isinstance(invocation['executionSuccessful'], bool)
        for result in run['results']:
            check(result, 'result')
            check_message(result['message'])
            assert result['level'] in LEVELS
            assert result['kind'] in RESULT_KINDS
            assert driver['rules'][result['ruleIndex']]['id'] == result['ruleId']
            for location in result['locations'] + result.get('relatedLocations', []):
                check_location(location)
            for suppression in result.get('suppressions', []):
                check(suppression, 'suppression')
                assert suppression['kind'] in {'inSource', 'external'}
                assert suppression['status'] in {'accepted', 'underReview', 'rejected'}


def test_sarif_is_structurally_valid(policy, decisions):
    log = json.loads(engine.render_sarif(decisions, policy, tool_version='1.0.0'))
    check_sarif(log)
    driver = log['runs'][0]['tool']['driver']
    assert driver['version'] == '1.0.0'
    assert [(rule['id'], rule['defaultConfiguration']['level']) for rule in driver['rules']] == [
        ('max-size', 'error'),
        ('formats', 'warning'),
        ('integrity', 'error'),
        ('audit-names', 'note'),
    ]
    assert driver['rules'][0]['shortDescription']['text'] == 'At most 25 GiB.'


def test_sarif_results(policy, decisions):
    results = engine.sarif_log(decisions, policy)['runs'][0]['results']
    assert [(result['ruleId'], result['level']) for result in results] == [
        ('max-size', 'error'),
        ('formats', 'warning'),
        ('integrity', 'error'),
        ('integrity', 'error'),
        ('audit-names', 'note'),
        ('max-size', 'error'),
    ]
    first = results[0]
    assert first['locations'] == [
        {
            'logicalLocations': [{'name': 'Big', 'fullyQualifiedName': 'image/i-1', 'kind': 'resource'}],
            'physicalLocation': {'artifactLocation': {'uri': 'catalog/images.yml'}, 'region': {'startLine': 12}},
        }
    ]
    assert first['relatedLocations'][0]['physicalLocation'] == {
        'artifactLocation': {'uri': 'policies/site.yml'},
        'region': {'startLine': 4},
    }
    assert first['properties']['found'] == 30 * GIB
    waived = results[-1]
    assert waived['suppressions'] == [
        {
            'kind': 'external',
            'status': 'accepted',
            'justification': 'HPC images (exception lab, owner hpc, expires 2030-01-01)',
        }
    ]
    assert 'suppressions' not in first


def test_sarif_without_policy_describes_violated_rules(decisions):
    log = engine.sarif_log(decisions)
    check_sarif(log)
    assert [rule['id'] for rule in log['runs'][0]['tool']['driver']['rules']] == [
        'max-size',
        'formats',
        'integrity',
        'audit-names',
    ]


def test_sarif_of_no_decisions_is_valid(policy):
    log = engine.sarif_log([], policy)
    check_sarif(log)
    assert log['runs'][0]['results'] == []
