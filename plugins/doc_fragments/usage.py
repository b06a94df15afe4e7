# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with USAGE_CLOUD_ARGSPEC in plugins/module_utils/_usage.py: change both together.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  usage_cloud:
    description:
      - Cloud (a C(clouds.yaml) name or a dict of settings) whose account looks up which
        servers, images and volumes use an image. Give an admin account that may list
        every project's servers and volumes; without it the caller's own account is used,
        and a member cannot see other projects' servers or volumes. What cannot be checked
        counts as in use.
    type: raw
"""
