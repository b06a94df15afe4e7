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
        servers and images use an image. Give an admin or reader account that may list
        every project's servers; without it the caller's own account is used, and a member
        cannot see other projects' servers. What cannot be checked counts as in use.
    type: raw
"""
