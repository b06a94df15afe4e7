#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Merge the catalog plans of a fleet of clouds and regions into one report
version_added: 0.3.0
description:
  - Reads what each target's catalog run left in its report directory (C(plan.json), or
    C(applied.json) after an apply, C(policy.sarif), and C(failed.json) when the run failed)
    and writes one report for the fleet into O(dest) - C(fleet.json), C(fleet.xml) (JUnit),
    C(fleet.html) (a self-contained page of the fleet's compliance - per target and rule the
    violations; the images by format, visibility, series and age; drift),
    C(fleet.sarif) (SARIF 2.1.0, one run per target told apart by C(automationDetails.id)) and
    C(fleet.md), a Markdown summary short enough for a pull-request comment - per target the
    creates, replaces, updates, deletes and refusals, then the failed targets, the catalog's
    selectors that match no target, and the refusals with their rule.
  - A target without a plan counts as failed, so a target that never got to plan cannot pass
    unnoticed.
  - The C(imagegov.openstack.reconcile) playbook runs it after the targets on a fleet.
  - No connection to a cloud is made.
extends_documentation_fragment:
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details: Writes the report in check mode too, as the catalog module writes its reports.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: >-
      The report is an output of the run, like the catalog module's reports - it never makes the
      task changed; a file is rewritten only when its content changes (not for the time alone).
options:
  targets:
    description: The targets, each with its inventory host, its target name and its report directory.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: Inventory host of the target.
        type: str
        required: true
      target:
        description: The target's name in the report (C(cloud/region)).
        type: str
        required: true
      reports_dir:
        description: Where the target's catalog run wrote its reports.
        type: path
        required: true
  dest:
    description: Directory for C(fleet.json), C(fleet.xml), C(fleet.sarif), C(fleet.md) and C(fleet.html).
    type: path
    required: true
  title:
    description: Heading of the Markdown summary.
    type: str
    default: Image catalog
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: One report for the fleet
  imagegov.openstack.fleet_report:
    targets:
      - {host: prod.RegionOne, target: prod/RegionOne, reports_dir: reports/prod.RegionOne}
      - {host: prod.RegionTwo, target: prod/RegionTwo, reports_dir: reports/prod.RegionTwo}
    dest: reports
"""

RETURN = r"""
totals:
  description: Items per column over the fleet, and the numbers of targets, failed targets and targets with refusals.
  returned: always
  type: dict
  sample: {create: 3, replace: 0, update: 1, delete: 0, refused: 1, unchanged: 600, targets: 3, failed_targets: 1}
targets:
  description: Per target - host, target, status (ok, refused, failed), counts, and the error of a failed one.
  returned: always
  type: list
  elements: dict
unmatched_selectors:
  description:
    - The catalog's C(targets) and C(overrides[].where) selectors that none of the targets
      that planned matched (an override counts only where its entry goes), or that name a
      cloud, region or group none of them has, in catalog
      order - each with C(origin) (the catalog file and line), C(item), C(field), C(selector),
      C(matched) (whether it selected any target) and C(names_no_target) (the values no target
      has). Each is also a warning and a section of the Markdown summary.
    - A misspelt cloud, region or group sends an entry nowhere (and a pruning run deletes its
      images), or leaves an override unapplied where it was meant to apply.
    - Empty when the targets' runs did not record selectors.
  returned: always
  type: list
  elements: dict
  sample:
    - origin: catalog/ubuntu.yml:12
      item: series 'ubuntu-24.04' (images[0])
      field: targets
      selector: {regions: [RegionTow]}
      matched: false
      names_no_target: [regions RegionTow]
files:
  description: The report files (absolute paths), by name.
  returned: always
  type: dict
markdown:
  description: The Markdown summary, as written to C(fleet.md).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils._fleet import (
    RENDERERS,
    FleetReportError,
    describe_unmatched,
    merge,
    planned,
    read_target,
    render_html,
    render_markdown,
    same_report,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._reports import read_report, write_report


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(
                type='list',
                elements='dict',
                required=True,
                options=dict(
                    host=dict(type='str', required=True),
                    target=dict(type='str', required=True),
                    reports_dir=dict(type='path', required=True),
                ),
            ),
            dest=dict(type='path', required=True),
            title=dict(type='str', default='Image catalog'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        targets = [read_target(t['host'], t['target'], t['reports_dir']) for t in p['targets']]
    except FleetReportError as exc:
        module.fail_json(msg=str(exc))
    files = {}
    markdown = render_markdown(targets, p['title'])
    for name, render in RENDERERS:
        path = os.path.abspath(os.path.join(p['dest'], name))
        files[name] = path
        if render is render_markdown:
            data = markdown.encode()
        elif render is render_html:
            data = render_html(targets, p['title']).encode()
        else:
            data = render(targets).encode()
        try:
            if not same_report(read_report(path, 'dest'), data):
                write_report(module, path, data, 'dest')
        except ImagegovError as exc:
            module.fail_json(msg=str(exc))
    merged = merge(targets)
    for use in merged['unmatched_selectors']:
        module.warn(describe_unmatched(use, len(planned(targets))))
    summary = [
        {key: target[key] for key in ('host', 'target', 'status', 'counts', 'error') if key in target}
        for target in merged['targets']
    ]
    module.exit_json(
        changed=False,
        totals=merged['totals'],
        targets=summary,
        unmatched_selectors=merged['unmatched_selectors'],
        files=files,
        markdown=markdown,
    )


if __name__ == '__main__':
    main()
