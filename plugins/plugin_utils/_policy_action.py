# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of policy enforcement, shared by the action plugins of mutating modules.

Policy files live with the playbook or the collection, on the controller; the module runs
wherever the task is delegated. So the policy is read and validated here — a broken policy
stops the task before the module, and so before any API call — and its text travels to
the module in ``policy_documents``, each file with its layer: the organisation's pinned base
policy (``IMAGEGOV_BASE_POLICY``), the exception sources it names, and the overlay (option
``policy`` or ``IMAGEGOV_POLICY``), which adds to the base and cannot loosen its locked rules.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

try:
    from ansible.executor.module_common import get_action_args_with_defaults
except ImportError:  # ansible-core 2.19 merges module_defaults into the task args itself
    get_action_args_with_defaults = None

from ansible_collections.imagegov.openstack.plugins.module_utils.policy import (
    BASE_POLICY_ENV,
    DEFAULT_POLICY_PATH,
    PolicyError,
    load_layered_texts,
    read_policy_layers,
)

POLICY_ENV = 'IMAGEGOV_POLICY'


class PolicyActionBase(ActionBase):
    # Options naming files on the controller: relative paths are made absolute against the
    # directory ansible-playbook runs in, so they mean the same wherever the module runs.
    controller_path_options: tuple = ()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        if get_action_args_with_defaults is not None:
            args = get_action_args_with_defaults(
                self._task.resolved_action,
                args,
                self._task.module_defaults,
                self._templar,
                action_groups=self._task._parent._play._action_groups,
            )
        base = _env_paths(BASE_POLICY_ENV)
        try:
            texts = read_policy_layers([_absolute(path) for path in base], self._policy_paths(args, bool(base)))
            load_layered_texts(texts)
        except PolicyError as exc:
            where = (
                f'${BASE_POLICY_ENV} and its exception_sources, option policy or ${POLICY_ENV}'
                if base
                else f'option policy, ${POLICY_ENV}, or the collection default'
            )
            result.update(
                failed=True,
                msg=f'{exc}\nNothing was sent to the cloud. Fix the policy ({where}).',
                problems=[problem.as_dict() for problem in exc.problems],
            )
            return result
        documents = [{'source': source, 'text': text, 'layer': layer} for source, text, layer in texts]
        module_args = dict(self._task.args, policy_documents=documents)
        for option in self.controller_path_options:
            value = module_args.get(option)
            if isinstance(value, str):
                module_args[option] = _absolute(value)
            elif isinstance(value, list):
                module_args[option] = [_absolute(item) for item in value]
        result.update(
            self._execute_module(module_name=self._task.resolved_action, module_args=module_args, task_vars=task_vars)
        )
        return result

    def _policy_paths(self, args, has_base):
        """The overlay's files; with no base policy they are the whole policy (the default if none)."""
        paths = args.get('policy')
        if paths is None and os.environ.get(POLICY_ENV):
            paths = _env_paths(POLICY_ENV)
        if paths is None:
            # A pinned base replaces the collection's default policy, as a policy file does without one.
            return [] if has_base else [DEFAULT_POLICY_PATH]
        if isinstance(paths, str):
            paths = [paths]
        return [self._loader.path_dwim(os.path.expanduser(str(path))) for path in paths]


def _env_paths(name):
    return [path for path in os.environ.get(name, '').split(os.pathsep) if path]


def _absolute(path):
    return os.path.abspath(os.path.expanduser(str(path)))
