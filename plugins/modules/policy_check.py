#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: policy_check
short_description: Evaluate image requests against the image policy, or audit every image of a cloud
version_added: 0.1.0
description:
  - Puts image requests to the collection's policy engine and reports the decisions,
    without changing anything in the cloud. The policy is the one the other modules of
    the collection enforce (see O(policy)).
  - With O(mode=evaluate), evaluates the request documents given in O(requests) (the
    engine's request document shape, see C(policies/README.md) in the collection). No
    connection to the cloud is made; the connection options are ignored.
  - With O(mode=audit), audits the live cloud. Every image visible to the caller
    (Glance's C(visibility=all), C(member_status=all), hidden and not hidden images) is
    listed in pages of 1000 images, one listing rather than one request per image, and
    each image is judged as it stands (its owner, its visibility and the facts Glance
    recorded), not as if the caller created it today. With O(inspect=header) the first
    8 MiB of each image's stored data are read as well, so the format is judged from the
    bytes. See the notes for exactly what is evaluated.
  - Writes the decisions as JSON, JUnit XML and SARIF 2.1.0 report files when
    O(report_json), O(report_junit) or O(report_sarif) are given; a file is replaced only
    when its content changes, so C(changed) is true only when a report file changed.
  - The task succeeds whatever the verdicts unless O(fail_on_violation=true). Warn-mode
    violations are reported in RV(decisions) and counted in RV(summary.warnings); they are
    not turned into Ansible warnings.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details:
      - Evaluates (and, with O(mode=audit), reads the images from Glance, and with
        O(inspect=header) the first bytes of their data) as without check mode, but writes no
        report file; C(changed) says whether a report file would change.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The reports hold no time stamps; the same requests (or the same cloud) and policy give the same files.
options:
  mode:
    description:
      - V(evaluate) evaluates O(requests); nothing is sent to the cloud.
      - V(audit) evaluates every image visible to the caller, as it stands.
    type: str
    choices: [evaluate, audit]
    default: evaluate
  inspect:
    description:
      - What O(mode=audit) reads of each image's data. Refused with O(mode=evaluate),
        except V(none).
      - V(none) reads no data. Format integrity then has nothing to judge (Glance records
        sizes, not the format of the bytes), so C(format_integrity) rules are reported as
        skipped with a note saying so. Sizes are judged from what Glance recorded.
      - V(header) reads the first 8 MiB of the data Glance stores for each active image,
        with one HTTP Range request per image (C(GET /v2/images/{id}/file), answered with
        C(206 Partial Content)), and inspects them with oslo.utils' format inspector, as
        uploads are inspected. The detected format is judged against C(disk_format), the
        safety checks (backing files, external data files, VMDK extents pointing at other
        files, ...) are reported, and a disk format that records its virtual size in its
        header is judged on that size. The caller must be allowed to download the images.
      - With V(header), an image that is not C(active), has no data (size 0), or whose
        C(container_format) wraps the disk (anything but V(bare), V(ami), V(aki) and
        V(ari); Glance does not inspect those either) is not read; its
        C(format_integrity) rules are reported as skipped with a note naming the reason.
        So is an image whose data Glance refuses to serve (the note has the HTTP status).
    type: str
    choices: [none, header]
    default: none
  requests:
    description:
      - Request documents to evaluate, required with O(mode=evaluate) and refused with
        O(mode=audit). Each is a mapping with C(action) (one of V(create), V(update),
        V(upload), V(publish), V(share), V(delete), V(deactivate)), C(actor) (C(user),
        C(project), C(roles), ...), C(image) (the image after the action, with Glance's
        field names and properties as top-level keys), C(current) (the existing image or
        V(null)), and optionally C(content) (facts about the bytes), C(usage) (servers,
        images and volumes using the image), C(data_source) (where the bytes come from, with
        C(kind) V(url), V(file) or V(glance), and C(url) or C(path)) and C(source)
        (C(path), C(line) of the catalog entry, shown in SARIF).
      - Every document is checked before anything is evaluated; a document that is not a
        mapping, lacks C(action), names an unknown action or field, or has a field of the
        wrong type fails the task with one line per problem naming C(requests[N]).
      - A C(delete) request without C(usage) counts its usage as unknown (nothing is
        looked up in this mode).
    type: list
    elements: raw
  report_json:
    description:
      - File to write the decisions to as JSON (C({allowed, decisions})), on the host the
        module runs on. Parent directories are created; the file is replaced atomically.
    type: path
  report_junit:
    description:
      - File to write the decisions to as JUnit XML, on the host the module runs on. One
        C(testsuite) per request or image, one C(testcase) per applicable rule, refusing
        violations as C(failure), rules skipped for missing facts as C(skipped).
    type: path
  report_sarif:
    description:
      - File to write the violations to as SARIF 2.1.0, on the host the module runs on.
        Every policy rule is a C(reportingDescriptor), every violation a C(result) (level
        C(error) for enforce, C(warning) for warn, C(note) for audit rules).
    type: path
  fail_on_violation:
    description:
      - Fail the task when any decision is a refusal. The message names each refused
        request or image and the rules that refused it. Report files are written first,
        and the result still has RV(decisions), RV(summary) and RV(reports).
    type: bool
    default: false
notes:
  - "Audit semantics: each image is evaluated as the request C({action: create, actor:
    <its owner>, image: <the image as Glance returns it>, current: <the same image>,
    content: <facts>}): the image as it stands. Rules scoped to other actions (for example
    C(delete_protection)) do not apply and usage is not looked up. As C(current) is the
    image itself, nothing changes: rules about changing the visibility
    (C(restricted_visibility)) do not fire, so a member's audit does not flag an
    administrator's public image. Glance does not record who published an image: to
    audit which projects own public images, use an C(expression) rule on C(image.owner)."
  - "Audit semantics: the actor is the image's owner as far as it is known: C(project)
    and C(project_id) are the image's C(owner); when that is the caller's project, the
    caller's C(user) and C(roles) too, otherwise no user and no roles."
  - "Audit semantics: without O(inspect), C(content) is what Glance recorded:
    C({size, virtual_size, recorded_by: glance}). C(max_size) rules judge those sizes;
    an image without them (no data yet) is not judged on size. Glance computes
    C(virtual_size) from the stored bytes, except that it records the stored size for an
    image declared V(raw) whatever its bytes are; O(inspect=header) reads the virtual size
    from the header instead. C(format_integrity) rules are skipped (JUnit C(skipped), with
    the note in RV(decisions[].rules))."
  - "Audit semantics: with O(inspect=header), C(content) is the inspector's facts
    (C(detected_format), C(virtual_size), C(safety_failures)) with C(size) the stored size
    Glance recorded. The images are read one after the other: the audit takes roughly one
    8 MiB download per active image longer."
  - Deleted images are not listed by Glance and are not audited.
  - The policy is read on the controller by the action plugin, as for the other modules.
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Would these catalog entries be allowed? Fail the CI job if not
  imagegov.openstack.policy_check:
    policy: [policies/]
    requests:
      - action: create
        actor: {user: ci, project: images, roles: [member]}
        image: {name: ubuntu-24.04, disk_format: qcow2, container_format: bare, visibility: private}
        current: null
        content: {detected_format: qcow2, size: 658505728, virtual_size: 3758096384}
        source: {path: catalog/images.yml, line: 12}
    report_junit: reports/policy.xml
    fail_on_violation: true

