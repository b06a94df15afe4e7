# PRIVATE to the collection: not a public API.
"""Rule types. Each module registers one; they are imported here explicitly so
Ansible's module_utils packager (which follows imports) ships them all."""

from __future__ import annotations

from . import (  # noqa: F401  (imported for registration)
    access_protection,
    allowed_formats,
    allowed_sources,
    delete_protection,
    expression,
    format_integrity,
    max_size,
    name_pattern,
    required_properties,
    restricted_visibility,
)
from .base import RULE_TYPES, Finding, Rule, register

__all__ = ['RULE_TYPES', 'Finding', 'Rule', 'register']
