# PRIVATE to the collection: not a public API.
"""Cerberus schemas of a policy file. Rule `params` are checked by each type's own schema."""

from __future__ import annotations

from .constants import ACTIONS, ID_PATTERN, MODES, POLICY_VERSIONS, SEVERITIES, VISIBILITIES

_NAMES = {'type': 'list', 'minlength': 1, 'schema': {'type': 'string', 'empty': False}}

MATCH_SCHEMA = {
    'projects': _NAMES,
    'visibility': {'type': 'list', 'minlength': 1, 'schema': {'type': 'string', 'allowed': list(VISIBILITIES)}},
    'names': _NAMES,
    'when': {'type': 'string', 'empty': False, 'check_with': 'jmespath'},
}

_ID = {'type': 'string', 'required': True, 'empty': False, 'regex': ID_PATTERN}

RULE_SCHEMA = {
    'id': _ID,
    'description': {'type': 'string'},
    'severity': {'type': 'string', 'allowed': list(SEVERITIES)},
    'mode': {'type': 'string', 'allowed': list(MODES)},
    'actions': {'type': 'list', 'minlength': 1, 'schema': {'type': 'string', 'allowed': list(ACTIONS)}},
    'match': {'type': 'dict', 'schema': MATCH_SCHEMA},
    'type': {'type': 'string', 'required': True, 'check_with': 'rule_type'},
    'params': {'type': 'dict'},
    'message': {'type': 'string', 'empty': False},
}

EXCEPTION_SCHEMA = {
    'id': _ID,
    'rules': {'type': 'list', 'required': True, 'minlength': 1, 'schema': {'type': 'string', 'empty': False}},
    'match': {'type': 'dict', 'schema': MATCH_SCHEMA},
    'reason': {'type': 'string', 'required': True, 'empty': False},
    'owner': {'type': 'string', 'required': True, 'empty': False},
    'expires': {'type': ['date', 'string'], 'required': True, 'check_with': 'isodate'},
}

# Rules and exceptions are lists of anything here; each item is validated on its
# own so that problems can name the rule or exception they belong to.
POLICY_SCHEMA = {
    'version': {'type': 'integer', 'required': True, 'allowed': list(POLICY_VERSIONS)},
    'defaults': {
        'type': 'dict',
        'schema': {
            'severity': {'type': 'string', 'allowed': list(SEVERITIES)},
            'mode': {'type': 'string', 'allowed': list(MODES)},
        },
    },
    'rules': {'type': 'list'},
    'exceptions': {'type': 'list'},
}

# Layered policies (IMAGEGOV_BASE_POLICY): only the base may lock rules and name the
# places whose exceptions may waive them. The plain schemas above stay those of an overlay.
BASE_RULE_SCHEMA = dict(RULE_SCHEMA, locked={'type': 'boolean'})

BASE_POLICY_SCHEMA = dict(
    POLICY_SCHEMA,
    exception_sources={'type': 'list', 'schema': {'type': 'string', 'empty': False}},
)

# A file read from a base policy's exception_sources: exceptions only.
EXCEPTION_SOURCE_SCHEMA = {
    'version': POLICY_SCHEMA['version'],
    'exceptions': {'type': 'list'},
}

# A request document given to policy_check (mode evaluate): see policies/README.md#requests.
_MAPPING_OR_NULL = {'type': 'dict', 'nullable': True, 'allow_unknown': True}
REQUEST_SCHEMA = {
    'action': {'type': 'string', 'required': True, 'allowed': list(ACTIONS)},
    'actor': {
        'type': 'dict',
        'nullable': True,
        'allow_unknown': True,
        'schema': {'roles': {'type': 'list', 'nullable': True, 'schema': {'type': 'string'}}},
    },
    'image': _MAPPING_OR_NULL,
    'current': _MAPPING_OR_NULL,
    'content': _MAPPING_OR_NULL,
    'usage': _MAPPING_OR_NULL,
    'data_source': {
        'type': 'dict',
        'nullable': True,
        'allow_unknown': True,
        'schema': {'kind': {'type': 'string', 'allowed': ['url', 'file', 'glance']}},
    },
    'source': _MAPPING_OR_NULL,
    'server': _MAPPING_OR_NULL,
}
