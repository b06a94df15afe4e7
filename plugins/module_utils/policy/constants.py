# PRIVATE to the collection: not a public API.
"""Vocabulary shared by the policy schema, the rules and the renderers."""

from __future__ import annotations

# Every way an image changes is one of these; docs: policies/README.md#actions.
ACTIONS = (
    'create',
    'update',
    'upload',
    'publish',
    'share',
    'delete',
    'deactivate',
    'reactivate',
    'retire',
    'protect',
    'unprotect',
    'narrow',
    'capture',
)
SEVERITIES = ('low', 'medium', 'high', 'critical')
MODES = ('enforce', 'warn', 'audit')
VISIBILITIES = ('private', 'shared', 'community', 'public')
POLICY_VERSIONS = (1,)

DEFAULT_SEVERITY = 'medium'
DEFAULT_MODE = 'enforce'

# Rule and exception ids end up in SARIF rule ids, JUnit names and log lines.
ID_PATTERN = r'^[A-Za-z0-9][A-Za-z0-9_.-]*$'

GIB = 1024**3
