"""The fleet report: what each target's run left, merged into JSON, Markdown, JUnit and SARIF.

Target directories are written here the way the reconcile playbook leaves them: plan.json
(or applied.json) from the catalog module, policy.sarif from the policy engine's own
renderer, failed.json from the playbook's rescue.
"""

from __future__ import annotations

import datetime
import html.parser
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import _fleet as fleet
from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

POLICY = engine.load_policy_text(
    """
version: 1
rules:
  - id: formats
    type: allowed_formats
    params: {disk_formats: [qcow2]}
""",
    source='policies/site.yml',
)


def _refused_decision() -> engine.Decision:
    request = {'action': 'create', 'actor': {'project': 'p'}, 'image': {'name': 'win-2022', 'disk_format': 'vhdx'}}
    return engine.evaluate(POLICY, engine.build_request(**request))


def _write(directory: Path, name: str, document) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(document if isinstance(document, str) else json.dumps(document))


def _plan(*items, summary=None):
    counts: dict[str, int] = {}
    for item in items:
        counts[item['action']] = counts.get(item['action'], 0) + 1
    return {'plan': list(items), 'summary': summary or counts}


@pytest.fixture
def fleet_dirs(tmp_path: Path) -> dict[str, Path]:
    ok, refused, failed, silent = (tmp_path / n for n in ('ok', 'refused', 'failed', 'silent'))
    _write(ok, 'plan.json', _plan({'name': 'debian', 'action': 'noop'}, {'name': 'ubuntu', 'action': 'create'}))
    _write(ok, 'policy.sarif', engine.render_sarif([], POLICY))
    decision = _refused_decision()
    refused_item = {'name': 'win-2022', 'action': 'refused', 'reason': 'policy', 'policy': [decision.as_dict()]}
    _write(refused, 'applied.json', _plan(refused_item, {'name': 'debian', 'action': 'update', 'changes': {'x': 1}}))
    _write(refused, 'policy.sarif', engine.render_sarif([decision], POLICY))
    _write(failed, 'failed.json', {'task': 'Plan', 'message': 'The image service for c:R3 has no supported versions'})
    silent.mkdir()
    return {'ok': ok, 'refused': refused, 'failed': failed, 'silent': silent}


def _targets(dirs: dict[str, Path]) -> list[fleet.TargetReport]:
    return [fleet.read_target(f'c.{name}', f'c/{name}', str(path)) for name, path in dirs.items()]


def test_each_target_has_its_status_counts_and_reason(fleet_dirs):
    ok, refused, failed, silent = _targets(fleet_dirs)
    assert (ok.status, ok.mode, ok.counts()['create'], ok.counts()['unchanged']) == ('ok', 'plan', 1, 1)
    assert [change['name'] for change in ok.changes] == ['ubuntu']
    assert (refused.status, refused.mode) == ('refused', 'apply')
    assert [(r['image'], r['rule']) for r in refused.refusals] == [('win-2022', 'formats')]
    assert refused.counts()['update'] == 1 and refused.counts()['refused'] == 1
    assert failed.status == 'failed' and 'no supported versions' in failed.error and failed.failed_task == 'Plan'
    # A target that left no plan at all cannot pass unnoticed.
    assert silent.status == 'failed' and 'no plan' in silent.error


def test_totals_and_markdown_summary(fleet_dirs):
    targets = _targets(fleet_dirs)
    totals = fleet.merge(targets)['totals']
    assert totals == {
        'create': 1,
        'replace': 0,
        'update': 1,
        'delete': 0,
        'refused': 1,
        'unchanged': 1,
        'targets': 4,
        'failed_targets': 2,
        'refused_targets': 1,
    }
    text = fleet.render_markdown(targets)
    assert '| `c/ok` | ok | 1 | 0 | 0 | 0 | 0 | 1 |' in text
    assert '| `c/failed` | failed |' in text
    assert '- `c/failed`: The image service for c:R3 has no supported versions (task: Plan)' in text
    assert '- `c/refused` **win-2022**: \\[formats\\]' in text


def test_markdown_stays_short_for_a_pull_request(tmp_path: Path):
    decision = _refused_decision().as_dict()
    items = [{'name': f'img-{i}', 'action': 'refused', 'policy': [decision]} for i in range(80)]
    _write(tmp_path, 'plan.json', _plan(*items))
    text = fleet.render_markdown([fleet.read_target('h', 't', str(tmp_path))])
    assert text.count('**img-') == fleet.MARKDOWN_REFUSALS
    assert '... and 30 more (see fleet.json)' in text


