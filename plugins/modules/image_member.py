#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_member
short_description: Share an OpenStack Glance image with projects, or answer a share
version_added: 0.1.0
description:
  - The owner's side chooses which projects an image is shared with, idempotently.
    O(members) is the set of member projects (with O(purge_members), the exact set), or
    O(member) with O(state) adds or removes one project.
  - The member's side sets its own project's answer to a share with O(status). A shared
    image shows up in a member project's default image list only once it is V(accepted).
  - Projects are given by name or id; names are resolved through Keystone. A user with
    only the C(member) role usually may not look projects up by name; then the error
    asks for the project id. Glance does not check that a project id exists.
  - Glance only lets V(shared) images have members. A V(private) image is an error that
    says so, unless O(set_shared=true) makes it shared first (one update). Glance keeps
    the members a private image had when it was last shared and shows them again once it
    is shared; the module then plans again over them and reports it in RV(operations).
  - Every change is first put to the policy (see O(policy)) as action C(share), before any
    request that changes something; making a private image shared is also asked as
    C(update). The image the policy sees carries C(members), the list of member project
    ids after the change (C(current.members) before it), and on the member's side
    C(member_status), so an C(expression) rule asserting
    length(image.members) <= `3` limits sharing to three projects.
  - Removing members narrows who may use the image, and is also asked as C(narrow); the
    default policy refuses it while servers of a project that loses access use the image
    (their rebuild, resize and unshelve need it), or while that cannot be checked; see
    O(usage_cloud).
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
  - imagegov.openstack.usage
attributes:
  check_mode:
    support: full
    details:
      - Reads the image and its members and reports what would change; sends no change to Glance.
      - With O(set_shared=true) on a private image, members Glance hides until the image is
        shared cannot be seen, so they are not predicted.
  diff_mode:
    support: full
    details: Before and after of the image's visibility and its members with their statuses.
  idempotent:
    support: full
