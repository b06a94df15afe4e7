# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One report for a fleet: the plans each target's catalog run wrote, merged into JSON,
JUnit XML, SARIF 2.1.0 and a Markdown summary short enough for a pull-request comment."""

from __future__ import annotations

import datetime
import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
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
# Never at the start of a line here, so only what forms links, images, HTML, code, emphasis or
# table cells anywhere is escaped; '://' and 'www.' lose their autolink.
_MARKDOWN_SPECIAL = re.compile(r'[\\`*_\[\]<>|~#@!&]|(?<=:)//|(?<=www)\.')
_XML_INVALID = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')
# Line breaks of any kind (CommonMark takes a lone CR as one) and other control characters.
_CONTROL = re.compile(r'[\x00-\x1f\x7f\u0085\u2028\u2029]')


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
    # Non-waived violations by rule (every mode), the project's images as found, and the
    # existing images whose metadata the plan puts back (drift, or a catalog edit).
    violations: dict[str, int] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list, repr=False)
    drift: list[dict[str, Any]] = field(default_factory=list)
    sarif_runs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # The catalog's selectors and whether each selected this target (None: the run left no plan).
    selectors: list[dict[str, Any]] | None = field(default=None, repr=False)
    target_dimensions: dict[str, Any] = field(default_factory=dict, repr=False)

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
            'violations': self.violations,
            'drift': self.drift,
            'images': len(self.images),
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
        report.images = [image for image in plan.get('images') or [] if isinstance(image, dict)]
        report.selectors = _read_selectors(plan.get('selectors'))
        report.target_dimensions = _dimensions(plan.get('target'))
        violations: Counter[str] = Counter()
        for item in plan.get('plan') or []:
            for decision in item.get('policy') or []:
                for violation in decision.get('violations') or []:
                    if (violation.get('exception') or {}).get('status') != 'applied':
                        violations[str(violation.get('rule'))] += 1
            if item.get('action') == 'update' and item.get('changes'):
                report.drift.append({'name': item.get('name'), 'fields': sorted(item['changes'])})
            if item.get('action') in COLUMNS['refused']:
                report.refusals += _refusals(item)
            elif item.get('action') not in COLUMNS['unchanged']:
                report.changes.append(
                    {key: item[key] for key in ('name', 'action', 'changes', 'operations', 'id') if key in item}
                )
        report.violations = dict(sorted(violations.items()))
        if report.refusals:
            report.status = 'refused'
    # A policy report is this run's only beside this run's plan.
    sarif = _read_json(os.path.join(directory, SARIF_FILE)) if isinstance(plan, dict) else None
    if isinstance(sarif, dict):
        for run in sarif.get('runs') or []:
            run = dict(run, automationDetails={'id': f'imagegov/{target}/'})
            report.sarif_runs.append(run)
    if isinstance(failed, dict):
        # The catalog module fails the task when the policy refuses an item: that target was
        # refused (its plan says by which rules), not broken.
        report.status = 'refused' if report.refusals else 'failed'
        report.error = str(failed.get('message') or 'the target failed')
        report.failed_task = failed.get('task')
    elif plan is None:
        report.status = 'failed'
        report.error = f'no plan in {directory}: the run of this target ended before it planned'
    return report


# A selector's keys (each names a dimension of plan.json's `target`: cloud, region, groups).
_SELECTOR_KEYS = ('clouds', 'regions', 'groups')


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _read_selectors(value: Any) -> list[dict[str, Any]]:
    """plan.json's `selectors`, as the catalog module writes them: anything else in it is left out."""
    uses = []
    for use in value if isinstance(value, list) else ():
        if isinstance(use, dict) and isinstance(use.get('selector'), dict):
            selector = {key: _names(use['selector'].get(key)) for key in _SELECTOR_KEYS}
            uses.append(
                {
                    **{key: str(use.get(key)) for key in ('origin', 'item', 'field')},
                    'selector': {key: names for key, names in selector.items() if names},
                    'matched': use.get('matched') is True,
                }
            )
    return uses


def _dimensions(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, dict) else {}
    found: dict[str, Any] = {key: value.get(key) for key in ('cloud', 'region') if isinstance(value.get(key), str)}
    return dict(found, groups=_names(value.get('groups')))


def planned(targets: list[TargetReport]) -> list[TargetReport]:
    """The targets whose run left a plan (their selectors are known)."""
    return [target for target in targets if target.selectors is not None]


