# PRIVATE to the collection: not a public API.
"""Third-party libraries of the document readers, imported in one place.

Ansible imports module_utils on hosts that may lack them; the import must still succeed
so a module can say which library to install instead of failing with a traceback.
"""

from __future__ import annotations

__all__ = ['cerberus', 'cerberus_errors', 'yaml']

try:
    import cerberus
    from cerberus import errors as cerberus_errors
except ImportError:
    cerberus = None
    cerberus_errors = None

try:
    import yaml
except ImportError:
    yaml = None