- name: Nightly audit of every image of the cloud, as a SARIF report for code scanning
  imagegov.openstack.policy_check:
    cloud: production-admin
    mode: audit
    report_sarif: /srv/reports/images.sarif
    report_json: /srv/reports/images.json
  register: audit

- name: Show the images the policy refuses as they stand
  ansible.builtin.debug:
    msg: "{{ audit.decisions | rejectattr('allowed') | map(attribute='image.name') | list }}"

- name: Weekly audit that reads each image's header, to find disks whose bytes are not what they declare
  imagegov.openstack.policy_check:
    cloud: production-admin
    mode: audit
    inspect: header
    report_junit: /srv/reports/images-inspected.xml
"""

RETURN = r"""
decisions:
  description:
    - One decision per request (in the order of O(requests)) or per audited image (sorted
      by name, then id).
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: The request's action (V(create) for every audited image).
      type: str
    image:
      description: C(id) and C(name) of the image.
      type: dict
    allowed:
      description: False exactly when an enforce-mode violation is not waived by a live exception.
      type: bool
    violations:
      description:
        - Every violation, with C(rule), C(type), C(severity), C(mode), C(message), C(path),
          C(expected), C(found) and C(exception) (V(null), or the exception that waived it
          or has expired).
      type: list
      elements: dict
    warnings:
      description: Messages of the warn-mode violations no exception waives.
      type: list
      elements: str
    rules:
      description:
        - One entry per applicable rule, C(rule), C(type) and C(status) (V(passed), V(violated), V(skipped)),
          and C(note) for a skipped rule, saying why (which facts were missing, or why the audit read no bytes).
      type: list
      elements: dict
summary:
  description: Counts over RV(decisions).
  returned: always
  type: dict
  contains:
    evaluated:
      description: Number of requests evaluated, or of images audited.
      type: int
    allowed:
      description: Number of decisions that allow.
      type: int
    refused:
      description: Number of decisions that refuse.
      type: int
    warnings:
      description: Number of warn-mode violations (not waived), over all decisions.
      type: int
  sample: {evaluated: 3, allowed: 2, refused: 1, warnings: 2}
