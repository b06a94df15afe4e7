# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One report for a fleet: the plans each target's catalog run wrote, merged into JSON,
JUnit XML, SARIF 2.1.0 and a Markdown summary short enough for a pull-request comment."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from .policy.report_sarif import SARIF_SCHEMA_URI, SARIF_VERSION

# Files a target's run leaves in its report directory (the reconcile playbook).
PLAN_FILE = 'plan.json'
APPLIED_FILE = 'applied.json'
FAILED_FILE = 'failed.json'
SARIF_FILE = 'policy.sarif'
TARGET_FILES = (PLAN_FILE, APPLIED_FILE, FAILED_FILE)

# Summary columns, from the catalog's plan actions.
COLUMNS = {
    'create': ('create',),
    'replace': ('replace',),
    'update': ('update', 'share'),
    'delete': ('delete', 'prune', 'deactivate'),
    'refused': ('refused', 'error'),
    'unchanged': ('noop', 'kept'),
}
# A pull-request comment stays readable (and under the forges' size limits).
MARKDOWN_REFUSALS = 50


class FleetReportError(Exception):
    pass


@dataclass
class TargetReport:
    host: str
    target: str
    status: str = 'ok'  # ok | refused | failed
    mode: str = 'plan'  # plan | apply
    summary: dict[str, int] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    failed_task: str | None = None
    sarif_runs: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def counts(self) -> dict[str, int]:
        return {column: sum(self.summary.get(a, 0) for a in actions) for column, actions in COLUMNS.items()}

    def as_dict(self) -> dict[str, Any]:
        result = {
            'host': self.host,
            'target': self.target,
            'status': self.status,
            'mode': self.mode,
            'counts': self.counts(),
            'summary': self.summary,
            'changes': self.changes,
            'refusals': self.refusals,
        }
        if self.error:
            result.update(error=self.error, failed_task=self.failed_task)
        return result


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding='utf-8') as stream:
            return json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FleetReportError(f'{path}: cannot read it as JSON: {exc}') from exc


