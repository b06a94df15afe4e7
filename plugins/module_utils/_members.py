# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image members: who an image is shared with, and a member project's answer to a share.

Planning is pure (``plan_members``, ``apply_plan``, the policy and diff views); the
reconciler asks the policy about the whole change before its first mutating request, and
undoes its own earlier steps when a later one fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import ImagegovError
from ._glance import Glance, is_uuid
from ._operations import Kind, OperationLog
from ._state import SHARED_SINCE_PROPERTY
from ._undo import UndoLog

MEMBER_STATUSES = ('accepted', 'rejected', 'pending')


class MemberRequestError(ImagegovError):
    """The request cannot be carried out as given; the message says what to change."""


@dataclass
class MemberOutcome:
    changed: bool = False
    image: dict[str, Any] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    visibility_before: str | None = None
    operations: OperationLog = field(default_factory=OperationLog)


def statuses_of(members: list[dict[str, Any]]) -> dict[str, str]:
    """``{member project id: status}`` from Glance's member list."""
    return {m['member_id']: m.get('status', 'pending') for m in members}


def plan_members(current: dict[str, str], wanted: list[str], state: str, purge: bool) -> tuple[list[str], list[str]]:
    """(project ids to add, project ids to remove), each sorted; both empty when in step."""
    wanted_set = set(wanted)
    if state == 'absent':
        return [], sorted(wanted_set & set(current))
    add = sorted(wanted_set - set(current))
    remove = sorted(set(current) - wanted_set) if purge else []
    return add, remove


def apply_plan(current: dict[str, str], add: list[str], remove: list[str]) -> dict[str, str]:
    """The members after the plan: new members are ``pending`` until they accept."""
    after = {k: v for k, v in current.items() if k not in remove}
    after.update({member: 'pending' for member in add})
    return after


def member_list(statuses: dict[str, str]) -> list[dict[str, str]]:
    return [{'member_id': member, 'status': statuses[member]} for member in sorted(statuses)]


def share_view(image: dict[str, Any], statuses: dict[str, str], member_status: str | None = None) -> dict[str, Any]:
    """The image as the policy sees a share: ``members`` (project ids) and, for a member
    project's answer, ``member_status``."""
    view = dict(image)
    view['members'] = sorted(statuses)
    if member_status is not None:
        view['member_status'] = member_status
    return view


def diff_view(visibility: str | None, statuses: dict[str, str]) -> dict[str, Any]:
    return {'visibility': visibility, 'members': member_list(statuses)}


def image_summary(image: dict[str, Any]) -> dict[str, Any]:
    return {key: image.get(key) for key in ('id', 'name', 'visibility', 'owner')}


def find_shared_image(glance: Glance, name_or_id: str, owner_id: str | None, caller: dict[str, Any]) -> dict[str, Any]:
    """An image shared with the caller's project: by id, or by name among the images shared
    with it whatever its answer (``visibility=shared``, ``member_status=all``).

    Glance's list also holds the caller's own shared images; one of those is returned only
    when nothing else matches, so that answering it is refused with the owner's error.
    """
    if is_uuid(name_or_id):
        image = glance.live_image(name_or_id)
        if image is not None:
            return image
    project = f'{caller["project"]} ({caller["project_id"]})'
    matches = glance.images_named(name_or_id, visibility='shared', member_status='all', owner=owner_id)
    found = [image for image in matches if image.get('owner') != caller['project_id']] or matches[:1]
    if not found:
        raise MemberRequestError(
            f'No image {name_or_id!r} is shared with project {project}'
            + (f' by project {owner_id}' if owner_id else '')
            + ': the owner must first make this project a member (imagegov.openstack.image_member '
            'with member or members, run as the owning project), or check the image name or id.'
        )
    if len(found) > 1:
        listing = ', '.join(f'{i["id"]} (owner {i.get("owner")})' for i in found)
        raise MemberRequestError(
            f'{len(found)} images named {name_or_id!r} are shared with project {project}: '
            f'{listing}. Give the image id, or the owner option.'
        )
    return found[0]


