# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family that modules turn into a task failure with its own message; it is
defined with the document readers (no Ansible import) so the policy engine and the catalog
raise it too."""

from __future__ import annotations

from .documents.problems import ImagegovError, Problem, ProblemsError

__all__ = ['ImagegovError', 'Problem', 'ProblemsError']
