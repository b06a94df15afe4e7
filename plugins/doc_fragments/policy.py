# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with POLICY_ARGSPEC in plugins/module_utils/_policy.py: change both together.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  policy:
    description:
      - Policy files, or directories of C(*.yml) / C(*.yaml) policy files, on the
        controller. Relative paths are relative to the playbook.
      - Without it, the C(IMAGEGOV_POLICY) environment variable of the controller (paths
        separated by V(:)), and without that the collection's C(policies/default.yml).
      - When the controller's C(IMAGEGOV_BASE_POLICY) environment variable names a base policy
        (paths separated by V(:); files or directories), that base is always loaded and
        these files are added on top of it instead of replacing anything. Without O(policy)
        and C(IMAGEGOV_POLICY) the base alone applies. Rules the base marks as C(locked)
        cannot be redefined, set to warn or waived by these files; exceptions to them are
        read only from the base's C(exception_sources). See the collection's
        C(policies/README.md), section "Base policies and locked rules".
      - The policy is evaluated before any API call that would change something; a
        refusal fails the task naming the rule, what was found and what to change, and
        warn-mode violations become warnings. Set it once for a play with
        C(module_defaults) for C(group/imagegov.openstack.openstack).
    type: list
    elements: path
  policy_documents:
    description:
      - Internal. Set by the collection's action plugin from O(policy); leave it unset.
    type: list
    elements: dict
"""

    # For modules that change nothing: they accept the option so that one module_defaults
    # entry can serve the whole group. Paired with POLICY_ACCEPTED_ARGSPEC.
    ACCEPTED = r"""
options:
  policy:
    description:
      - Accepted so that one C(module_defaults) entry for C(group/imagegov.openstack.openstack)
        can serve every module; this module changes nothing, so no policy is evaluated.
    type: list
    elements: path
"""