def not_shared_message(image: dict[str, Any]) -> str:
    label = f'Image {image.get("name")!r} ({image["id"]})'
    visibility = image.get('visibility')
    if visibility == 'private':
        return (
            f'{label} is private: Glance only lets shared images have members. Set '
            'set_shared: true to make it shared first (one update, asked of the policy '
            'too), or give it visibility: shared with imagegov.openstack.image. Nothing was changed.'
        )
    return (
        f'{label} is {visibility}: Glance only lets shared images have members, and a '
        f'{visibility} image is already visible to every project. Give it visibility: '
        'shared with imagegov.openstack.image to share it with chosen projects only. '
        'Nothing was changed.'
    )


class MemberReconciler:
    def __init__(
        self, glance: Glance, gate: Any, caller: dict[str, Any], check_mode: bool, labels: dict[str, str] | None = None
    ) -> None:
        self.glance = glance
        self.gate = gate
        self.caller = caller
        self.check_mode = check_mode
        self.labels = labels or {}
        self.outcome = MemberOutcome()
        self._undo = UndoLog(self.outcome.operations)

    # -- the owner's side: who the image is shared with ----------------------------
    def share(
        self, image: dict[str, Any], wanted: list[str], state: str, purge: bool, set_shared: bool
    ) -> MemberOutcome:
        self._require_owner(image)
        visibility = image.get('visibility')
        make_shared = visibility == 'private' and set_shared
        if visibility != 'shared' and not make_shared:
            raise MemberRequestError(not_shared_message(image))
        if image['owner'] in wanted:
            raise MemberRequestError(
                f'Project {self._label(image["owner"])} owns image {image.get("name")!r}: the owner '
                'cannot be a member of its own image. Leave it out of members / member.'
            )
        # A private image's members are hidden by Glance (those kept from when it was
        # shared reappear once it is shared again): until then, the visible set is empty.
        current = {} if make_shared else statuses_of(self.glance.list_members(image['id']))
        out = self.outcome
        out.image, out.visibility_before, out.before = image, visibility, current
        add, remove = plan_members(current, wanted, state, purge)
        out.after = apply_plan(current, add, remove)
        if not (add or remove or make_shared):
            return out
        shared = dict(image, visibility='shared')
        # Asked before the first mutating request: the whole change must be allowed.
        if make_shared:
            self.gate.check('update', shared, image)
        self._ask_share(shared, image, out.after, current, remove)
        out.changed = True
        if self.check_mode:
            if make_shared:
                out.operations.add(Kind.UPDATE, f'make image {image["id"]} shared (was private)')
            self._record_members(add, remove)
            out.image = shared
            return out
        try:
            if make_shared:
                out.image = self.glance.patch_image(
                    image['id'], [{'op': 'replace', 'path': '/visibility', 'value': 'shared'}]
                )
                self._done(
                    Kind.UPDATE,
                    f'make image {image["id"]} shared (was private)',
                    lambda: self.glance.patch_image(
                        image['id'], [{'op': 'replace', 'path': '/visibility', 'value': 'private'}]
                    ),
                )
                add, remove = self._replan_revealed(image, wanted, state, purge, add, remove)
            for member in add:
                self.glance.add_member(image['id'], member)
                self._done(
                    Kind.SHARE,
                    f'add member {self._label(member)}',
                    lambda m=member: self.glance.remove_member(image['id'], m),
                )
            for member in remove:
                self.glance.remove_member(image['id'], member)
                self._done(
                    Kind.NARROW,
                    f'remove member {self._label(member)} (was {out.before[member]})',
                    lambda m=member: self.glance.add_member(image['id'], m),
                )
        except BaseException:  # an interrupted or terminated run undoes its steps too
            self._undo.rollback()
            raise
        if add and not image.get(SHARED_SINCE_PROPERTY):
            # Projects may boot it from now on, and keep using it after they stop being
            # members: later deletes and narrowing count on that.
            out.image = self.glance.patch_image(
                image['id'],
                [
                    {
                        'op': 'add',
                        'path': f'/{SHARED_SINCE_PROPERTY}',
                        'value': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                    }
                ],
            )
        return out

    def _ask_share(
        self,
        after_image: dict[str, Any],
        before_image: dict[str, Any],
        after: dict[str, str],
        before: dict[str, str],
        remove: list[str],
    ) -> None:
        """A change of members is a share; one that removes members also narrows who may use
        the image, asked on who uses it (their servers keep running on it)."""
        self.gate.check('share', share_view(after_image, after), share_view(before_image, before))
        if remove:
            self.gate.check('narrow', share_view(after_image, after), share_view(before_image, before))

    def _replan_revealed(
        self, image: dict[str, Any], wanted: list[str], state: str, purge: bool, add: list[str], remove: list[str]
    ) -> tuple[list[str], list[str]]:
        """After a private image became shared: plan again over the members Glance revealed."""
        out = self.outcome
        revealed = statuses_of(self.glance.list_members(image['id']))
        if not revealed:
            return add, remove
        out.operations.add(
            Kind.NOTE,
            'members kept from when the image was last shared reappeared: '
            + ', '.join(f'{self._label(m)} ({s})' for m, s in sorted(revealed.items())),
        )
        out.before = revealed
        add, remove = plan_members(revealed, wanted, state, purge)
        out.after = apply_plan(revealed, add, remove)
        shared = dict(out.image)
        self._ask_share(shared, shared, out.after, revealed, remove)
        return add, remove

    # -- a member project's side: its answer to a share ----------------------------
    def answer(self, image: dict[str, Any], status: str) -> MemberOutcome:
        project_id = self.caller['project_id']
        label = f'image {image.get("name")!r} ({image["id"]})'
        if image.get('owner') == project_id:
            raise MemberRequestError(
                f'Project {self.caller["project"]} ({project_id}) owns {label}: only a member project can accept, '
                'reject or reset a share (Glance refuses the owner). Run this task as the member '
                'project, or use members / member to choose who the image is shared with.'
            )
        if image.get('visibility') != 'shared':
            raise MemberRequestError(
                f'{label[0].upper()}{label[1:]} is {image.get("visibility")}, not shared: it has no '
                'members to accept or reject it.'
            )
        mine = {k: v for k, v in statuses_of(self.glance.list_members(image['id'])).items() if k == project_id}
        if not mine:
            raise MemberRequestError(
                f'Project {self.caller["project"]} ({project_id}) is not a member of {label}: the '
                'owner must add it first (imagegov.openstack.image_member with member, run as the '
                'owning project).'
            )
        out = self.outcome
        out.image, out.visibility_before, out.before = image, image.get('visibility'), mine
        out.after = {project_id: status}
        if mine[project_id] == status:
            return out
        self.gate.check('share', share_view(image, out.after, status), share_view(image, mine, mine[project_id]))
        out.changed = True
        out.operations.add(
            Kind.SHARE,
            f'set the membership of project {self.caller["project"]} in {label} to {status} (was {mine[project_id]})',
        )
        if not self.check_mode:
            self.glance.update_member(image['id'], project_id, status)
        return out

    # -- helpers ----------------------------------------------------------------
    def _require_owner(self, image: dict[str, Any]) -> None:
        if image.get('owner') == self.caller['project_id'] or 'admin' in self.caller['roles']:
            return
        raise MemberRequestError(
            f'Project {self.caller["project"]} does not own image {image.get("name")!r} '
            f'({image["id"]}; owner {image.get("owner")}): only the owning project or an admin '
            'can choose its members. To accept or reject an image shared with this project, '
            'use status.'
        )

    def _label(self, project_id: str) -> str:
        name = self.labels.get(project_id)
        return f'{name} ({project_id})' if name and name != project_id else project_id

    def _record_members(self, add: list[str], remove: list[str]) -> None:
        for member in add:
            self.outcome.operations.add(Kind.SHARE, f'add member {self._label(member)}')
        for member in remove:
            self.outcome.operations.add(
                Kind.NARROW, f'remove member {self._label(member)} (was {self.outcome.before[member]})'
            )

    def _done(self, kind: Kind, operation: str, undo: Callable[[], Any]) -> None:
        self.outcome.operations.add(kind, operation)
        # Glance re-adds a removed member as pending: say so if it comes back that way.
        note = ' (a re-added member is pending until it accepts again)' if kind is Kind.NARROW else ''
        self._undo.add(operation, undo, note)