def test_junit_counts_refusals_as_failures_and_failed_targets_as_errors(fleet_dirs):
    root = ET.fromstring(fleet.render_junit(_targets(fleet_dirs)).split('?>', 1)[1])
    assert root.tag == 'testsuites'
    suites = {suite.get('name'): suite for suite in root.findall('testsuite')}
    assert sorted(suites) == ['c/failed', 'c/ok', 'c/refused', 'c/silent']
    assert (suites['c/refused'].get('failures'), suites['c/failed'].get('errors')) == ('1', '1')
    assert int(root.get('tests')) == len(root.findall('testsuite/testcase'))
    assert (root.get('failures'), root.get('errors')) == ('1', '2')


def test_sarif_has_one_run_per_target(fleet_dirs):
    # Validated against the SARIF 2.1.0 schema in tests/integration/test_fleet.py, in the
    # project's venv: the support matrix's venvs have the modules' requirements only.
    log = json.loads(fleet.render_sarif(_targets(fleet_dirs)))
    assert (log['version'], log['$schema'].endswith('sarif-schema-2.1.0.json')) == ('2.1.0', True)
    assert [run['automationDetails']['id'] for run in log['runs']] == ['imagegov/c/ok/', 'imagegov/c/refused/']
    assert [len(run['results']) for run in log['runs']] == [0, 1]
    assert log['runs'][1]['results'][0]['ruleId'] == 'formats'


def test_a_broken_plan_file_is_an_error_naming_it(tmp_path: Path):
    _write(tmp_path, 'plan.json', '{not json')
    with pytest.raises(fleet.FleetReportError, match='plan.json: cannot read it as JSON'):
        fleet.read_target('h', 't', str(tmp_path))


