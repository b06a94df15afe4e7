# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads the image policy on the controller for imagegov.openstack.image_transfer."""

from __future__ import annotations

from ansible_collections.imagegov.openstack.plugins.plugin_utils._policy_action import PolicyActionBase


class ActionModule(PolicyActionBase):
    pass
