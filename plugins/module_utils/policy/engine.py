# PRIVATE to the collection: not a public API.
"""Evaluation: requests in, decisions out. Usage facts are fetched lazily and cached per run."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from .decision import PASSED, SKIPPED, VIOLATED, Decision, RuleOutcome, Violation
from .messages import render
from .policy import Policy
from .request import Request
from .rules.base import Finding, Rule
from .waivers import Waiver

UsageProvider = Callable[[dict[str, Any]], Mapping[str, Any]]
Now: TypeAlias = 'datetime.datetime | datetime.date | None'


class Evaluator:
    """One evaluation run: a policy, a usage provider, a clock and the run's usage cache.

    The usage provider (image dict -> usage dict) is called only when a rule that
    needs usage applies and the request carries no `usage`, at most once per image id.
    """

    def __init__(self, policy: Policy, usage_provider: UsageProvider | None = None, now: Now = None) -> None:
        self.policy = policy
        self.usage_provider = usage_provider
        self.now = _as_utc(now)
        self._usage_cache: dict[Any, dict[str, Any]] = {}

    def evaluate(self, document: Mapping[str, Any]) -> Decision:
        request = Request(document, self._usage_for)
        violations: list[Violation] = []
        outcomes = [self._apply(rule, request, violations) for rule in self.policy.rules_for(request.action)]
        image = {'id': request.image_id, 'name': request.image_name}
        return Decision(
            request.action,
            image,
            violations,
            [outcome for outcome in outcomes if outcome is not None],
            source=document.get('source'),
        )

    def evaluate_all(self, documents: Iterable[Mapping[str, Any]]) -> list[Decision]:
        return [self.evaluate(document) for document in documents]

    def _apply(self, rule: Rule, request: Request, violations: list[Violation]) -> RuleOutcome | None:
        try:
            if rule.scope is not None and not rule.scope.matches(request):
                return None
            if rule.needs_content and request.content is None:
                return RuleOutcome(
                    rule.id,
                    rule.type_name,
                    rule.severity,
                    rule.mode,
                    SKIPPED,
                    note='no content facts in the request',
                    locked=rule.locked,
                )
            findings = rule.evaluate(request)
        except Exception as exc:  # pylint: disable=broad-except
            # A rule that cannot decide must not let the request through unnoticed.
            findings = [Finding('rule', f'{type(exc).__name__}: {exc}', 'evaluable', kind='error')]
        if not findings:
            return RuleOutcome(rule.id, rule.type_name, rule.severity, rule.mode, PASSED, locked=rule.locked)
        exception = self._exception_for(rule, request)
        made = [self._violation(rule, request, finding, exception) for finding in findings]
        violations.extend(made)
        return RuleOutcome(rule.id, rule.type_name, rule.severity, rule.mode, VIOLATED, made, locked=rule.locked)

    def _exception_for(self, rule: Rule, request: Request) -> dict[str, Any] | None:
        expired: Waiver | None = None
        for waiver in self.policy.waivers_by_rule.get(rule.id, ()):
            try:
                in_scope = waiver.scope.matches(request)
            except Exception:  # pylint: disable=broad-except
                in_scope = False  # an exception whose condition fails waives nothing
            if not in_scope:
                continue
            if not waiver.is_expired(self.now):
                return waiver.report('applied')
            if expired is None or waiver.expires_at > expired.expires_at:
                expired = waiver
        return expired.report('expired') if expired else None

    def _violation(self, rule: Rule, request: Request, finding: Finding, exception: dict[str, Any] | None) -> Violation:
        if finding.kind == 'error':
            message = f'{request.label}: rule {rule.id} could not be evaluated ({finding.found})'
        else:
            fields = {
                'rule': rule.id,
                'description': rule.description,
                'image': request.label,
                'action': request.action,
                'project': request.actor.get('project'),
                'user': request.actor.get('user'),
                'path': finding.path,
                'severity': rule.severity,
                'mode': rule.mode,
                'found': finding.found_text if finding.found_text is not None else finding.found,
                'expected': finding.expected_text if finding.expected_text is not None else finding.expected,
            }
            fields.update(finding.fields)
            message = render(rule.template_for(finding.kind), fields)
        if exception is not None:
            if exception['status'] == 'expired':
                message += f" (exception '{exception['id']}' expired on {exception['expires']})"
            else:
                message += f" (waived by exception '{exception['id']}' until {exception['expires']})"
        return Violation(
            rule.id,
            rule.type_name,
            rule.severity,
            rule.mode,
            message,
            finding.path,
            finding.expected,
            finding.found,
            exception,
            rule.description,
            rule.source,
            locked=rule.locked,
        )

    def _usage_for(self, request: Request) -> dict[str, Any]:
        image = request.effective_image
        image_id = image.get('id')
        if image_id is None and request.current is None:
            # Nothing can use an image that does not exist yet.
            return {'servers': [], 'images': [], 'volumes': [], 'not_checked': []}
        if image_id is not None and image_id in self._usage_cache:
            return self._usage_cache[image_id]
        usage = self._fetch_usage(image)
        if image_id is not None:
            self._usage_cache[image_id] = usage
        return usage

    def _fetch_usage(self, image: dict[str, Any]) -> dict[str, Any]:
        if self.usage_provider is None:
            return {'not_checked': ['no usage provider configured']}
        try:
            usage = self.usage_provider(image)
        except Exception as exc:  # pylint: disable=broad-except
            return {'not_checked': [f'usage lookup failed: {exc}']}
        if not isinstance(usage, Mapping):
            return {'not_checked': [f'usage provider returned {type(usage).__name__}']}
        return dict(usage)


def evaluate(
    policy: Policy, request: Mapping[str, Any], usage_provider: UsageProvider | None = None, now: Now = None
) -> Decision:
    return Evaluator(policy, usage_provider, now).evaluate(request)


def evaluate_batch(
    policy: Policy, requests: Iterable[Mapping[str, Any]], usage_provider: UsageProvider | None = None, now: Now = None
) -> list[Decision]:
    """One run over many requests: usage is fetched at most once per image id."""
    return Evaluator(policy, usage_provider, now).evaluate_all(requests)


def _as_utc(now: Now) -> datetime.datetime:
    if now is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if isinstance(now, datetime.datetime):
        return now if now.tzinfo else now.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime(now.year, now.month, now.day, tzinfo=datetime.timezone.utc)