options:
  image:
    description:
      - Name or id of the image.
      - On the owner's side (O(members), O(member)) a name is looked up among the images
        owned by O(owner), default the caller's project, hidden ones included.
      - On the member's side (O(status)) a name is looked up among the images shared with
        the caller's project, whatever its answer so far (Glance's C(visibility=shared),
        C(member_status=all)), narrowed to O(owner) when given.
    type: str
    required: true
  owner:
    description:
      - Project (name or id) that owns the image, where O(image) is looked up by name. An
        admin managing another project's image by name needs it.
    type: str
  members:
    description:
      - Projects (names or ids) the image is shared with. Without O(purge_members), the
        listed projects are added and the others kept; with O(state=absent), the listed
        projects are removed.
      - New members are V(pending) until the member project accepts.
      - Mutually exclusive with O(member) and O(status).
    type: list
    elements: str
  purge_members:
    description:
      - Remove members not listed in O(members). O(members=[]) with O(purge_members=true)
        removes every member.
    type: bool
    default: false
  member:
    description:
      - One project (name or id) to add or remove according to O(state).
      - Mutually exclusive with O(members) and O(status).
    type: str
  state:
    description:
      - With O(member) or O(members), V(present) makes sure the projects are members and
        V(absent) makes sure they are not.
    type: str
    choices: [present, absent]
    default: present
  status:
    description:
      - The member's side. Sets the caller's project's answer to the share of O(image), one of
        V(accepted) (the image shows up in the project's image lists), V(rejected), or
        V(pending) (no answer yet).
      - Only the member project can answer; the owner's project gets an error.
      - Mutually exclusive with O(members), O(member), O(purge_members) and O(set_shared).
    type: str
    choices: [accepted, rejected, pending]
  set_shared:
    description:
      - When the image is V(private), make it V(shared) first, so it can have members.
      - Images that are V(public) or V(community) are never changed by this module; they
        are an error.
    type: bool
    default: false
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Share an image with two projects, keeping its other members
  imagegov.openstack.image_member:
    cloud: devcloud-alpha
    image: ubuntu-24.04
    members:
      - 2898fbaab9764a3f80e669ddd0281584   # a member user cannot look up project names
      - 4f2c0e7d8a9b4c3d8e1f2a3b4c5d6e7f

- name: Exactly these members (by name, as admin), removing any other
  imagegov.openstack.image_member:
    cloud: devcloud-admin
    image: ubuntu-24.04
    owner: alpha
    members: [beta, gamma]
    purge_members: true

- name: Stop sharing with one project
  imagegov.openstack.image_member:
    cloud: devcloud-alpha
    image: ubuntu-24.04
    member: 2898fbaab9764a3f80e669ddd0281584
    state: absent

- name: A private image, made shared on the way
  imagegov.openstack.image_member:
    cloud: devcloud-alpha
    image: build-cache
    member: 2898fbaab9764a3f80e669ddd0281584
    set_shared: true

- name: As the member project, accept the share so the image shows up in its lists
  imagegov.openstack.image_member:
    cloud: devcloud-beta
    image: ubuntu-24.04
    status: accepted
"""

RETURN = r"""
image:
  description: The image (in check mode, as it would be).
  returned: when the image was found
  type: dict
  contains:
    id:
      description: Id of the image.
      type: str
    name:
      description: Name of the image.
      type: str
    visibility:
      description: Visibility of the image.
      type: str
    owner:
      description: Id of the project that owns the image.
      type: str
members:
  description:
    - The members after the task (in check mode, as they would be), sorted by project id.
      On the member's side, only the caller's own membership.
  returned: when the image was found
  type: list
  elements: dict
  contains:
    member_id:
      description: Id of the member project.
      type: str
    status:
      description: V(pending), V(accepted) or V(rejected).
      type: str
  sample: [{member_id: 2898fbaab9764a3f80e669ddd0281584, status: pending}]
operations:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["add member beta (2898fbaab9764a3f80e669ddd0281584)"]
requests:
  description: Number of requests sent to Glance.
  returned: always
  type: int
caller:
  description: The user, project and roles the module acted as.
  returned: always
  type: dict
policy:
  description:
    - The policy decisions, one per action asked about (C(share), and C(update) when a
      private image is made shared), with each violation's rule, severity, mode, message,
      path, expected and found values and any exception that waived it.
  returned: always
  type: dict
  contains:
    allowed:
      description: Whether every action was allowed.
      type: bool
    decisions:
      description: The decisions, in the order they were made.
      type: list
      elements: dict
"""

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._members import (
    MemberReconciler,
    MemberRequestError,
    diff_view,
    find_shared_image,
    image_summary,
    member_list,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC


class ImageMemberModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        image=dict(type='str', required=True),
        owner=dict(type='str'),
        members=dict(type='list', elements='str'),
        purge_members=dict(type='bool', default=False),
        member=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        status=dict(type='str', choices=['accepted', 'rejected', 'pending']),
        set_shared=dict(type='bool', default=False),
        **USAGE_CLOUD_ARGSPEC,
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_one_of=[('members', 'member', 'status')],
        mutually_exclusive=[('members', 'member', 'status')],
    )

    def run(self) -> None:
        p = self.params
        _check_options(p)
        self.result.update(operations=[], caller=self.caller)
        owner_id = self.resolve_project(p['owner']) if p['owner'] else None
        if p['status']:
            image = find_shared_image(self.glance, p['image'], owner_id, self.caller)
            reconciler = MemberReconciler(self.glance, self.gate, self.caller, self.check_mode)
            self.result['operations'] = reconciler.outcome.operations
            outcome = reconciler.answer(image, p['status'])
        else:
            given = p['members'] if p['members'] is not None else [p['member']]
            labels = {self.resolve_project(name): name for name in given}
            image = self.find_owned_image(p['image'], owner_id or self.caller['project_id'])
            reconciler = MemberReconciler(self.glance, self.gate, self.caller, self.check_mode, labels)
            self.result['operations'] = reconciler.outcome.operations
            outcome = reconciler.share(image, sorted(labels), p['state'], p['purge_members'], p['set_shared'])
        after_image = image_summary(outcome.image)
        self.exit(
            changed=outcome.changed,
            image=after_image,
            members=member_list(outcome.after),
            operations=outcome.operations,
            caller=self.caller,
            requests=self.glance.request_count,
            diff={
                'before': diff_view(outcome.visibility_before, outcome.before),
                'after': diff_view(after_image['visibility'], outcome.after),
            },
        )

    def find_owned_image(self, name_or_id: str, owner_id: str) -> dict:
        image = self.glance.find(name_or_id, 'Option image', 'Give the image id instead.', owner=owner_id)
        if image is None:
            raise MemberRequestError(
                f'No image {name_or_id!r} (by id, or by name among the images of project '
                f"{owner_id}) is visible. Check the name or id; for another project's image give "
                'its id or the owner option.'
            )
        return image


def _check_options(p: dict) -> None:
    if p['status']:
        for option in ('purge_members', 'set_shared'):
            if p[option]:
                raise MemberRequestError(
                    f"Option {option} is for the owner's side (members / member); status answers a "
                    'share as the member project. Leave one of them out.'
                )
    if p['purge_members'] and p['members'] is None:
        raise MemberRequestError(
            'Option purge_members needs members (the exact set to keep). '
            'To remove one project, use member with state: absent.'
        )
    if p['purge_members'] and p['state'] == 'absent':
        raise MemberRequestError(
            'Options purge_members and state: absent contradict each other: '
            'state: absent removes the listed members, purge_members keeps only them.'
        )


def main() -> None:
    ImageMemberModule()()


if __name__ == '__main__':
    main()