reports:
  description:
    - Report files that hold these decisions after the task (written now, or already
      identical), by format (V(json), V(junit), V(sarif)). Empty in check mode, which writes
      nothing.
  returned: always
  type: dict
  sample: {json: /srv/reports/images.json, sarif: /srv/reports/images.sarif}
reports_changed:
  description: Formats whose report file was written (in check mode, would be written) because its content changed.
  returned: always
  type: list
  elements: str
  sample: [sarif]
caller:
  description:
    - The user, project and roles the audit ran as. They decide what it could see, and they
      are the actor of the audit requests of the images its project owns.
  returned: with O(mode=audit)
  type: dict
requests:
  description:
    - Number of Glance requests made, for the listing (a page per hidden / not hidden pass) and,
      with O(inspect=header), one ranged download per image read.
  returned: with O(mode=audit)
  type: int
  sample: 2
"""

from typing import Any

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule, problem_list
from ansible_collections.imagegov.openstack.plugins.module_utils._content import PRESCAN_BYTES, prescan_head
from ansible_collections.imagegov.openstack.plugins.module_utils._glance import GlanceError
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import POLICY_ARGSPEC, load_module_policy
from ansible_collections.imagegov.openstack.plugins.module_utils._reports import (
    REPORTS,
    check_report_path,
    read_report,
    write_report,
)
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import (
    PolicyError,
    RequestError,
    build_request,
    evaluate_batch,
    request_problems,
)
from ansible_collections.imagegov.openstack.plugins.module_utils.policy.decision import PASSED, SKIPPED
from ansible_collections.imagegov.openstack.plugins.module_utils.policy.rules.format_integrity import bytes_not_read

# Every image the caller may see: Glance's default list leaves out hidden images and
# shared images whose membership the caller has not accepted.
AUDIT_FILTERS = (('visibility', 'all'), ('member_status', 'all'))
# Containers whose stored bytes are the disk itself; ova, ovf, docker and compressed wrap
# it, so their first bytes say nothing of the disk (Glance does not inspect them either).
DISK_CONTAINERS = ('bare', 'ami', 'aki', 'ari')
CONTENT_FACTS = ('detected_format', 'size', 'virtual_size', 'safety_failures')
NOT_READ = (
    "the bytes were not read: the audit judged Glance's record (size, virtual_size), which says "
    f'nothing of the format; set inspect=header to read the first {PRESCAN_BYTES // 2**20} MiB of each image'
)


class PolicyCheckModule(ImagegovModule):
    # The base class's policy gate would add a 'policy' result of its own; the decisions
    # are this module's result, so the policy is loaded here instead.
    argument_spec = dict(
        mode=dict(type='str', default='evaluate', choices=['evaluate', 'audit']),
        requests=dict(type='list', elements='raw'),
        report_json=dict(type='path'),
        report_junit=dict(type='path'),
        report_sarif=dict(type='path'),
        fail_on_violation=dict(type='bool', default=False),
        inspect=dict(type='str', default='none', choices=['none', 'header']),
        **POLICY_ARGSPEC,
    )
    module_kwargs = dict(supports_check_mode=True, required_if=[('mode', 'evaluate', ('requests',))])

    def run(self) -> None:
        p = self.params
        if p['mode'] == 'audit' and p['requests'] is not None:
            self.fail(
                'Option requests is only used with mode=evaluate; mode=audit evaluates '
                'the images of the cloud. Remove requests or set mode=evaluate.'
            )
        if p['mode'] == 'evaluate' and p['inspect'] != 'none':
            self.fail(
                f'Option inspect={p["inspect"]} is only used with mode=audit; mode=evaluate '
                'judges the content facts given in each request. Remove inspect or set mode=audit.'
            )
        if p['mode'] == 'evaluate':
            problems = request_problems(p['requests'])
            if problems:
                error = RequestError(problems)
                self.fail(f'{error}\nNothing was evaluated.', problems=problem_list(error))
        for _fmt, option, _render in REPORTS:
            if p[option]:
                check_report_path(p[option], option)
        try:
            policy = load_module_policy(p)
        except PolicyError as exc:
            self.fail(f'{exc}\nNothing was evaluated.', problems=problem_list(exc))
        if p['mode'] == 'evaluate':
            documents = p['requests']
            labels = [f'requests[{index}]' for index in range(len(documents))]
            not_read: list[str | None] = [None] * len(documents)
        else:
            images = self.visible_images()
            if p['inspect'] == 'header':
                read = [self.read_header(image) for image in images]
            else:
                read = [(None, NOT_READ)] * len(images)
            documents = [
                audit_request(image, self.caller, content)
                for image, (content, _reason) in zip(images, read, strict=False)
            ]
            not_read = [reason for _content, reason in read]
            labels = [None] * len(documents)
            self.result.update(caller=self.caller, requests=self.glance.request_count)
        decisions = evaluate_batch(policy, documents)
        mark_not_read(decisions, documents, not_read)
        self.result.update(
            decisions=[decision.as_dict() for decision in decisions],
            summary=summarize(decisions),
            reports={},
            reports_changed=[],
        )
        self.write_reports(decisions, policy)
        refused = [
            (label, decision) for label, decision in zip(labels, decisions, strict=False) if not decision.allowed
        ]
        if refused and p['fail_on_violation']:
            what = 'requests' if p['mode'] == 'evaluate' else 'images'
            self.fail(
                f'policy refused {len(refused)} of {len(decisions)} {what}:\n'
                + '\n'.join(refusal_line(label, decision) for label, decision in refused)
            )
        self.exit(**self.result)

    def visible_images(self) -> list[dict[str, Any]]:
        images = self.glance.all_images(AUDIT_FILTERS)
        return sorted(images, key=lambda image: (image.get('name') or '', image['id']))

    def read_header(self, image: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Content facts from the first bytes Glance stores for the image, or (None, why not)."""
        reason = header_unreadable(image)
        if reason is not None:
            return None, f'inspect=header did not read this image: {reason}'
        import requests

        try:
            _length, chunks = self.glance.download(image['id'], PRESCAN_BYTES)
            facts = prescan_head(chunks, image.get('size'))
        except GlanceError as exc:
            return None, f'inspect=header could not read this image: HTTP {exc.status_code}: {exc.message}'
        except requests.RequestException as exc:
            return None, f'inspect=header could not read this image: the download broke off ({type(exc).__name__})'
        return {key: facts[key] for key in CONTENT_FACTS}, None

    def write_reports(self, decisions: list[Any], policy: Any) -> None:
        for fmt, option, render in REPORTS:
            path = self.params[option]
            if not path:
                continue
            text = render(decisions, policy) if fmt == 'sarif' else render(decisions)
            data = text.encode('utf-8')
            if read_report(path, option) == data:
                if not self.check_mode:
                    self.result['reports'][fmt] = path
                continue
            self.result['changed'] = True
            self.result['reports_changed'].append(fmt)
            if not self.check_mode:
                write_report(self.ansible, path, data, option)
                self.result['reports'][fmt] = path