class _Cells(html.parser.HTMLParser):
    """data-metric cells of the page, by (target, metric); the cards by metric."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str | None, str], str] = {}
        self._open: tuple[str | None, str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if 'data-metric' in attributes:
            self._open = (attributes.get('data-target'), attributes['data-metric'])
            self.cells[self._open] = ''

    def handle_data(self, data):
        if self._open is not None and not self.cells[self._open]:
            self.cells[self._open] = data.strip()

    def handle_endtag(self, tag):
        if tag in ('td', 'b'):
            self._open = None


def _page_cells(text: str) -> dict:
    parser = _Cells()
    parser.feed(text)
    return parser.cells


def test_html_page_shows_the_numbers_of_the_json_report(fleet_dirs):
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    images = [
        {'name': 'debian', 'disk_format': 'qcow2', 'visibility': 'private', 'created_at': '2026-11-20T00:00:00Z'},
        {
            'name': 'noble-2',
            'disk_format': 'raw',
            'visibility': 'shared',
            'series': 'noble',
            'created_at': '2025-01-01T00:00:00Z',
        },
    ]
    plan = _plan(
        {'name': 'debian', 'action': 'update', 'changes': {'visibility': {'before': 'public', 'after': 'private'}}},
        {'name': 'noble-2', 'action': 'noop'},
    )
    _write(fleet_dirs['ok'], 'plan.json', dict(plan, images=images))
    targets = _targets(fleet_dirs)
    page = fleet.render_html(targets, now=now)
    assert '<script' not in page and 'http://' not in page.replace('http://www.w3.org', '')
    cells = _page_cells(page)
    report = fleet.merge(targets)
    for target in report['targets']:
        for column, count in target['counts'].items():
            assert cells[target['target'], column] == str(count)
        assert cells[target['target'], 'status'] == target['status']
        assert cells[target['target'], 'violations'] == str(sum(target['violations'].values()))
    assert cells['c/refused', 'rule:formats'] == '1' and cells['c/ok', 'rule:formats'] == '0'
    assert cells['c/ok', 'format:raw'] == '1' and cells['c/ok', 'visibility:shared'] == '1'
    assert cells['c/ok', 'series:noble'] == '1' and cells['c/ok', 'series:(single images)'] == '1'
    assert cells['c/ok', 'age:under 30 days'] == '1' and cells['c/ok', 'age:over a year'] == '1'
    assert cells[None, 'total:targets'] == '4' and cells[None, 'total:failed targets'] == '2'
    assert '<td>debian</td><td>visibility</td>' in page  # drift: the field put back


def test_a_page_written_again_only_for_the_time_is_the_same_report(fleet_dirs):
    targets = _targets(fleet_dirs)
    first = fleet.render_html(targets, now=datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc))
    later = fleet.render_html(targets, now=datetime.datetime(2026, 12, 1, 10, 5, tzinfo=datetime.timezone.utc))
    assert first != later and fleet.same_report(first.encode(), later.encode())
    assert not fleet.same_report(first.encode(), first.replace('c/ok', 'c/other').encode())
    assert not fleet.same_report(None, first.encode())


def test_markdown_gives_a_member_named_image_no_link_html_or_table_cell(tmp_path: Path):
    hostile = 'x](http://evil.example/a) <img src=x onerror=alert(1)> | www.evil.example **bold** `code'
    decision = _refused_decision().as_dict()
    _write(tmp_path, 'plan.json', _plan({'name': hostile, 'action': 'refused', 'policy': [decision]}))
    text = fleet.render_markdown([fleet.read_target('h', 'cloud/`region|x', str(tmp_path))])
    line = next(line for line in text.splitlines() if 'evil' in line)
    unescaped = re.compile(r'(?<!\\)(\]\(|<img|\*\*bold|`code|\| www)')
    assert not unescaped.search(line), line
    assert 'http://' not in line and 'www.evil' not in line  # no autolink either
    assert "| `cloud/'region\\|x` | refused |" in text


def test_control_characters_neither_break_a_line_nor_the_xml(tmp_path: Path):
    decision = _refused_decision().as_dict()
    name = 'x\r### All targets compliant\x1b\x00 @org/admins'
    _write(tmp_path, 'plan.json', _plan({'name': name, 'action': 'refused', 'policy': [decision]}))
    targets = [fleet.read_target('h', 't', str(tmp_path))]
    text = fleet.render_markdown(targets)
    line = next(line for line in text.splitlines() if 'compliant' in line)
    assert line.startswith('- `t`') and '\\#\\#\\#' in line and '\\@org' in line
    ET.fromstring(fleet.render_junit(targets).split('?>', 1)[1])  # well-formed


def test_a_refused_target_is_refused_not_failed_though_its_task_failed(fleet_dirs):
    _write(
        fleet_dirs['refused'],
        'failed.json',
        {'task': 'Apply the plan', 'message': '1 catalog item(s) cannot be applied'},
    )
    refused = fleet.read_target('c.refused', 'c/refused', str(fleet_dirs['refused']))
    assert refused.status == 'refused' and refused.error.startswith('1 catalog item')


def test_a_target_without_a_plan_publishes_no_old_policy_report(tmp_path: Path):
    _write(tmp_path, 'policy.sarif', engine.render_sarif([_refused_decision()], POLICY))
    _write(tmp_path, 'failed.json', {'task': 'Plan', 'message': 'Keystone is down'})
    assert fleet.read_target('h', 't', str(tmp_path)).sarif_runs == []


SELECTING_CATALOG = """version: 1
defaults: {disk_format: raw}
images:
  - name: everywhere
    state: unmanaged
  - name: east-only
    state: unmanaged
    targets: {regions: [RegionEast]}
  - name: misspelt
    state: unmanaged
    targets: {regions: [RegionEsat]}
    overrides:
      - where: {groups: [canary]}
        visibility: private
  - name: overridden
    state: unmanaged
    overrides:
      - where: {clouds: [prod], regions: [RegionWset]}
        visibility: private
