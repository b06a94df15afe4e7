# PRIVATE to the collection: not a public API.
"""What the rule types that judge usage (delete_protection, access_protection) share:
their params, and turning users and unchecked kinds into findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..request import Request
from ..usage_facts import USER_NOUNS, describe_user, not_checked_by_kind, unchecked_reasons
from .base import Finding, Rule

ON_UNKNOWN_SCHEMA = {
    'meta': {'doc': 'when a checked kind could not be looked at: refuse, or judge on what was seen'},
    'type': 'string',
    'allowed': ['deny', 'allow'],
    'default': 'deny',
}


def check_schema(kinds: tuple[str, ...]) -> dict[str, Any]:
    return {
        'meta': {'doc': 'kinds of users that block'},
        'type': 'list',
        'minlength': 1,
        'default': list(kinds),
        'schema': {'type': 'string', 'allowed': list(kinds)},
    }


class UsageRule(Rule):
    """A rule refused by users of the image, or by users that could not be looked for."""

    needs_usage = True

    def setup(self, params: Mapping[str, Any]) -> None:
        self.kinds: tuple[str, ...] = tuple(params['check'])
        self.deny_unknown = params['on_unknown'] == 'deny'

    def usage_findings(
        self,
        request: Request,
        blocking: Callable[[Any], bool] = lambda user: True,
        fields: Mapping[str, Any] | None = None,
    ) -> list[Finding]:
        """One `in_use` finding per kind with blocking users; one `unknown` finding per kind
        that could not be looked at completely, when unknown denies."""
        usage = request.usage
        unchecked = not_checked_by_kind(usage)
        findings = []
        for resource in self.kinds:
            users = [user for user in usage.get(resource) or () if blocking(user)]
            if users:
                names = [describe_user(user) for user in users]
                findings.append(
                    Finding(
                        f'usage.{resource}',
                        names,
                        [],
                        kind='in_use',
                        fields=dict(fields or {}, kind=USER_NOUNS[resource], count=len(names)),
                    )
                )
            reasons = unchecked_reasons(usage, resource, unchecked)
            if reasons and self.deny_unknown and not users:
                findings.append(
                    Finding(
                        'usage.not_checked',
                        reasons,
                        'checked',
                        kind='unknown',
                        fields=dict(fields or {}, kind=USER_NOUNS[resource], count=0),
                    )
                )
        return findings
