# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family that modules turn into a task failure with its own message."""

from __future__ import annotations


class ImagegovError(Exception):
    """A request that cannot be carried out; the message says what happened and what to change."""
