# PRIVATE to the collection: not a public API.
"""The imagegov policy engine: plain dicts in, Decision out. No Ansible imports.

Typical use from a module or plugin:

    policy = load_policy(['policies/'])              # or load_policy() for the default
    request = build_request('create', image={...}, current=None, actor={...})
    decision = evaluate(policy, request, usage_provider=fetch_usage)
    if not decision.allowed:
        module.fail_json(msg=decision.refusal_message(), policy=decision.as_dict())
"""

from __future__ import annotations

from .constants import ACTIONS, MODES, SEVERITIES
from .decision import Decision, RuleOutcome, Violation
from .engine import Evaluator, evaluate, evaluate_batch
from .errors import PolicyError, PolicyProblem
from .glance_export import glance_settings
from .loader import (
    BASE_POLICY_ENV,
    DEFAULT_POLICY_PATH,
    LAYERS,
    load_default_policy,
    load_layered_policy,
    load_layered_texts,
    load_policy,
    load_policy_documents,
    load_policy_text,
    load_policy_texts,
    policy_files,
    read_policy_layers,
)
from .policy import Policy
from .report_json import render_json
from .report_junit import render_junit
from .report_sarif import render_sarif, sarif_log
from .request import RequestError, build_request, request_problems
from .rules import RULE_TYPES, Finding, Rule, register

__all__ = [
    'ACTIONS',
    'BASE_POLICY_ENV',
    'DEFAULT_POLICY_PATH',
    'LAYERS',
    'MODES',
    'RULE_TYPES',
    'SEVERITIES',
    'Decision',
    'Evaluator',
    'Finding',
    'Policy',
    'RequestError',
    'PolicyError',
    'PolicyProblem',
    'Rule',
    'RuleOutcome',
    'Violation',
    'build_request',
    'evaluate',
    'glance_settings',
    'evaluate_batch',
    'load_default_policy',
    'load_policy',
    'load_layered_policy',
    'load_layered_texts',
    'load_policy_documents',
    'load_policy_text',
    'load_policy_texts',
    'policy_files',
    'read_policy_layers',
    'register',
    'render_json',
    'render_junit',
    'render_sarif',
    'request_problems',
    'sarif_log',
]
