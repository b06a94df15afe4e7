# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steps already done, each with how to undo it, so a failed run leaves things as it found them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._operations import Kind, OperationLog


class UndoLog:
    def __init__(self, operations: OperationLog) -> None:
        self.operations = operations
        self._steps: list[tuple[str, Callable[[], Any], str]] = []

    def add(self, label: str, undo: Callable[[], Any], note: str = '') -> None:
        self._steps.append((label, undo, note))

    def forget(self, label: str | None = None) -> None:
        """Steps that must not be undone after all: those with this label, or every one."""
        self._steps = [step for step in self._steps if label is not None and step[0] != label]

    def rollback(self) -> None:
        """Undo in reverse order; a step that cannot be undone is reported and the rest still run."""
        for label, undo, note in reversed(self._steps):
            try:
                undo()
            except Exception as exc:
                self.operations.add(Kind.ROLLBACK, f'rollback of {label!r} failed: {exc}')
            else:
                self.operations.add(Kind.ROLLBACK, f'rolled back: {label}{note}')
        self._steps.clear()
