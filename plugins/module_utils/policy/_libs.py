# PRIVATE to the collection: not a public API.
"""The engine's third-party libraries, imported in one place.

Ansible imports module_utils on hosts that may lack them; the import must still succeed
so a module can say which library to install instead of failing with a traceback.
"""

from __future__ import annotations

try:
    import cerberus
    from cerberus import errors as cerberus_errors  # noqa: F401 pylint: disable=unused-import
except ImportError:
    cerberus = None
    cerberus_errors = None

try:
    import jmespath
    from jmespath import exceptions as jmespath_exceptions  # noqa: F401 pylint: disable=unused-import
    from jmespath import functions as jmespath_functions  # noqa: F401 pylint: disable=unused-import
except ImportError:
    jmespath = None
    jmespath_exceptions = None
    jmespath_functions = None

try:
    import yaml
except ImportError:
    yaml = None


def missing_libraries() -> list[str]:
    """Names to pip install before the engine can work (empty when all are there)."""
    return [name for name, lib in (('cerberus', cerberus), ('jmespath', jmespath), ('PyYAML', yaml)) if lib is None]
