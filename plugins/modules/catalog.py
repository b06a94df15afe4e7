#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: catalog
short_description: Reconcile a catalog of gold images kept in Git with an OpenStack cloud
version_added: 0.1.0
description:
  - Loads a catalog (YAML files or directories, see C(docs/catalog.md) in the collection)
    and brings the caller's project's images in line with it, in one process.
  - In check mode it returns the plan; each item is a create, replace (new bytes), update
    (with the fields that change), deactivate, delete (an old series build past its grace
    period), prune, kept (in use, so not deleted) or noop, with its policy decisions.
  - The policy sees the whole plan before anything changes. A refused item fails the run
    before any change, unless O(partial=true) asks to apply the rest.
  - Cost - one listing of the project's images (pages of 1000, both hidden passes) and, for
    an unchanged image, no further request; bytes are uploaded only for new or changed
    images, whose expected sha256 the catalog gives. An image is unchanged when Glance's own
    C(os_hash_value) equals the sha512 of its source, which this host computed when it last
    read the source (its digest cache, C(IMAGEGOV_CACHE_DIR)); the recorded sha256 property
    alone, which project members can edit, never makes an image unchanged. Without a
    cached digest the source file is read once (not sent).
  - Two runs of the same catalog at once converge on one image per name (see the image
    module's notes on concurrent runs).
  - Images the catalog manages carry the C(imagegov_catalog) property set to O(name).
    O(prune=true) deletes managed images that left the catalog, never unmanaged ones and
    never one in use (servers, images or volumes using it, or usage that cannot be checked).
  - Drift, such as a property edited with the CLI or a changed visibility, shows up in the
    plan and is put back on apply; properties the catalog does not list are removed, except
    Glance's and the collection's own bookkeeping.
  - An entry whose C(source) is another cloud's image (C(source.cloud), a clouds.yaml name, and
    C(source.image)) mirrors it as the image_transfer module copies it - streamed cloud to
    cloud, verified by the Glance hashes at both ends, nothing written on this host. It is
    unchanged while its C(os_hash_value) equals the source's, and replaced when the source's
    bytes change.
  - Builds of a series beyond the newest C(keep) are hidden, then deactivated and deleted
    after the catalog's grace periods, counted from when they were retired (recorded in the
    C(imagegov_retired_at) property), and never deleted while in use.
  - The catalog is read for one target - the cloud named in O(cloud), the region in
    O(region_name) (else the one C(clouds.yaml) gives) and the inventory groups in
    O(target_groups). Entries whose C(targets) do not select it are left out (and, once
    managed here, pruned with O(prune=true)); C(overrides) that select it apply (see
    C(docs/catalog.md)).
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.usage
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details: >-
      Returns the plan and writes the reports; reads only the headers of new images; changes
      nothing in the cloud.
  diff_mode:
    support: none
    details: Each item of RV(plan) carries the fields that change, before and after.
  idempotent:
    support: full