def audit_request(
    image: dict[str, Any], caller: dict[str, Any], content: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An image as it stands: it exists (current is itself, so nothing changes), its owner
    is the actor, and the content facts are the bytes read, else what Glance recorded."""
    owner = image.get('owner')
    if owner is not None and owner == caller.get('project_id'):
        actor = caller
    else:
        # Glance does not say who in the owning project made the image, nor their roles.
        actor = {'user': None, 'project': owner, 'project_id': owner, 'roles': []}
    if content is None:
        content = {'size': image.get('size'), 'virtual_size': image.get('virtual_size'), 'recorded_by': 'glance'}
    return build_request('create', image=image, current=image, actor=actor, content=content)


def header_unreadable(image: dict[str, Any]) -> str | None:
    """Why the image's first bytes are not worth reading, or None."""
    if image.get('status') != 'active':
        return f'it is {image.get("status")!r}, not active, so Glance serves no data for it'
    if not image.get('size'):
        return 'it has no data (size 0)'
    container = image.get('container_format')
    if container not in DISK_CONTAINERS:
        return f'its container_format {container!r} wraps the disk, so its first bytes are not the disk image'
    return None


def mark_not_read(decisions: list[Any], documents: list[Any], not_read: list[str | None]) -> None:
    """A format_integrity rule that judged no bytes did not pass: report it skipped, and why.

    The engine gives rules no way to skip themselves once content facts exist.
    """
    for decision, document, reason in zip(decisions, documents, not_read, strict=False):
        content = document.get('content') if isinstance(document, dict) else None
        if not isinstance(content, dict) or not bytes_not_read(content):
            continue
        for outcome in decision.outcomes:
            if outcome.type == 'format_integrity' and outcome.status == PASSED:
                outcome.status = SKIPPED
                outcome.note = reason or (
                    "the bytes were not read: the content facts are Glance's record, which says nothing of the format"
                )


def summarize(decisions: list[Any]) -> dict[str, int]:
    allowed = sum(1 for decision in decisions if decision.allowed)
    return {
        'evaluated': len(decisions),
        'allowed': allowed,
        'refused': len(decisions) - allowed,
        'warnings': sum(len(decision.warnings) for decision in decisions),
    }


def refusal_line(label: str | None, decision: Any) -> str:
    rules = '; '.join(f'[{violation.rule}] {violation.message}' for violation in decision.blocking)
    if label is None:
        return f'image {decision.image_label}: {rules}'
    return f'{label} ({decision.action} of {decision.image_label}): {rules}'


def main() -> None:
    PolicyCheckModule()()


if __name__ == '__main__':
    main()