"""


def test_selectors_that_no_target_matched_are_named_with_file_and_line(tmp_path: Path):
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import load_catalog_texts
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog.model import Target

    targets = []
    for region, groups in (('RegionEast', ('prod',)), ('RegionWest', ('prod', 'canary'))):
        where = Target('prod', region, groups)
        catalog = load_catalog_texts([('catalog/fleet.yml', SELECTING_CATALOG)], target=where)
        target = where.as_dict()
        plan = dict(_plan(), selectors=[use.as_dict() for use in catalog.selectors], target=target)
        _write(tmp_path / region, 'plan.json', plan)
        targets.append(fleet.read_target(f'prod.{region}', f'prod/{region}', str(tmp_path / region)))
    _write(tmp_path / 'broken', 'failed.json', {'task': 'Plan', 'message': 'catalog invalid'})
    targets.append(fleet.read_target('prod.broken', 'prod/broken', str(tmp_path / 'broken')))

    unmatched = fleet.merge(targets)['unmatched_selectors']
    # The misspelt entry goes nowhere, so its canary override applies nowhere either; the
    # last override selects by the right cloud, so it matched, but its region is nobody's.
    assert unmatched == [
        {
            'origin': 'catalog/fleet.yml:9',
            'item': "image 'misspelt' (images[2])",
            'field': 'targets',
            'selector': {'regions': ['RegionEsat']},
            'matched': False,
            'names_no_target': ['regions RegionEsat'],
        },
        {
            'origin': 'catalog/fleet.yml:9',
            'item': "image 'misspelt' (images[2])",
            'field': 'overrides[0].where',
            'selector': {'groups': ['canary']},
            'matched': False,
            'names_no_target': [],
        },
        {
            'origin': 'catalog/fleet.yml:15',
            'item': "image 'overridden' (images[3])",
            'field': 'overrides[0].where',
            'selector': {'clouds': ['prod'], 'regions': ['RegionWset']},
            'matched': True,
            'names_no_target': ['regions RegionWset'],
        },
    ]
    text = fleet.render_markdown(targets)
    assert '#### Catalog selectors that match no target' in text
    assert 'catalog/fleet.yml:9' in text and 'matches none of the 2 target(s) that planned' in text
    assert 'names no target (regions RegionWset)' in text


def test_a_report_without_selectors_names_none():
    assert fleet.unmatched_selectors([fleet.TargetReport('h', 't')]) == []


def test_an_override_of_an_entry_that_does_not_go_where_it_selects_is_named(tmp_path: Path):
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import load_catalog_texts
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog.model import Target

    text = (
        'version: 1\ndefaults: {disk_format: raw}\nimages:\n  - name: east-only\n    state: unmanaged\n'
        '    targets: {regions: [RegionEast]}\n    overrides:\n      - where: {regions: [RegionWest]}\n'
        '        visibility: private\n'
    )
    targets = []
    for region in ('RegionEast', 'RegionWest'):
        where = Target('prod', region, ('prod',))
        selectors = [use.as_dict() for use in load_catalog_texts([('c.yml', text)], target=where).selectors]
        _write(tmp_path / region, 'plan.json', dict(_plan(), selectors=selectors, target=where.as_dict()))
        targets.append(fleet.read_target(region, region, str(tmp_path / region)))
    (unmatched,) = fleet.merge(targets)['unmatched_selectors']
    assert (unmatched['field'], unmatched['matched'], unmatched['names_no_target']) == ('overrides[0].where', False, [])


def test_malformed_or_hostile_selectors_in_a_plan_file_neither_break_the_report_nor_the_warning(tmp_path: Path):
    evil = 'x\n\n# HEAD <img src=x onerror=alert(1)> [a](http://e) `b` |c| \x1b[31m'
    selectors = [
        {'origin': 'c.yml:3' + evil, 'item': 'image ' + evil, 'field': 'targets', 'selector': {'groups': [evil]}},
        {'origin': 'c.yml:4', 'item': 'i', 'field': 'targets', 'selector': {'regions': [['R']], 'clouds': 'cc'}},
        5,
    ]
    _write(tmp_path / 'a', 'plan.json', dict(_plan(), selectors=selectors, target={'cloud': {'x': 1}, 'groups': 'g'}))
    _write(tmp_path / 'b', 'plan.json', dict(_plan(), selectors=5, target=[]))
    targets = [fleet.read_target(name, name, str(tmp_path / name)) for name in 'ab']
    unmatched = fleet.merge(targets)['unmatched_selectors']
    assert [use['selector'] for use in unmatched] == [{'groups': [evil]}, {}]
    warning = fleet.describe_unmatched(unmatched[0], 2)
    assert '\n' not in warning and '\x1b' not in warning
    section = fleet.render_markdown(targets).split('#### Catalog selectors that match no target')[1]
    assert not re.search(r'(?<!\\)[<`|\[]', section) and '\n# HEAD' not in section and '\x1b' not in section
