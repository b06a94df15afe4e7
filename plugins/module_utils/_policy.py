# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module side of policy enforcement: every intended action is asked about before it is done."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._errors import ImagegovError
from .policy import (
    BASE_POLICY_ENV,
    Decision,
    PolicyError,
    PolicyProblem,
    build_request,
    evaluate,
    load_layered_policy,
    load_layered_texts,
    load_policy,
)

# Paired with plugins/doc_fragments/policy.py: change both together.
POLICY_ARGSPEC: dict[str, Any] = dict(
    policy=dict(type='list', elements='path'),
    policy_documents=dict(type='list', elements='dict'),
)
# Paired with the ACCEPTED fragment of plugins/doc_fragments/policy.py.
POLICY_ACCEPTED_ARGSPEC: dict[str, Any] = dict(policy=dict(type='list', elements='path'))


class PolicyRefusal(ImagegovError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f'{decision.refusal_message()}. Nothing was changed.')
        self.decision = decision


def load_module_policy(params: dict[str, Any]) -> Any:
    """The policy the action plugin sent, or the files named when the module runs alone
    (on top of the base policy of this host's IMAGEGOV_BASE_POLICY, as the action plugin does)."""
    if params.get('policy_documents'):
        return load_layered_texts(
            [
                (doc.get('source', '<policy>'), doc.get('text', ''), doc.get('layer') or 'overlay')
                for doc in params['policy_documents']
            ]
        )
    base = [
        os.path.abspath(os.path.expanduser(path))
        for path in os.environ.get(BASE_POLICY_ENV, '').split(os.pathsep)
        if path
    ]
    if base:
        return load_layered_policy(base, params.get('policy') or [])
    if params.get('policy'):
        return load_policy(params['policy'])
    raise PolicyError(
        [
            PolicyProblem(
                '<policy>',
                'no policy reached the module: run it through its action plugin (a normal task) or set option policy',
            )
        ]
    )


class PolicyGate:
    """Evaluates intended actions; keeps every decision for the module's ``policy`` result."""

    def __init__(self, policy: Any, actor: Callable[[], dict[str, Any]], warn: Callable[[str], None]) -> None:
        self.policy = policy
        self._actor = actor
        self._warn = warn
        self._warned: set[tuple[str, str]] = set()
        self.decisions: list[Decision] = []
        self.usage_provider: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def check(
        self,
        action: str,
        after: dict[str, Any],
        current: dict[str, Any] | None,
        content: dict[str, Any] | None = None,
        data_source: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
    ) -> Decision:
        """Refuse (raise PolicyRefusal) or allow ``action`` that turns ``current`` into ``after``."""
        request = build_request(
            action,
            image=after,
            current=current,
            actor=self._actor(),
            content=content,
            data_source=data_source,
            server=server,
        )
        # build_request layers changes over current; a purge removes keys, so give the
        # whole resulting image.
        request['image'] = dict(after)
        decision = evaluate(self.policy, request, usage_provider=self.usage_provider)
        self.decisions.append(decision)
        for violation in decision.warnings:
            key = (violation.rule, violation.message)
            if key not in self._warned:
                self._warned.add(key)
                self._warn(f'policy rule {violation.rule}: {violation.message}')
        if not decision.allowed:
            raise PolicyRefusal(decision)
        return decision

    def conversion_for(self, disk_format: str | None) -> str | None:
        """The format an enforced rule converts ``disk_format`` to instead of refusing it
        (allowed_formats with convert_to); None when no rule offers that."""
        for rule in self.policy.rules_for('upload'):
            conversion = getattr(rule, 'conversion_for', None)
            target = conversion(disk_format) if conversion is not None and rule.mode == 'enforce' else None
            if target:
                return target
        return None

    def report(self) -> dict[str, Any]:
        return {
            'allowed': all(decision.allowed for decision in self.decisions),
            'decisions': [decision.as_dict() for decision in self.decisions],
        }
