# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run did or would do, as data: each operation has a kind, decided where the
operation is, and a text for people (an Operation is that text, so results show it as it is).
Plans, summaries and reports read the kinds; rewording a text changes nothing but what
people read."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Kind(str, enum.Enum):
    """What one operation does to an image."""

    CREATE = 'create'
    UPLOAD = 'upload'
    REPLACE = 'replace'
    UPDATE = 'update'
    PROTECT = 'protect'
    UNPROTECT = 'unprotect'
    RETIRE = 'retire'
    SHARE = 'share'
    NARROW = 'narrow'
    DEACTIVATE = 'deactivate'
    REACTIVATE = 'reactivate'
    DELETE = 'delete'
    # Not changes: what a run found or undid.
    NOTE = 'note'
    ROLLBACK = 'rollback'


class PlanAction(str, enum.Enum):
    """What a catalog plan does with one image, in the plan, the summary and the reports."""

    NOOP = 'noop'
    CREATE = 'create'
    REPLACE = 'replace'
    UPDATE = 'update'
    SHARE = 'share'
    DEACTIVATE = 'deactivate'
    DELETE = 'delete'
    PRUNE = 'prune'
    KEPT = 'kept'
    REFUSED = 'refused'
    ERROR = 'error'


# Plan actions that change nothing in the cloud, and those that stop an apply.
UNCHANGED = (PlanAction.NOOP, PlanAction.KEPT)
FAILED = (PlanAction.REFUSED, PlanAction.ERROR)
_MEMBER_KINDS = {Kind.SHARE, Kind.NARROW}


class Operation(str):
    """The text of an operation, for people and results, carrying its kind for plans."""

    kind: Kind

    def __new__(cls, kind: Kind, text: str) -> Operation:
        operation = super().__new__(cls, text)
        operation.kind = kind
        return operation


class OperationLog(list):
    """The operations of one run, in order."""

    def add(self, kind: Kind, text: str) -> None:
        self.append(Operation(kind, text))

    @property
    def kinds(self) -> list[Kind]:
        return [operation.kind for operation in self]


def plan_action(kinds: Iterable[Kind], changed: bool) -> PlanAction:
    """The plan action of an image from the kinds of its operations."""
    done = set(kinds) - {Kind.NOTE, Kind.ROLLBACK}
    if not changed or not done:
        return PlanAction.NOOP
    if Kind.DELETE in done:
        return PlanAction.DELETE
    if Kind.REPLACE in done:
        return PlanAction.REPLACE
    if Kind.CREATE in done:
        return PlanAction.CREATE
    if Kind.DEACTIVATE in done:
        return PlanAction.DEACTIVATE
    if done <= _MEMBER_KINDS:
        return PlanAction.SHARE
    return PlanAction.UPDATE