def _refusals(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocking violations of a refused plan item, each with its rule and what to change."""
    found = []
    for decision in item.get('policy') or []:
        for violation in decision.get('violations') or []:
            if violation.get('mode') != 'enforce' or (violation.get('exception') or {}).get('status') == 'applied':
                continue
            found.append(
                {
                    'image': item.get('name'),
                    'action': decision.get('action'),
                    'rule': violation.get('rule'),
                    'message': violation.get('message'),
                    'expected': violation.get('expected'),
                    'found': violation.get('found'),
                }
            )
    if not found:
        found.append(
            {'image': item.get('name'), 'action': item.get('action'), 'rule': None, 'message': item.get('reason')}
        )
    return found


def read_target(host: str, target: str, directory: str) -> TargetReport:
    """What one target's run left in its report directory."""
    report = TargetReport(host=host, target=target)
    failed = _read_json(os.path.join(directory, FAILED_FILE))
    applied = _read_json(os.path.join(directory, APPLIED_FILE))
    plan = applied if applied is not None else _read_json(os.path.join(directory, PLAN_FILE))
    if applied is not None:
        report.mode = 'apply'
    if isinstance(plan, dict):
        report.summary = {str(k): int(v) for k, v in (plan.get('summary') or {}).items()}
        for item in plan.get('plan') or []:
            if item.get('action') in COLUMNS['refused']:
                report.refusals += _refusals(item)
            elif item.get('action') not in COLUMNS['unchanged']:
                report.changes.append(
                    {key: item[key] for key in ('name', 'action', 'changes', 'operations', 'id') if key in item}
                )
        if report.refusals:
            report.status = 'refused'
    sarif = _read_json(os.path.join(directory, SARIF_FILE))
    if isinstance(sarif, dict):
        for run in sarif.get('runs') or []:
            run = dict(run, automationDetails={'id': f'imagegov/{target}/'})
            report.sarif_runs.append(run)
    if isinstance(failed, dict):
        report.status = 'failed'
        report.error = str(failed.get('message') or 'the target failed')
        report.failed_task = failed.get('task')
    elif plan is None:
        report.status = 'failed'
        report.error = f'no plan in {directory}: the run of this target ended before it planned'
    return report


def merge(targets: list[TargetReport]) -> dict[str, Any]:
    totals = {column: 0 for column in COLUMNS}
    for target in targets:
        for column, count in target.counts().items():
            totals[column] += count
    statuses = [target.status for target in targets]
    return {
        'targets': [target.as_dict() for target in targets],
        'totals': dict(
            totals,
            targets=len(targets),
            failed_targets=statuses.count('failed'),
            refused_targets=statuses.count('refused'),
        ),
    }


def render_json(targets: list[TargetReport]) -> str:
    return json.dumps(merge(targets), indent=2, sort_keys=True) + '\n'


def _cell(text: Any) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def render_markdown(targets: list[TargetReport], title: str = 'Image catalog') -> str:
    merged = merge(targets)
    totals = merged['totals']
    mode = 'applied' if targets and all(t.mode == 'apply' for t in targets) else 'plan'
    lines = [
        f'### {title}: {mode} on {totals["targets"]} target(s)',
        '',
        f'{totals["create"]} to create, {totals["replace"]} to replace, {totals["update"]} to update, '
        f'{totals["delete"]} to delete; {totals["refused"]} refused; '
        f'{totals["failed_targets"]} target(s) failed.',
        '',
        '| target | status | create | replace | update | delete | refused | unchanged |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for target in targets:
        counts = target.counts()
        cells = [f'`{_cell(target.target)}`', target.status] + [str(counts[c]) for c in COLUMNS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    failed = [target for target in targets if target.status == 'failed']
    if failed:
        lines += ['', '#### Failed targets', '']
        lines += [
            f'- `{_cell(t.target)}`: {_cell(t.error)}' + (f' (task: {_cell(t.failed_task)})' if t.failed_task else '')
            for t in failed
        ]
    refusals = [(target.target, refusal) for target in targets for refusal in target.refusals]
    if refusals:
        lines += ['', '#### Refusals', '']
        for name, refusal in refusals[:MARKDOWN_REFUSALS]:
            rule = f'[{refusal["rule"]}] ' if refusal.get('rule') else ''
            lines.append(f'- `{_cell(name)}` **{_cell(refusal["image"])}**: {rule}{_cell(refusal["message"])}')
        if len(refusals) > MARKDOWN_REFUSALS:
            lines.append(f'- ... and {len(refusals) - MARKDOWN_REFUSALS} more (see fleet.json)')
    return '\n'.join(lines) + '\n'


def render_junit(targets: list[TargetReport], name: str = 'imagegov fleet') -> str:
    suites = ET.Element('testsuites', name=name)
    total = failures = errors = 0
    for target in targets:
        suite = ET.SubElement(suites, 'testsuite', name=target.target)
        cases = 0
        suite_failures = suite_errors = 0
        if target.status == 'failed':
            case = ET.SubElement(suite, 'testcase', classname=target.target, name='reconcile')
            ET.SubElement(case, 'error', message=target.error or 'failed').text = target.error
            cases, suite_errors = cases + 1, suite_errors + 1
        for refusal in target.refusals:
            case = ET.SubElement(
                suite,
                'testcase',
                classname=target.target,
                name=f'{refusal["image"]}: {refusal.get("rule") or "refused"}',
            )
            ET.SubElement(case, 'failure', message=str(refusal.get('message'))).text = json.dumps(
                refusal, sort_keys=True, default=str
            )
            cases, suite_failures = cases + 1, suite_failures + 1
        for change in target.changes:
            ET.SubElement(suite, 'testcase', classname=target.target, name=f'{change.get("name")}: {change["action"]}')
            cases += 1
        if cases == 0:
            ET.SubElement(suite, 'testcase', classname=target.target, name='no changes')
            cases = 1
        suite.set('tests', str(cases))
        suite.set('failures', str(suite_failures))
        suite.set('errors', str(suite_errors))
        total, failures, errors = total + cases, failures + suite_failures, errors + suite_errors
    suites.set('tests', str(total))
    suites.set('failures', str(failures))
    suites.set('errors', str(errors))
    ET.indent(suites)
    return ET.tostring(suites, encoding='unicode', xml_declaration=True) + '\n'


def render_sarif(targets: list[TargetReport]) -> str:
    """Each target's policy SARIF run, told apart by automationDetails.id (imagegov/<target>/)."""
    runs = [run for target in targets for run in target.sarif_runs]
    return (
        json.dumps({'$schema': SARIF_SCHEMA_URI, 'version': SARIF_VERSION, 'runs': runs}, indent=2, sort_keys=True)
        + '\n'
    )


RENDERERS = (
    ('fleet.json', render_json),
    ('fleet.md', render_markdown),
    ('fleet.xml', render_junit),
    ('fleet.sarif', render_sarif),
)