def unmatched_selectors(targets: list[TargetReport]) -> list[dict[str, Any]]:
    """The catalog's selectors that none of the targets that planned matched, or that name a
    cloud, region or group none of them has (a misspelt region beside a right cloud still
    selects, by the cloud), in catalog order. The selectors and dimensions are as
    _read_selectors and _dimensions left them."""
    known: dict[str, set[str]] = {key: set() for key in _SELECTOR_KEYS}
    matched: dict[tuple[str, str], bool] = {}
    uses: dict[tuple[str, str], dict[str, Any]] = {}
    for target in planned(targets):
        dimensions = target.target_dimensions
        known['clouds'].update([dimensions['cloud']] if 'cloud' in dimensions else [])
        known['regions'].update([dimensions['region']] if 'region' in dimensions else [])
        known['groups'].update(dimensions.get('groups', []))
        for use in target.selectors:
            key = (use['origin'], use['field'])
            uses.setdefault(key, use)
            matched[key] = matched.get(key, False) or use['matched']
    found = []
    for key, use in uses.items():
        unknown = [
            f'{name} {value}'
            for name, values in use['selector'].items()
            for value in values
            if known[name] and value not in known[name]
        ]
        if not matched[key] or unknown:
            found.append(
                {
                    **{name: use[name] for name in ('origin', 'item', 'field', 'selector')},
                    'matched': matched[key],
                    'names_no_target': unknown,
                }
            )
    return found


def describe_unmatched(use: dict[str, Any], planned: int) -> str:
    what = (
        f'names no target ({", ".join(use["names_no_target"])})'
        if use['matched']
        else f'matches none of the {planned} target(s) that planned in this run'
        + (f' ({", ".join(use["names_no_target"])} is none of theirs)' if use['names_no_target'] else '')
    )
    text = f'{use["origin"]}: {use["item"]}: {use["field"]} {json.dumps(use["selector"], sort_keys=True)} {what}'
    return _CONTROL.sub(' ', text)  # a warning on a terminal or in AWX: one line, no escape sequences