options:
  catalog:
    description:
      - Catalog files, or directories of C(*.yml) / C(*.yaml) catalog files. Relative paths
        are relative to the directory C(ansible-playbook) runs in (as are the report paths).
        Image files the catalog names are read on the host the module runs on.
    type: list
    elements: path
    required: true
  source_roots:
    description:
      - Directories outside the catalog's repository that image files named by the catalog
        (C(source.file)) may come from.
      - By default an image file must resolve, symlinks followed, inside the catalog's
        repository, the nearest directory above the catalog file that holds C(.git), or
        inside the catalog file's own directory when there is none. An absolute path, a
        C(..) or a symlink leading elsewhere is refused with the file, line, image and field,
        before anything is sent to the cloud.
      - Relative paths are relative to the directory C(ansible-playbook) runs in. Image files
        are read on the host the module runs on, so give directories as they are there.
    type: list
    elements: path
    default: []
  name:
    description:
      - Name of this catalog, recorded on the images it manages. Two catalogs with
        different names never prune each other's images.
    type: str
    default: default
  prune:
    description: Delete managed images that are no longer in the catalog, unless in use.
    type: bool
    default: false
  partial:
    description:
      - Apply what the policy allows even when it refuses some items; the refused ones are
        reported and the task still fails.
    type: bool
    default: false
  report_plan:
    description:
      - Write the plan, with each item's policy decisions, to this JSON file. Reports are
        written in check mode too, since a plan is what check mode is for.
      - The file holds every item, noop ones included, whatever O(return_noop) says, and
        lists the project's images as this run found them (C(images) - name, id, status,
        formats, visibility, hidden, size, creation time, series and whether this catalog
        manages it) and every C(targets) and C(overrides[].where) selector of the catalog
        with whether it selected this run's target (C(selectors); the target's cloud, region
        and groups are C(target)), for fleet reports.
    type: path
  return_noop:
    description:
      - Return the items with nothing to do (action C(noop)) in RV(plan) too.
      - By default the task result holds only the items that change, are kept, refused or
        failed, so that a catalog of thousands of images gives a small result to Ansible,
        AWX's job events and callback plugins; RV(summary) counts every item, and
        O(report_plan) writes the whole plan to a file.
    type: bool
    default: false
  report_json:
    description: Write the policy decisions of the plan to this file, as JSON.
    type: path
  report_junit:
    description: Write the policy decisions of the plan to this file, as JUnit XML (one test case per rule and image).
    type: path
  report_sarif:
    description: Write the policy decisions of the plan to this file, as SARIF 2.1.0.
    type: path
  target_groups:
    description:
      - Inventory groups of the target this run reconciles, for the C(groups) of an entry's
        C(targets) and of its C(overrides)' C(where). The C(imagegov.openstack.reconcile)
        playbook passes the host's C(group_names) on a fleet.
      - Not given, the groups are unknown and a catalog that selects by C(groups) is an error
        (rather than left out here, and pruned).
    type: list
    elements: str
  scratch_dir:
    description:
      - Directory for the conversions of entries with C(convert_to) (see the C(image) module's
        O(imagegov.openstack.image#module:convert_to)); a private directory is made in it per
        conversion and removed afterwards. Default the system's temporary directory.
      - A catalog's C(convert_to) may name a format per cloud; the cloud is the name given in
        O(cloud).
    type: path
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Plan on a pull request
  imagegov.openstack.catalog:
    cloud: production
    catalog: [catalog/]
    report_json: reports/plan.json
  check_mode: true
  register: plan

- name: Apply on merge, removing images that left the catalog
  imagegov.openstack.catalog:
    cloud: production
    catalog: [catalog/]
    prune: true
    usage_cloud: production-reader
"""

RETURN = r"""
plan:
  description:
    - One item per catalog image and per pruned image that is not C(noop) (all of them with
      O(return_noop=true)), in catalog order, prune last, each with name, action, origin
      (file and line), operations, changes (field before and after), policy (decisions),
      reason (for refused, kept and error items) and id.
  returned: always
  type: list
  elements: dict
summary:
  description: Number of items per action.
  returned: always
  type: dict
  sample: {noop: 180, update: 1, create: 19}
requests:
  description: Glance requests made.
  returned: always
  type: int
"""

import json

from ansible_collections.imagegov.openstack.plugins.module_utils._base import (
    ImagegovModule,
    configured_region,
    problem_list,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._catalog import (
    CatalogReconciler,
    image_facts,
    summarize,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._converting import ConversionSettings
from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils._operations import FAILED, UNCHANGED, PlanAction
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import PolicyGate
from ansible_collections.imagegov.openstack.plugins.module_utils._reports import REPORTS, read_report, write_report
from ansible_collections.imagegov.openstack.plugins.module_utils._transfer import connect_source
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import CatalogError, Target, load_catalog


class CatalogModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        catalog=dict(type='list', elements='path', required=True),
        source_roots=dict(type='list', elements='path', default=[]),
        name=dict(type='str', default='default'),
        prune=dict(type='bool', default=False),
        partial=dict(type='bool', default=False),
        report_plan=dict(type='path'),
        report_json=dict(type='path'),
        report_junit=dict(type='path'),
        report_sarif=dict(type='path'),
        scratch_dir=dict(type='path'),
        target_groups=dict(type='list', elements='str'),
        return_noop=dict(type='bool', default=False),
        **USAGE_CLOUD_ARGSPEC,
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self) -> None:
        p = self.params
        self.run_target = self.target()
        try:
            catalog = load_catalog(p['catalog'], source_roots=p['source_roots'], target=self.run_target)
        except CatalogError as exc:
            self.fail(f'{exc}\nNothing was sent to the cloud.', problems=problem_list(exc))
        self.selectors = catalog.selectors
        usage = self.usage_lookup()
        reconciler = CatalogReconciler(
            self.glance, self.caller, self.new_gate, usage, p['name'], p['timeout'], self.resolve_project
        )
        reconciler.conversion = ConversionSettings(
            p['cloud'] if isinstance(p['cloud'], str) else None, p['scratch_dir'], self.run_qemu_img
        )
        reconciler.connect_source = lambda cloud: connect_source(
            self, cloud, p['api_timeout'], f'source.cloud {cloud!r} of the catalog'
        )
        reconciler.inventory()
        plan = reconciler.plan(catalog, p['prune'])
        refused = [item for item in plan if item.action in FAILED]
        if self.check_mode or (refused and not p['partial']):
            self.finish(plan, reconciler, changed=any(i.action not in UNCHANGED for i in plan) and not refused)
        done = reconciler.apply(catalog, plan)
        self.finish(done, reconciler, changed=any(i.action not in UNCHANGED + FAILED for i in done))

    def target(self) -> Target:
        """The cloud, region and groups this run reconciles, known before any request."""
        given = self.params['cloud']
        cloud = given if isinstance(given, str) else None
        region = self.params['region_name']
        if region is None:
            region = given.get('region_name') if isinstance(given, dict) else configured_region(cloud)
        groups = self.params['target_groups']
        return Target(cloud, region, None if groups is None else tuple(groups))

    def write_reports(self, items: list, summary: dict, images: list) -> None:
        """Reports are written in check mode too: a plan on a pull request is their purpose."""
        decisions = [decision for item in items for decision in item.decisions]

        def plan_document() -> str:
            document = {
                'plan': [item.as_dict() for item in items],
                'summary': summary,
                'images': [image_facts(image, self.params['name']) for image in images],
                'selectors': [use.as_dict() for use in self.selectors],
                'target': self.run_target.as_dict(),
            }
            return json.dumps(document, indent=2, sort_keys=True)

        outputs = [('report_plan', plan_document)]
        outputs += [
            (
                option,
                lambda render=render, fmt=fmt: (
                    render(decisions, self.gate.policy) if fmt == 'sarif' else render(decisions)
                ),
            )
            for fmt, option, render in REPORTS
        ]
        for option, render in outputs:
            path = self.params[option]
            if path:
                data = render().encode('utf-8')
                if read_report(path, option) != data:
                    write_report(self.ansible, path, data, option)

    def new_gate(self) -> PolicyGate:
        return PolicyGate(self.gate.policy, lambda: self.caller, self.ansible.warn)

    def finish(self, items: list, reconciler: CatalogReconciler, changed: bool) -> None:
        returned = items if self.params['return_noop'] else [i for i in items if i.action != PlanAction.NOOP]
        result = dict(
            changed=changed,
            plan=[item.as_dict() for item in returned],
            summary=summarize(items),
            caller=self.caller,
            requests=reconciler.glance.request_count + reconciler.usage.request_count,
        )
        self.write_reports(items, result['summary'], reconciler.listed)
        failed = [item for item in items if item.action in FAILED]
        if failed:
            lines = [f'{item.name} ({item.origin or item.id}): {item.action.value}: {item.reason}' for item in failed]
            applied = (
                'The other items were applied.'
                if self.params['partial'] and not self.check_mode
                else 'Nothing was changed.'
            )
            self.result.update(result)
            raise ImagegovError(f'{len(failed)} catalog item(s) cannot be applied. {applied}\n' + '\n'.join(lines))
        self.exit(**result)


def main() -> None:
    CatalogModule()()


if __name__ == '__main__':
    main()