def merge(targets: list[TargetReport]) -> dict[str, Any]:
    totals = {column: 0 for column in COLUMNS}
    for target in targets:
        for column, count in target.counts().items():
            totals[column] += count
    statuses = [target.status for target in targets]
    return {
        'targets': [target.as_dict() for target in targets],
        'unmatched_selectors': unmatched_selectors(targets),
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
    """Text for a Markdown table or list: image names, messages and errors may come from a
    project member's image (a pruned one's name), so nothing in them may become a link, an
    image, HTML or formatting in a pull-request comment."""
    return _MARKDOWN_SPECIAL.sub(lambda match: '\\' + '\\'.join(match.group(0)), _CONTROL.sub(' ', str(text)))


def _code(text: Any) -> str:
    """A code span that no backtick in the text can end early."""
    return '`' + _CONTROL.sub(' ', str(text)).replace('`', "'").replace('|', '\\|') + '`'


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
        cells = [_code(target.target), target.status] + [str(counts[c]) for c in COLUMNS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    failed = [target for target in targets if target.status == 'failed']
    if failed:
        lines += ['', '#### Failed targets', '']
        lines += [
            f'- {_code(t.target)}: {_cell(t.error)}' + (f' (task: {_cell(t.failed_task)})' if t.failed_task else '')
            for t in failed
        ]
    unmatched = merged['unmatched_selectors']
    if unmatched:
        count = len(planned(targets))
        lines += ['', '#### Catalog selectors that match no target', '']
        lines += [f'- {_cell(describe_unmatched(use, count))}' for use in unmatched[:MARKDOWN_REFUSALS]]
        if len(unmatched) > MARKDOWN_REFUSALS:
            lines.append(f'- ... and {len(unmatched) - MARKDOWN_REFUSALS} more (see fleet.json)')
    refusals = [(target.target, refusal) for target in targets for refusal in target.refusals]
    if refusals:
        lines += ['', '#### Refusals', '']
        for name, refusal in refusals[:MARKDOWN_REFUSALS]:
            rule = f'\\[{_cell(refusal["rule"])}\\] ' if refusal.get('rule') else ''
            lines.append(f'- {_code(name)} **{_cell(refusal["image"])}**: {rule}{_cell(refusal["message"])}')
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
    # An image name may hold characters XML 1.0 cannot carry at all: they go, the rest stays.
    return _XML_INVALID.sub('', ET.tostring(suites, encoding='unicode', xml_declaration=True)) + '\n'


def render_sarif(targets: list[TargetReport]) -> str:
    """Each target's policy SARIF run, told apart by automationDetails.id (imagegov/<target>/)."""
    runs = [run for target in targets for run in target.sarif_runs]
    return (
        json.dumps({'$schema': SARIF_SCHEMA_URI, 'version': SARIF_VERSION, 'runs': runs}, indent=2, sort_keys=True)
        + '\n'
    )


AGE_BUCKETS = ((30, 'under 30 days'), (90, '30-90 days'), (365, '90-365 days'), (None, 'over a year'))
HTML_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f7f8fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:24px}
table{border-collapse:collapse;background:#fff;margin:4px 0 12px}
th,td{border:1px solid #dde1e8;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#eef1f5}
.ok{color:#1a7f37}.refused{color:#9a6700}.failed{color:#cf222e;font-weight:600}
.zero{color:#9aa3af}.note{color:#57606a}
""".strip()


def _age_bucket(created_at: Any, now: datetime.datetime) -> str:
    try:
        created = datetime.datetime.fromisoformat(str(created_at).replace('Z', '+00:00'))
    except ValueError:
        return 'unknown'
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    days = (now - created).days
    return next(label for limit, label in AGE_BUCKETS if limit is None or days < limit)


def _count_cell(target: str, metric: str, value: int) -> str:
    css = ' class="zero"' if value == 0 else ''
    return f'<td data-target="{html.escape(target)}" data-metric="{html.escape(metric)}"{css}>{value}</td>'


def _matrix(title: str, targets: list[TargetReport], rows: dict[str, dict[str, int]], metric: str, note: str) -> str:
    """A table of counts: one row per target, one column per key found in any target."""
    keys = sorted({key for counts in rows.values() for key in counts})
    if not keys:
        return f'<h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p>'
    head = ''.join(f'<th>{html.escape(key)}</th>' for key in keys)
    body = ''.join(
        f'<tr><td>{html.escape(t.target)}</td>'
        + ''.join(_count_cell(t.target, f'{metric}:{key}', rows[t.target].get(key, 0)) for key in keys)
        + '</tr>'
        for t in targets
    )
    return f'<h2>{html.escape(title)}</h2><table><tr><th>target</th>{head}</tr>{body}</table>'


def render_html(targets: list[TargetReport], title: str = 'Image catalog', now: datetime.datetime | None = None) -> str:
    """One self-contained page (no script, no remote resource) of the fleet's compliance."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    totals = merge(targets)['totals']
    cards = [
        ('targets', totals['targets']),
        ('failed targets', totals['failed_targets']),
        ('to create', totals['create']),
        ('to update', totals['update']),
        ('refused', totals['refused']),
        ('violations', sum(sum(t.violations.values()) for t in targets)),
        ('images', sum(len(t.images) for t in targets)),
    ]
    parts = [
        f'<h1>{html.escape(title)}: fleet compliance</h1>',
        f'<p class="note">{len(targets)} target(s), '
        f'<span id="written">written {now.strftime("%Y-%m-%d %H:%M UTC")}</span></p>',
        '<div class="cards">'
        + ''.join(
            f'<div class="card" data-metric="total:{html.escape(name)}"><b>{value}</b>{html.escape(name)}</div>'
            for name, value in cards
        )
        + '</div>',
        '<h2>Targets</h2><table><tr><th>target</th><th>status</th>'
        + ''.join(f'<th>{column}</th>' for column in COLUMNS)
        + '<th>violations</th><th>images</th></tr>',
    ]
    for t in targets:
        counts = t.counts()
        status = f'<td class="{t.status}" data-target="{html.escape(t.target)}" data-metric="status">{t.status}</td>'
        parts.append(
            f'<tr><td>{html.escape(t.target)}</td>{status}'
            + ''.join(_count_cell(t.target, column, counts[column]) for column in COLUMNS)
            + _count_cell(t.target, 'violations', sum(t.violations.values()))
            + _count_cell(t.target, 'images', len(t.images))
            + '</tr>'
        )
    parts.append('</table>')
    failed = [t for t in targets if t.status == 'failed']
    if failed:
        parts.append('<h2>Failed targets</h2><ul>')
        parts += [f'<li class="failed">{html.escape(t.target)}: {html.escape(t.error or "")}</li>' for t in failed]
        parts.append('</ul>')
    by = {t.target: t for t in targets}
    parts.append(
        _matrix('Violations by rule', targets, {k: t.violations for k, t in by.items()}, 'rule', 'No violations.')
    )
    for title_text, metric, key in (
        ('Images by format', 'format', lambda image: str(image.get('disk_format') or 'none')),
        ('Images by visibility', 'visibility', lambda image: str(image.get('visibility'))),
        ('Images by series', 'series', lambda image: str(image.get('series') or '(single images)')),
        ('Images by age', 'age', lambda image: _age_bucket(image.get('created_at'), now)),
    ):
        rows = {k: dict(Counter(key(image) for image in t.images)) for k, t in by.items()}
        parts.append(_matrix(title_text, targets, rows, metric, 'No images were listed.'))
    drift = [(t.target, d) for t in targets for d in t.drift]
    parts.append('<h2>Drift</h2>')
    if drift:
        parts.append('<table><tr><th>target</th><th>image</th><th>fields put back</th></tr>')
        parts += [
            f'<tr><td>{html.escape(name)}</td><td>{html.escape(str(d["name"]))}</td>'
            f'<td>{html.escape(", ".join(d["fields"]))}</td></tr>'
            for name, d in drift
        ]
        parts.append('</table>')
    else:
        parts.append('<p class="note">Every image matches the catalog.</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{html.escape(title)}: fleet compliance</title><style>{HTML_STYLE}</style></head>'
        f'<body>{"".join(parts)}</body></html>\n'
    )


_WRITTEN = re.compile(rb'<span id="written">[^<]*</span>')


def same_report(old: bytes | None, new: bytes) -> bool:
    """Equal but for the time a page was written: the report is not written again for that alone."""
    return old is not None and _WRITTEN.sub(b'', old) == _WRITTEN.sub(b'', new)


RENDERERS = (
    ('fleet.json', render_json),
    ('fleet.md', render_markdown),
    ('fleet.xml', render_junit),
    ('fleet.sarif', render_sarif),
    ('fleet.html', render_html),
)
